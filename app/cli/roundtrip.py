"""`mimi-live roundtrip`: an audio file streamed through encoder and decoder as the live engine does,
written as a 24 kHz WAV (main thread; with the pipeline, the encoder runs on a thread of its own)."""

from __future__ import annotations

import argparse
import math
import sys
import time
from collections.abc import Generator, Iterable
from pathlib import Path
from typing import Any

import app.cli.args as cli_args
import app.cli.codec_loader as codec_loader
import app.cli.signals as signals
from app.cli.args import MODEL_HELP, ROUNDTRIP_CHUNK_MS_MAX
from app.cli.output import PROG, format_bps, percentiles_ms, print_json
from app.cli.user_errors import UserError
from app.config import FRAME_MS, FRAME_SIZE, SAMPLE_RATE_HZ

__all__ = ["add_roundtrip", "cmd_roundtrip"]

PROGRESS_MIN_DURATION_S = 10.0  # shorter files finish before a progress bar would help


def add_roundtrip(p: argparse.ArgumentParser) -> None:
    p.description = ("Read any audio file libsndfile reads (converted to 24 kHz mono), stream it "
                     "chunk by chunk through the encoder then the decoder, exactly as the live engine does, "
                     "and write the decoded audio as a 24 kHz WAV of the same duration.")
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
    p.set_defaults(handler=cmd_roundtrip)


def _progress(total_chunks: int, duration_s: float):  # a tqdm bar (tqdm is imported here only)
    from tqdm import tqdm

    show = duration_s > PROGRESS_MIN_DURATION_S and sys.stderr.isatty()
    return tqdm(total=total_chunks, unit="chunk", file=sys.stderr, disable=not show,
                desc=PROG, leave=False)


def _stream(codec, chunks: Iterable[Any], sequential: bool) -> Generator[tuple, None, None]:  # a StreamingCodec
    """(codes, audio, encode ms, decode ms) per chunk: one after the other, or pipelined."""
    if not sequential:
        from app.codec.pipeline import pipelined

        yield from pipelined(codec, chunks)
        return
    for chunk in chunks:
        codes = codec.encode(chunk)
        audio = codec.decode(codes)
        yield codes, audio, codec.last_encode_ms, codec.last_decode_ms


def cmd_roundtrip(args: argparse.Namespace) -> int:
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
    codec = codec_loader.open_codec(args.model, codebooks=args.codebooks, threads=threads)

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
                             guard=signals.deferred) as out, _progress(n_chunks, duration_s) as bar:
            for _codes, audio, enc_ms, dec_ms in signals.deferred_steps(stream):
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
        with signals.deferred():  # stops and joins the encoder thread (see deferred_steps)
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
        "encode_ms": percentiles_ms(encode_ms),
        "decode_ms": percentiles_ms(decode_ms),
        "kv_length": {"encoder": int(kv_enc), "decoder": int(kv_dec)},
        "duration_s": round(duration_s, 4),
        "rtf": round(wall_s / duration_s, 4) if duration_s > 0 else None,
        "pipelined": not args.sequential,
    }
    if args.json:
        print_json(summary)
        return 0
    print(f"{args.input} -> {args.output}")
    print(f"  {duration_s:.2f} s of audio, {summary['frames']} frames of {FRAME_MS} ms, "
          f"chunks of {args.chunk_ms} ms")
    rate = "unknown bitrate" if summary["bitrate_bps"] is None else format_bps(summary["bitrate_bps"])
    print(f"  {summary['codebooks']} codebooks = {rate}")
    for name in ("encode", "decode"):
        q = summary[f"{name}_ms"]
        print(f"  {name} per {FRAME_MS} ms frame: p50 {q['p50']:.2f} ms, p95 {q['p95']:.2f} ms")
    print(f"  KV length at the end: encoder {kv_enc}, decoder {kv_dec}")
    print(f"  real-time factor {summary['rtf']} (wall time / audio duration; < 1 keeps up)"
          + ("" if args.sequential else ", encoder and decoder pipelined"))
    return 0
