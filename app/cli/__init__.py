"""`mimi-live` command line: a thin argparse front over the codec layer (main thread).

Each subcommand is one `_add_<name>(subparsers)` function that declares its arguments and sets
`handler=_cmd_<name>`; register it in SUBCOMMANDS. Handlers return an exit code. User errors
(codec, audio file, output file) become one line `mimi-live: error: <message>` on stderr and exit
code 1; `--debug` re-raises them with the traceback instead. Anything else is a bug and keeps its
traceback.

Heavy imports (onnxruntime, torch) happen inside handlers so `--help` stays fast.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from app import __version__
from app.cli import args as cli_args
from app.cli import signals as cli_signals
from app.cli.args import ROUNDTRIP_CHUNK_MS_MAX, RUN_CHUNK_MS_MAX
from app.config import APP_ID, DEFAULT_DEVICE_LATENCY_MS, FRAME_MS, FRAME_RATE_HZ, FRAME_SIZE, SAMPLE_RATE_HZ

if TYPE_CHECKING:
    from app.audio.native_log import NativeMessages

PROG = APP_ID
EXPORT_EXTRA_HINT = f"{PROG} export needs the export extra: pip install 'mimi-live[export]'"
PROGRESS_MIN_DURATION_S = 10.0  # shorter files finish before a progress bar would help
EXPORT_MODULES = {"torch", "transformers", "onnxscript", "onnx"}
MODEL_HELP = "model folder, or a downloaded published variant (see `mimi-live models`)"


class UserError(Exception):
    """A problem with what the user asked for, reported as one line (exit code 1)."""


# ---------------------------------------------------------------------------------------------
# Shared helpers


def _format_bps(bps: float) -> str:
    return f"{bps:.0f} bps" if bps < 1000 else f"{bps / 1000:.3g} kbps"


def _open_codec(model: Path, codebooks: int | None = None, threads: int | None = None):
    from app.codec import StreamingCodec  # onnxruntime is imported only when a model is used
    from app.codec.tuning import tuned_threads

    return StreamingCodec(model, codebooks=codebooks, threads=threads or tuned_threads(model))


def _print_json(obj: Any) -> None:
    print(json.dumps(obj, indent=2, default=str))


def _print_lines(summary: dict, indent: str = "") -> None:
    for key, value in summary.items():
        if isinstance(value, dict):
            print(f"{indent}{key}:")
            _print_lines(value, indent + "  ")
        else:
            print(f"{indent}{key}: {value}")


def _percentiles_ms(values: list[float]) -> dict[str, float]:
    import numpy as np

    if not values:
        return {"p50": float("nan"), "p95": float("nan")}
    arr = np.asarray(values, dtype=np.float64)
    return {"p50": round(float(np.percentile(arr, 50)), 3), "p95": round(float(np.percentile(arr, 95)), 3)}


# ---------------------------------------------------------------------------------------------
# info


def _add_info(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser(
        "info",
        parents=[common],
        help="load a model folder and print its contract summary",
        description="Load a streaming Mimi ONNX folder (encoder_model.onnx, decoder_model.onnx, "
        "state_spec.txt), check it against the contract and summarise it.",
    )
    p.add_argument("--model", type=Path, required=True, metavar="DIR|VARIANT", help=MODEL_HELP)
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(handler=_cmd_info)


def _info_summary(codec) -> dict:
    contract = codec.contract
    k_max = int(contract.num_codebooks)
    size = contract.codebook_size  # None if the decoder's tables were not found
    choices = [int(k) for k in (getattr(codec, "codebook_choices", None) or (k_max,))]
    # The codec knows its bitrate at the k it was opened with (all K here; None if the codebook
    # size is unknown); bitrate is linear in k.
    bitrate = codec.bitrate_bps
    per_codebook = None if bitrate is None else float(bitrate) / int(codec.num_codebooks)

    def rounded(value: float | None) -> float | None:
        return None if value is None else round(value, 3)

    spec = contract.spec
    return {
        "folder": str(contract.folder),
        "codebooks": k_max,
        "codebook_size": int(size) if size is not None else None,
        "bits_per_codebook": rounded(None if per_codebook is None else per_codebook / FRAME_RATE_HZ),
        "bitrate_bps": rounded(None if per_codebook is None else per_codebook * k_max),
        "codebook_choices": choices,
        "bitrate_by_codebooks": {
            str(k): rounded(None if per_codebook is None else per_codebook * k) for k in choices
        },
        "fewer_codebooks": len(choices) > 1 or min(choices) < k_max,
        "codebook_note": getattr(codec, "codebook_note", None) or "",
        "weights": contract.weights,
        "encoder_mb": round(Path(contract.encoder_path).stat().st_size / 1e6, 3),
        "decoder_mb": round(Path(contract.decoder_path).stat().st_size / 1e6, 3),
        "kv_layers": int(contract.kv_layers),
        "kv_heads": int(contract.kv_heads),
        "kv_head_dim": int(contract.kv_head_dim),
        "conv_states": {"encoder": len(spec.encoder), "decoder": len(spec.decoder)},
        "sample_rate_hz": int(codec.sample_rate),
        "frame_size": int(codec.frame_size),
        "runs_with": {"threads": codec.threads, "convs_as_matmul": dict(zip(("encoder", "decoder"), codec.rewritten))},
    }


def _cmd_info(args: argparse.Namespace) -> int:
    codec = _open_codec(args.model)
    s = _info_summary(codec)
    if args.json:
        _print_json(s)
        return 0
    choices = s["codebook_choices"]
    bits = "unknown" if s["bits_per_codebook"] is None else f"{s['bits_per_codebook']:g}"
    print(f"model folder:   {s['folder']}")
    print(f"codebooks:      K={s['codebooks']} of size {s['codebook_size'] or 'unknown'} "
          f"({bits} bits each)")
    if s["bitrate_bps"] is None:
        print("bitrate:        unknown (codebook size not found in the decoder)")
    else:
        print(f"bitrate:        {s['bitrate_bps']:g} bps at k={s['codebooks']} "
              f"({_format_bps(s['bitrate_bps'])})")
    if s["fewer_codebooks"]:
        per = s["bitrate_by_codebooks"][str(choices[0])]
        per_text = "" if per is None else f", {per / choices[0]:g} bps per codebook"
        print(f"fewer codebooks: yes, k = {choices[0]}..{choices[-1]}{per_text}")
    else:
        print(f"fewer codebooks: no, only k={s['codebooks']}")
    if s["codebook_note"]:
        print(f"                {s['codebook_note']}")
    print(f"weights:        {s['weights']}")
    print(f"files:          encoder {s['encoder_mb']:.3f} MB, decoder {s['decoder_mb']:.3f} MB")
    print(f"transformer KV: {s['kv_layers']} layers x {s['kv_heads']} heads x head dim "
          f"{s['kv_head_dim']}")
    print(f"conv states:    encoder {s['conv_states']['encoder']}, "
          f"decoder {s['conv_states']['decoder']}")
    print(f"audio:          {s['sample_rate_hz']} Hz mono, {s['frame_size']} samples per frame "
          f"({FRAME_MS} ms)")
    runs = s["runs_with"]
    rewritten = [side for side, done in runs["convs_as_matmul"].items() if done]
    print(f"runs with:      {runs['threads']} thread(s) per session; big convs as MatMuls: "
          f"{' and '.join(rewritten) if rewritten else 'none (no layer big enough)'}")
    return 0


# ---------------------------------------------------------------------------------------------
# roundtrip


def _add_roundtrip(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser(
        "roundtrip",
        parents=[common],
        help="stream an audio file through encoder and decoder, write the result",
        description="Read any audio file libsndfile reads (converted to 24 kHz mono), stream it "
        "chunk by chunk through the encoder then the decoder, exactly as the live engine does, "
        "and write the decoded audio as a 24 kHz WAV of the same duration.",
    )
    p.add_argument("input", type=Path, metavar="IN", help="input audio file")
    p.add_argument("output", type=Path, metavar="OUT", help="output WAV (written atomically)")
    p.add_argument("--model", type=Path, required=True, metavar="DIR|VARIANT", help=MODEL_HELP)
    p.add_argument("--codebooks", type=cli_args.positive_int, default=None, metavar="K",
                   help="codebooks to decode with (default: all the model has)")
    p.add_argument("--chunk-ms", type=cli_args.chunk_ms(ROUNDTRIP_CHUNK_MS_MAX), default=FRAME_MS, metavar="MS",
                   help=f"chunk per encode/decode call, a multiple of {FRAME_MS} up to {ROUNDTRIP_CHUNK_MS_MAX} "
                   f"(default {FRAME_MS})")
    p.add_argument("--threads", type=cli_args.threads, default=None, metavar="N",
                   help="ONNX Runtime intra-op threads (default: the count measured fastest here, see `tune`)")
    p.add_argument("--float32", action="store_true",
                   help="write 32-bit float samples instead of 16-bit PCM")
    p.add_argument("--sequential", action="store_true",
                   help="encode and decode each chunk in turn, on all threads (default: the encoder runs "
                   "a chunk ahead on its own thread, each direction with half the threads)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(handler=_cmd_roundtrip)


def _progress(total_chunks: int, duration_s: float):
    from tqdm import tqdm

    show = duration_s > PROGRESS_MIN_DURATION_S and sys.stderr.isatty()
    return tqdm(total=total_chunks, unit="chunk", file=sys.stderr, disable=not show,
                desc=PROG, leave=False)


def _stream(codec, chunks, sequential: bool):
    """(codes, audio, encode ms, decode ms) per chunk: one after the other, or pipelined."""
    if not sequential:
        from app.codec.pipeline import pipelined

        yield from pipelined(codec, chunks)
        return
    for chunk in chunks:
        codes = codec.encode(chunk)
        audio = codec.decode(codes)
        yield codes, audio, codec.last_encode_ms, codec.last_decode_ms


def _cmd_roundtrip(args: argparse.Namespace) -> int:
    from app.audio.files import PART_SUFFIX, AtomicWavWriter, pad_to_frames, read_audio_24k_mono, same_file

    # The output (or its .part file) would replace the input: refuse before anything is read.
    targets = [args.output, args.output.with_name(args.output.name + PART_SUFFIX)] if args.output.name else []
    if any(same_file(args.input, target) for target in targets):
        raise UserError(f"{args.output}: would overwrite the input file {args.input}; choose another output name")
    pcm = read_audio_24k_mono(args.input)
    threads = args.threads
    if threads is None and not args.sequential:
        from app.codec.pipeline import threads_per_direction
        from app.codec.tuning import tuned_threads

        threads = threads_per_direction(tuned_threads(args.model))
    codec = _open_codec(args.model, codebooks=args.codebooks, threads=threads)

    chunk_frames = args.chunk_ms // FRAME_MS
    chunk_size = chunk_frames * FRAME_SIZE
    # Every call gets a full chunk, as in the live engine; the tail is zero-padded and the
    # output trimmed back to the input's length.
    padded, n_samples = pad_to_frames(pcm, chunk_size)
    n_chunks = padded.shape[0] // chunk_size
    duration_s = n_samples / SAMPLE_RATE_HZ

    encode_ms: list[float] = []  # per 80 ms frame
    decode_ms: list[float] = []
    remaining = n_samples
    chunks = (padded[i * chunk_size:(i + 1) * chunk_size] for i in range(n_chunks))
    stream = _stream(codec, chunks, args.sequential)
    started = time.perf_counter()
    try:
        with AtomicWavWriter(args.output, SAMPLE_RATE_HZ, "FLOAT" if args.float32 else "PCM_16",
                             guard=cli_signals.deferred) as out, _progress(n_chunks, duration_s) as bar:
            for codes, audio, enc_ms, dec_ms in cli_signals.deferred_steps(stream):
                encode_ms.append(enc_ms / chunk_frames)
                decode_ms.append(dec_ms / chunk_frames)
                keep = min(remaining, audio.shape[0])
                if keep > 0:
                    out.write(audio[:keep])
                    remaining -= keep
                bar.update(1)
            if remaining:
                raise UserError(f"the decoder returned {n_samples - remaining} samples for "
                                f"{n_samples} input samples")
    finally:
        with cli_signals.deferred():  # stops and joins the encoder thread (see deferred_steps)
            stream.close()
    wall_s = time.perf_counter() - started

    kv_enc, kv_dec = codec.kv_length
    summary = {
        "input": str(args.input),
        "output": str(args.output),
        "frames": math.ceil(n_samples / FRAME_SIZE),  # code frames that carry input audio
        "frames_streamed": n_chunks * chunk_frames,  # including the padded tail of the last chunk
        "chunk_ms": args.chunk_ms,
        "codebooks": int(codec.num_codebooks),
        "bitrate_bps": None if codec.bitrate_bps is None else round(float(codec.bitrate_bps), 3),
        "encode_ms": _percentiles_ms(encode_ms),
        "decode_ms": _percentiles_ms(decode_ms),
        "kv_length": {"encoder": int(kv_enc), "decoder": int(kv_dec)},
        "duration_s": round(duration_s, 4),
        "rtf": round(wall_s / duration_s, 4) if duration_s > 0 else None,
        "pipelined": not args.sequential,
    }
    if args.json:
        _print_json(summary)
        return 0
    print(f"{args.input} -> {args.output}")
    print(f"  {duration_s:.2f} s of audio, {summary['frames']} frames of {FRAME_MS} ms, "
          f"chunks of {args.chunk_ms} ms")
    rate = "unknown bitrate" if summary["bitrate_bps"] is None else _format_bps(summary["bitrate_bps"])
    print(f"  {summary['codebooks']} codebooks = {rate}")
    for name in ("encode", "decode"):
        q = summary[f"{name}_ms"]
        print(f"  {name} per {FRAME_MS} ms frame: p50 {q['p50']:.2f} ms, p95 {q['p95']:.2f} ms")
    print(f"  KV length at the end: encoder {kv_enc}, decoder {kv_dec}")
    print(f"  real-time factor {summary['rtf']} (wall time / audio duration; < 1 keeps up)"
          + ("" if args.sequential else ", encoder and decoder pipelined"))
    return 0


# ---------------------------------------------------------------------------------------------
# export


def _add_export(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser(
        "export",
        parents=[common],
        help="export a contract-identical model folder (needs the export extra)",
        description="Build Mimi with transformers and export encoder_model.onnx, "
        "decoder_model.onnx and state_spec.txt in the published streaming contract. "
        "Needs: pip install 'mimi-live[export]'.",
    )
    p.add_argument("out_dir", type=Path, metavar="OUT_DIR", help="folder to write")
    p.add_argument("--codebooks", type=cli_args.positive_int, default=8, metavar="K",
                   help="codebooks the encoder emits (default 8)")
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--weights", type=Path, metavar="DIR",
                        help="folder with real Mimi weights (transformers format)")
    source.add_argument("--random-weights", action="store_true",
                        help="random weights: a stand-in with the real cost, noise for audio")
    p.add_argument("--seed", type=cli_args.seed, default=0, help=f"random seed, 0..{cli_args.SEED_MAX} (default 0)")
    p.add_argument("--tiny", action="store_true", help="kilobyte-size model for tests")
    p.add_argument("--fp16-weights", action="store_true",
                   help="store weights as float16 (inputs, outputs and compute stay float32)")
    p.add_argument("--no-check", dest="check", action="store_false",
                   help="skip comparing the exported graphs with the torch model")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(handler=_cmd_export)


def _export_extra_missing() -> int:
    print(EXPORT_EXTRA_HINT, file=sys.stderr)
    return 2


def _cmd_export(args: argparse.Namespace) -> int:
    try:
        from app.codec.export import export_pair
    except ImportError as exc:
        if args.debug:
            raise
        if exc.name and exc.name.split(".")[0] not in EXPORT_MODULES:
            raise
        return _export_extra_missing()
    try:
        from app.codec.export import ExportError
    except ImportError:
        ExportError = ()  # noqa: N806 - older exporter without its own error class

    try:
        summary = export_pair(
            out_dir=args.out_dir,
            codebooks=args.codebooks,
            weights=args.weights,
            seed=args.seed,
            tiny=args.tiny,
            fp16_weights=args.fp16_weights,
            check=args.check,
        )
    except ImportError as exc:  # an exporter that imports torch lazily
        if args.debug or not exc.name or exc.name.split(".")[0] not in EXPORT_MODULES:
            raise
        return _export_extra_missing()
    except ExportError as exc:
        raise UserError(str(exc)) from exc
    if args.json:
        _print_json(summary)
    else:
        _print_lines(summary)
    return 0


# ---------------------------------------------------------------------------------------------
# run, devices (the live engine, headless)

METRICS_POLL_S = 0.1


def _add_run(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("run", parents=[common], help="stream live audio through the codec, headless",
                       description="Microphone (or a looped file, or a tone) -> Mimi -> speaker, until "
                       "--duration ends or Ctrl-C; then a summary.")
    p.add_argument("--model", type=Path, required=True, metavar="DIR|VARIANT", help=MODEL_HELP)
    p.add_argument("--input-device", type=cli_args.device, metavar="X", help="input device index or name part")
    p.add_argument("--output-device", type=cli_args.device, metavar="Y", help="output device index or name part")
    source = p.add_mutually_exclusive_group()
    source.add_argument("--input-file", type=Path, metavar="F", help="play this file in a loop instead of the microphone")
    source.add_argument("--tone", type=cli_args.tone_hz, metavar="HZ",
                        help=f"play a test tone instead of the microphone (below {cli_args.TONE_MAX_HZ:g} Hz)")
    p.add_argument("--duration", type=cli_args.duration_s, metavar="S",
                   help="stop after S seconds, at most a week (default: until Ctrl-C)")
    p.add_argument("--chunk-ms", type=cli_args.chunk_ms(RUN_CHUNK_MS_MAX), default=FRAME_MS, metavar="N",
                   help=f"audio per codec call ({FRAME_MS}..{RUN_CHUNK_MS_MAX}, a multiple of {FRAME_MS})")
    p.add_argument("--codebooks", type=cli_args.positive_int, metavar="k",
                   help="codebooks to decode with (default all)")
    p.add_argument("--kv-window", type=cli_args.kv_window, default=250, metavar="N|none",
                   help="KV cache window in tokens (default 250 = 10 s; none = grow)")
    p.add_argument("--threads", type=cli_args.threads, metavar="N", help="ONNX Runtime intra-op threads")
    p.add_argument("--monitor", choices=("codec", "bypass", "residual"), default="codec",
                   help="what the speaker plays (default codec)")
    p.add_argument("--bypass", dest="monitor", action="store_const", const="bypass", help="same as --monitor bypass")
    p.add_argument("--record", type=Path, metavar="DIR", help="record input and reconstruction as WAV files here")
    p.add_argument("--device-latency-ms", type=cli_args.device_latency_ms, default=DEFAULT_DEVICE_LATENCY_MS, metavar="MS",
                   help=f"latency asked of the audio devices, 1..{cli_args.DEVICE_LATENCY_MS_MAX} "
                   f"(default {DEFAULT_DEVICE_LATENCY_MS}; raise it if you hear dropouts)")
    p.add_argument("--metrics-out", type=Path, metavar="F.jsonl", help="write one JSON line per chunk")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.set_defaults(handler=_cmd_run)


def _metrics_row(m) -> dict:
    row = {name: getattr(m, name) for name in m.__slots__ if name != "codes"}
    row["codes"] = m.codes.tolist()
    return row


@contextlib.contextmanager
def _audio_library_lines() -> Iterator[NativeMessages | None]:
    """Commands that open audio devices: the log file, and the lines ALSA and PortAudio print
    on stderr moved into it (counted) so the terminal shows only the app's own."""
    from app.audio.native_log import NativeMessages
    from app.logs import setup_logging

    try:
        setup_logging(console=True)
    except OSError as exc:
        print(f"{PROG}: cannot write the log file ({exc}); the audio libraries' messages stay on stderr",
              file=sys.stderr)
        yield None
        return
    with NativeMessages() as messages:
        yield messages


