"""`mimi-live bench`: the model card's naive loop against the app's codec settings (main thread)."""

from __future__ import annotations

import argparse
from pathlib import Path

import app.cli.args as cli_args
from app.cli.args import MODEL_HELP
from app.cli.output import print_json

__all__ = ["add_bench", "cmd_bench"]


def add_bench(p: argparse.ArgumentParser) -> None:
    from app.models import INT8_PARTS  # the catalogue's copy: no onnx import to build the parser

    p.description = ("Stream the same input frame by frame (back to back, not paced) "
                     "through the model card's naive loop and through the app's codec settings; "
                     "report per-frame times, RTF, KV length, memory and CPU per frame for both.")
    p.add_argument("--model", type=Path, required=True, metavar="DIR|VARIANT", help=MODEL_HELP)
    p.add_argument("--frames", type=cli_args.bench_frames, default=1500, metavar="N",
                   help=f"80 ms frames per side, at most {cli_args.BENCH_FRAMES_MAX} "
                   "(default 1500 = 2 minutes of audio)")
    p.add_argument("--threads", type=cli_args.threads, metavar="N", help="intra-op threads for the app side")
    p.add_argument("--kv-window", type=cli_args.kv_window, default=250, metavar="N|none",
                   help="the app side's KV window")
    p.add_argument("--int8", choices=INT8_PARTS,
                   help="also time the local int8 copy (made once, like `quantize`) and report its SNR")
    p.add_argument("--no-naive", action="store_true",
                   help="leave the naive loop out (for long sessions: its growing cache makes it crawl)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(handler=cmd_bench)


def cmd_bench(args: argparse.Namespace) -> int:
    from app.codec.bench import run_bench

    result = run_bench(args.model, args.frames, threads=args.threads, kv_window=args.kv_window, int8=args.int8,
                       naive=not args.no_naive)
    if args.json:
        print_json(result)
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
