"""`mimi-live run` (the live engine, headless) and `mimi-live devices` (main thread; the engine's
own threads stream, this one polls its metrics queue and prints)."""

from __future__ import annotations

import argparse
import contextlib
import math
import sys
import time
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING

import app.cli.args as cli_args
import app.cli.signals as signals
from app.cli.args import MODEL_HELP, RUN_CHUNK_MS_MAX
from app.cli.output import PROG, print_json, print_lines
from app.cli.user_errors import UserError
from app.config import CLASSIC_PATH_KEYS, DEFAULT_DEVICE_LATENCY_MS, FRAME_MS, LOWEST_LATENCY_DEVICE_MS

if TYPE_CHECKING:
    from app.audio.native_log import NativeMessages

__all__ = ["add_devices", "add_run", "cmd_devices", "cmd_run"]

METRICS_POLL_S = 0.1


def add_run(p: argparse.ArgumentParser) -> None:
    p.description = ("Microphone (or a looped file, or a tone) -> Mimi -> speaker, until "
                     "--duration ends or Ctrl-C; then a summary.")
    p.add_argument("--model", type=Path, required=True, metavar="DIR|VARIANT", help=MODEL_HELP)
    p.add_argument("--input-device", type=cli_args.device, metavar="X", help="input device index or name part")
    p.add_argument("--output-device", type=cli_args.device, metavar="Y", help="output device index or name part")
    source = p.add_mutually_exclusive_group()
    source.add_argument("--input-file", type=Path, metavar="F",
                        help="play this file in a loop instead of the microphone")
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
    p.add_argument("--monitor", choices=("codec", "bypass", "residual", *CLASSIC_PATH_KEYS), default="codec",
                   help="what the speaker plays (default codec); a classic codec turns --classic-paths on")
    p.add_argument("--classic-paths", action="store_true",
                   help="run Codec2 1200/3200 and Opus 6/12 kbps beside Mimi on the same input, every path "
                   "delayed to the slowest (~85 ms more), their measured bitrates in the summary")
    p.add_argument("--bypass", dest="monitor", action="store_const", const="bypass", help="same as --monitor bypass")
    p.add_argument("--record", type=Path, metavar="DIR", help="record input and reconstruction as WAV files here")
    latency = p.add_mutually_exclusive_group()
    latency.add_argument("--device-latency-ms", type=cli_args.device_latency_ms, default=DEFAULT_DEVICE_LATENCY_MS,
                         metavar="MS", help=f"latency asked of the audio devices, 1..{cli_args.DEVICE_LATENCY_MS_MAX} "
                         f"(default {DEFAULT_DEVICE_LATENCY_MS}; raise it if you hear dropouts)")
    latency.add_argument("--lowest-latency", action="store_true",
                         help=f"the lowest-latency preset: {LOWEST_LATENCY_DEVICE_MS} ms device latency, "
                         f"{FRAME_MS} ms chunks and the model's int8 copy with only the decoder in int8 (codes "
                         "unchanged; made once, ~30 s at full size); its numbers in the summary")
    p.add_argument("--metrics-out", type=Path, metavar="F.jsonl", help="write one JSON line per chunk")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.set_defaults(handler=cmd_run)


def _metrics_row(m) -> dict:  # an app.audio.metrics chunk record
    row = {name: getattr(m, name) for name in m.__slots__ if name != "codes"}
    row["codes"] = m.codes.tolist()
    return row


@contextlib.contextmanager
def _audio_library_lines() -> Iterator[NativeMessages | None]:
    """Commands that open audio devices: the log file, and the lines ALSA and PortAudio print
    on stderr moved into it (counted) so the terminal shows only the app's own."""
    from app.audio.native_log import NativeMessages
    from app.logs import setup_logging

    with NativeMessages() as messages:  # first: the log's terminal handler writes to its stderr
        try:
            setup_logging(console=True)
        except OSError as exc:
            messages.stop()
            print(f"{PROG}: cannot write the log file ({exc}); the audio libraries' messages stay on stderr",
                  file=sys.stderr)
            yield None
            return
        yield messages