def _cmd_run(args: argparse.Namespace) -> int:
    with _audio_library_lines() as library:
        summary, code = _run_live(args)
    if library is not None:
        summary["audio_library_lines"] = {"total": library.count, "xruns": library.underruns}
    if args.json:
        _print_json(summary)
    else:
        _print_lines(summary)
    return code


def _run_live(args: argparse.Namespace) -> tuple[dict, int]:
    from app.audio.engine import Engine, EngineConfig
    from app.audio.metrics import EngineEvent
    from app.cli.metrics_file import MetricsFile

    source = "file" if args.input_file else "tone" if args.tone else "mic"
    config = EngineConfig(model=args.model, codebooks=args.codebooks, chunk_ms=args.chunk_ms,
                          kv_window=args.kv_window, threads=args.threads, source=source,
                          input_file=args.input_file, tone_hz=args.tone or 440.0,
                          input_device=args.input_device, output_device=args.output_device,
                          monitor=args.monitor, record_dir=args.record,
                          device_latency_s=args.device_latency_ms / 1000)
    engine = Engine()
    metrics_file = MetricsFile(args.metrics_out) if args.metrics_out else None
    reason = "duration reached"
    interrupted = False

    def drain() -> None:
        # Whole batches only: a signal waits until every line drained from the queue is written.
        with cli_signals.deferred():
            for item in engine.queue.drain():
                if isinstance(item, EngineEvent):
                    print(f"{PROG}: {item.kind}: {item.message}", file=sys.stderr)
                elif metrics_file is not None:
                    metrics_file.write(_metrics_row(item))

    try:
        engine.start(config)
        print(f"{PROG}: streaming; Ctrl-C stops", file=sys.stderr)
        deadline = time.monotonic() + args.duration if args.duration else math.inf
        while engine.running and time.monotonic() < deadline:
            time.sleep(METRICS_POLL_S)
            drain()
        if not engine.running:
            reason = engine.stop_reason or "stopped"
    except KeyboardInterrupt as exc:  # Ctrl-C, SIGTERM or SIGHUP (app.cli_signals)
        interrupted = True
        reason = f"interrupted ({exc.label if isinstance(exc, cli_signals.Interrupted) else 'Ctrl-C'})"
    finally:
        summary = engine.stop(reason)
        if metrics_file is not None:
            with cli_signals.deferred():
                for item in engine.queue.drain():
                    if not isinstance(item, EngineEvent):
                        metrics_file.write(_metrics_row(item))
                metrics_file.close()
    return summary, 0 if interrupted or reason == "duration reached" else 1