def cmd_run(args: argparse.Namespace) -> int:
    with _audio_library_lines() as library:
        summary, code = _run_live(args)
    if library is not None:
        summary["audio_library_lines"] = {"total": library.count, "xruns": library.underruns}
    if args.json:
        print_json(summary)
    else:
        print_lines(summary)
    return code


def _run_live(args: argparse.Namespace) -> tuple[dict, int]:
    from app.audio.engine import Engine, EngineConfig
    from app.audio.metrics import EngineEvent
    from app.cli.metrics_file import MetricsFile

    model, preset = _preset(args)
    source = "file" if args.input_file else "tone" if args.tone else "mic"
    config = EngineConfig(model=model, codebooks=args.codebooks, chunk_ms=args.chunk_ms,
                          kv_window=args.kv_window, threads=args.threads, source=source,
                          input_file=args.input_file, tone_hz=args.tone or 440.0,
                          input_device=args.input_device, output_device=args.output_device,
                          monitor=args.monitor, record_dir=args.record,
                          classic_paths=args.classic_paths or args.monitor in CLASSIC_PATH_KEYS,
                          device_latency_s=(LOWEST_LATENCY_DEVICE_MS if preset else args.device_latency_ms) / 1000)
    engine = Engine()
    metrics_file = MetricsFile(args.metrics_out) if args.metrics_out else None
    reason = "duration reached"
    interrupted = False

    def drain() -> None:
        # Whole batches only: a signal waits until every line drained from the queue is written.
        with signals.deferred():
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
    except KeyboardInterrupt as exc:  # Ctrl-C, SIGTERM or SIGHUP (app.cli.signals)
        interrupted = True
        reason = f"interrupted ({exc.label if isinstance(exc, signals.Interrupted) else 'Ctrl-C'})"
    finally:
        summary = engine.stop(reason)
        if metrics_file is not None:
            with signals.deferred():
                for item in engine.queue.drain():
                    if not isinstance(item, EngineEvent):
                        metrics_file.write(_metrics_row(item))
                metrics_file.close()
    if preset:
        summary["preset"] = preset
    return summary, 0 if interrupted or reason == "duration reached" else 1


def _preset(args: argparse.Namespace) -> tuple[Path, dict | None]:
    """The model to stream and, with --lowest-latency, what the preset chose (the summary's "preset")."""
    if not args.lowest_latency:
        return args.model, None
    if args.chunk_ms != FRAME_MS:
        raise UserError(f"--lowest-latency streams {FRAME_MS} ms chunks: leave out --chunk-ms")
    from app.models import lowest_latency_model

    model, quality = lowest_latency_model(args.model, status=lambda text: print(f"{PROG}: {text}", file=sys.stderr))
    print(f"{PROG}: lowest latency: {model} ({quality.parts} in int8, {quality.ms_per_frame} vs "
          f"{quality.original_ms_per_frame} ms/frame, SNR {quality.snr_end_to_end_db} dB vs float), "
          f"devices at {LOWEST_LATENCY_DEVICE_MS} ms", file=sys.stderr)
    # The copy's numbers spelled as `quantize --json` spells them.
    return model, {"name": "lowest-latency", "model": str(model), "device_latency_ms": LOWEST_LATENCY_DEVICE_MS,
                   **asdict(quality)}


def add_devices(p: argparse.ArgumentParser) -> None:
    p.description = "List the audio devices PortAudio sees (index, name, channels, rate)."
    p.add_argument("--json", action="store_true", help="print a JSON list")
    p.set_defaults(handler=cmd_devices)


def cmd_devices(args: argparse.Namespace) -> int:
    from dataclasses import asdict

    from app.audio.devices import list_devices

    with _audio_library_lines():
        devices = list_devices()
    if args.json:
        print_json([asdict(d) for d in devices])
        return 0
    for d in devices:
        print(f"{d.index:3d}  {d.name}  (in {d.max_input_channels}, out {d.max_output_channels}, "
              f"{d.default_samplerate:.0f} Hz, {d.hostapi})")
    if not devices:
        print("no audio devices found")
    return 0