def _add_devices(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("devices", parents=[common], help="list audio devices",
                       description="List the audio devices PortAudio sees (index, name, channels, rate).")
    p.add_argument("--json", action="store_true", help="print a JSON list")
    p.set_defaults(handler=_cmd_devices)


def _cmd_devices(args: argparse.Namespace) -> int:
    from dataclasses import asdict

    from app.audio.devices import list_devices

    with _audio_library_lines():
        devices = list_devices()
    if args.json:
        _print_json([asdict(d) for d in devices])
        return 0
    for d in devices:
        print(f"{d.index:3d}  {d.name}  (in {d.max_input_channels}, out {d.max_output_channels}, "
              f"{d.default_samplerate:.0f} Hz, {d.hostapi})")
    if not devices:
        print("no audio devices found")
    return 0


# ---------------------------------------------------------------------------------------------
# models, download (the published variants in the Hugging Face cache)


def _add_models(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("models", parents=[common], help="list the published model variants and what is downloaded",
                       description="List the published variants of BMekiker/mimi-onnx-streaming: codebooks, "
                       "weights, size, and whether (and where) each is in the Hugging Face cache. "
                       "Reads only the cache: works offline.")
    p.add_argument("--json", action="store_true", help="print a JSON list")
    p.set_defaults(handler=_cmd_models)


def _cmd_models(args: argparse.Namespace) -> int:
    from app.models.download import list_models

    rows = list_models()
    if args.json:
        _print_json([r.to_json() for r in rows])
        return 0
    for r in rows:
        size = f"{r.size_bytes / 1e6:.0f} MB" if r.cached else f"~{r.size_bytes / 1e6:.0f} MB"
        where = str(r.folder) if r.cached else f"not downloaded (mimi-live download {r.name})"
        print(f"{r.name:20s} {r.codebooks:2d} codebooks  {r.weights}  {size:>8s}  {where}")
    return 0


def _add_download(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    from app.models.catalogue import VARIANTS

    p = sub.add_parser("download", parents=[common], help="download a published model variant",
                       description="Download a published variant into the Hugging Face cache (HF_HOME; "
                       "HF_ENDPOINT, HF_TOKEN and HF_HUB_OFFLINE are honoured), check every file's "
                       "size and sha256 against the hub, and print where it is. Running it again "
                       "fetches only what is missing or damaged.")
    p.add_argument("variant", metavar="VARIANT", help=", ".join(v.name for v in VARIANTS))
    p.add_argument("--json", action="store_true", help="print one JSON object (no progress bar)")
    p.set_defaults(handler=_cmd_download)


def _cmd_download(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from app.models.download import download_variant

    bar = None

    def progress(p) -> None:
        nonlocal bar
        if bar is None:
            bar = tqdm(total=p.total_bytes, unit="B", unit_scale=True, unit_divisor=1024, file=sys.stderr,
                       desc=p.variant, disable=args.json or not sys.stderr.isatty(), leave=False)
        bar.update(p.done_bytes - bar.n)  # tqdm shows bytes, rate and time left

    t0 = time.monotonic()
    try:
        folder = download_variant(args.variant, progress=progress)
    finally:
        if bar is not None:
            bar.close()
    summary = {"variant": args.variant, "folder": str(folder),
               "size_bytes": sum(p.stat().st_size for p in folder.iterdir() if p.is_file()),
               "verified": True, "seconds": round(time.monotonic() - t0, 3)}
    if args.json:
        _print_json(summary)
    else:
        print(f"{args.variant}: {summary['size_bytes'] / 1e6:.1f} MB, sizes and sha256 match the hub, in {folder}")
        print(f"use it with: {PROG} gui --model {args.variant}  or  {PROG} run --model {args.variant}")
    return 0


# ---------------------------------------------------------------------------------------------
# gui


def _add_gui(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("gui", parents=[common], help="open the Mimi Live window (the default)",
                       description="Open the Mimi Live window (what `mimi-live` with no command does).")
    p.add_argument("--model", type=Path, metavar="DIR|VARIANT", help=MODEL_HELP + " to open (added to the model list)")
    p.set_defaults(handler=_cmd_gui)


def _cmd_gui(args: argparse.Namespace) -> int:
    from app.ui.app import run_gui

    code = run_gui(["--model", str(args.model)] if getattr(args, "model", None) else [])
    cli_signals.raise_pending()  # the window closed on a signal: exit as Ctrl-C does
    return code


# ---------------------------------------------------------------------------------------------
# bench


def _add_bench(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("bench", parents=[common], help="time the naive loop against the app's settings",
                       description="Stream the same input frame by frame (back to back, not paced) "
                       "through the model card's naive loop and through the app's codec settings; "
                       "report per-frame times, RTF, KV length, memory and CPU per frame for both.")
    p.add_argument("--model", type=Path, required=True, metavar="DIR|VARIANT", help=MODEL_HELP)
    p.add_argument("--frames", type=cli_args.bench_frames, default=1500, metavar="N",
                   help=f"80 ms frames per side, at most {cli_args.BENCH_FRAMES_MAX} "
                   "(default 1500 = 2 minutes of audio)")
    p.add_argument("--threads", type=cli_args.threads, metavar="N", help="intra-op threads for the app side")
    p.add_argument("--kv-window", type=cli_args.kv_window, default=250, metavar="N|none",
                   help="the app side's KV window")
    from app.models import INT8_PARTS  # the catalogue's copy: no onnx import to build the parser

    p.add_argument("--int8", choices=INT8_PARTS,
                   help="also time the local int8 copy (made once, like `quantize`) and report its SNR")
    p.add_argument("--no-naive", action="store_true",
                   help="leave the naive loop out (for long sessions: its growing cache makes it crawl)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(handler=_cmd_bench)


def _cmd_bench(args: argparse.Namespace) -> int:
    from app.codec.bench import run_bench

    result = run_bench(args.model, args.frames, threads=args.threads, kv_window=args.kv_window, int8=args.int8,
                       naive=not args.no_naive)
    if args.json:
        _print_json(result)
        return 0
    for side in ("naive", "app", "app_int8"):
        if not result.get(side):
            continue
        r = result[side]
        print(f"{side:8s}  total ms/frame p50 {r['total_ms']['p50']:.1f}  p95 {r['total_ms']['p95']:.1f}  "
              f"p99 {r['total_ms']['p99']:.1f}  RTF {r['rtf']}  KV {r['kv_length_end']}  "
              f"RSS {r['rss_mb']['start']} -> {r['rss_mb']['end']} MB  CPU {r['cpu_s_per_frame'] * 1000:.1f} ms/frame")
    piped = result["app_pipelined"]
    print(f"pipelined  {piped['wall_ms_per_frame']} ms per frame of wall time ({piped['threads_per_direction']} "
          f"thread(s) per direction), RTF {piped['rtf']}: the throughput a file gets, not a live chunk's latency")
    if "speedup_p50" in result:
        print(f"speed-up: p50 {result['speedup_p50']}x, first minute {result['speedup_first_minute']}x, "
              f"last minute {result['speedup_last_minute']}x")
    print(f"app: last minute / first minute {result['app_last_vs_first_minute']}x, "
          f"memory growth after warm-up {result['app_rss_growth_mb']} MB")
    if "app_int8" in result:
        q = result["app_int8"]
        print(f"int8 ({q['parts']}): SNR against float {q['snr_end_to_end_db']} dB end to end, "
              f"{q['snr_same_codes_db']} dB on the same codes"
              + (f"; p50 {result['int8_speedup_p50']}x the naive loop" if "int8_speedup_p50" in result else ""))
    return 0


# ---------------------------------------------------------------------------------------------
# tune


def _add_tune(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("tune", parents=[common], help="find (or show) the fastest thread count for a model here",
                       description="Time a short stream with 1, 2, 4, ... ONNX Runtime threads and remember the "
                       "smallest count within 5%% of the fastest. Every load does this once per model and "
                       "machine; this shows the result, or measures again with --again. "
                       "MIMI_LIVE_THREADS=N overrides it everywhere.")
    p.add_argument("--model", type=Path, required=True, metavar="DIR|VARIANT", help=MODEL_HELP)
    p.add_argument("--again", action="store_true", help="measure again (after a hardware or driver change)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(handler=_cmd_tune)


def _cmd_tune(args: argparse.Namespace) -> int:
    from app.codec.tuning import THREADS_ENV, tuned_threads, tuning_record

    say = None if args.json else (lambda text: print(text, file=sys.stderr))
    threads = tuned_threads(args.model, again=args.again, status=say)
    record = tuning_record(args.model) or {}
    forced = THREADS_ENV if os.environ.get(THREADS_ENV) else None
    if args.json:
        _print_json({"threads": threads, "ms_per_frame": record.get("ms_per_frame"), "overridden_by": forced})
        return 0
    if forced:
        print(f"{threads} threads ({forced} is set)")
        return 0
    for n, ms in (record.get("ms_per_frame") or {}).items():
        print(f"{n:>3} threads  {ms:6.1f} ms per 80 ms frame{'   <- used' if int(n) == threads else ''}")
    return 0


# ---------------------------------------------------------------------------------------------
# quantize


def _add_quantize(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("quantize", parents=[common], help="make a local int8 copy of a model and measure it",
                       description="Make an int8 copy of a model (ONNX Runtime dynamic quantization of its "
                       "MatMuls) under the app's data folder, once, and measure it against the original on "
                       "this machine: SNR of the audio on the same codes and end to end on the same input, "
                       "share of identical codes, and ms per frame of both.")
    p.add_argument("--model", type=Path, required=True, metavar="DIR|VARIANT", help=MODEL_HELP)
    p.add_argument("--decoder-only", action="store_true",
                   help="keep the encoder in float (the codes stay exactly the original's)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(handler=_cmd_quantize)


def _cmd_quantize(args: argparse.Namespace) -> int:
    from dataclasses import asdict

    from app.codec.quantize import PARTS, make_int8

    parts = PARTS[1] if args.decoder_only else PARTS[0]
    say = None if args.json else (lambda text: print(text, file=sys.stderr))
    folder, quality = make_int8(args.model, parts=parts, status=say)
    if args.json:
        _print_json({"folder": str(folder), **asdict(quality), "speedup": round(quality.speedup, 2)})
        return 0
    print(f"{folder}\n  {parts} in int8; against {quality.source}:\n"
          f"  SNR same codes {quality.snr_same_codes_db} dB, end to end {quality.snr_end_to_end_db} dB, "
          f"identical codes {quality.codes_agreement:.1%}\n"
          f"  {quality.ms_per_frame} ms/frame vs {quality.original_ms_per_frame} ({quality.speedup:.2f}x)")
    print(f"use it with: {PROG} run --model {folder}  (the window lists it with these numbers)")
    return 0


# ---------------------------------------------------------------------------------------------
# Parser and entry point

# Later issues add run/devices/models/download/bench/gui: write _add_<name> and list it here.
SUBCOMMANDS: list[Callable[[argparse._SubParsersAction, argparse.ArgumentParser], None]] = [
    _add_info,
    _add_roundtrip,
    _add_export,
    _add_run,
    _add_devices,
    _add_models,
    _add_download,
    _add_bench,
    _add_tune,
    _add_quantize,
    _add_gui,
]


def build_parser() -> argparse.ArgumentParser:
    # --debug works before or after the subcommand; SUPPRESS keeps a subparser's default from
    # overwriting a value given before the subcommand.
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                        help="show the full traceback on errors")
    parser = argparse.ArgumentParser(
        prog=PROG,
        parents=[common],
        description="Mimi Live: Kyutai's Mimi neural audio codec, streamed through ONNX Runtime.",
        epilog=f"Run '{PROG} COMMAND --help' for the options of one command.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("--self-test", action="store_true",
                        help="check this install or bundle headless (tiny model, Qt offscreen, no audio device)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for add in SUBCOMMANDS:
        add(sub, common)
    parser.set_defaults(handler=None)
    return parser


def _user_error_message(exc: BaseException) -> str | None:
    """One-line message for a user error, or None if exc is a bug that keeps its traceback."""
    from app.audio.files import AudioFileError

    # Each module is loaded iff it could have raised; no import here.
    known = (("app.codec.errors", "CodecError"), ("app.audio.engine", "EngineError"),
             ("app.audio.devices", "DeviceError"), ("app.audio.recorder", "RecordingError"),
             ("app.models.errors", "ModelError"))
    user_errors = tuple(
        cls for cls in (getattr(sys.modules.get(m), name, None) for m, name in known) if isinstance(cls, type)
    )
    if isinstance(exc, (UserError, AudioFileError, *user_errors)):
        text = str(exc)
    elif isinstance(exc, OSError):
        if exc.filename is not None and exc.strerror:
            text = f"{exc.filename}: {exc.strerror}"
        else:
            text = str(exc)
    else:
        return None
    return " ".join(text.split()) or type(exc).__name__


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    args.debug = getattr(args, "debug", False)
    if args.self_test:
        from app.selftest import main as self_test

        return self_test()
    handler = args.handler or _cmd_gui  # no command: the window
    try:
        with cli_signals.handled():  # SIGTERM and SIGHUP end every command as Ctrl-C does
            if getattr(args, "model", None) is not None:  # --model DIR|VARIANT, checked before any load
                from app.models import resolve_model

                args.model = resolve_model(args.model)
            return int(handler(args))
    except KeyboardInterrupt:
        if args.debug:
            raise
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        message = None if args.debug else _user_error_message(exc)
        if message is None:
            raise
        print(f"{PROG}: error: {message}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
