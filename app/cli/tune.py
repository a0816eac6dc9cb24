"""`mimi-live tune`: the thread count measured fastest for a model on this machine (main thread)."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from app.cli.args import MODEL_HELP
from app.cli.output import print_json

__all__ = ["add_tune", "cmd_tune"]


def add_tune(p: argparse.ArgumentParser) -> None:
    # Shows "5%%" as today's --help does: argparse expands % only in texts that name %(prog).
    p.description = ("Time a short stream with 1, 2, 4, ... ONNX Runtime threads and remember the "
                     "smallest count within 5%% of the fastest. Every load does this once per model and "
                     "machine; this shows the result, or measures again with --again. "
                     "MIMI_LIVE_THREADS=N overrides it everywhere.")
    p.add_argument("--model", type=Path, required=True, metavar="DIR|VARIANT", help=MODEL_HELP)
    p.add_argument("--again", action="store_true", help="measure again (after a hardware or driver change)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(handler=cmd_tune)


def cmd_tune(args: argparse.Namespace) -> int:
    from app.codec.tuning import THREADS_ENV, tuned_threads, tuning_record

    say = None if args.json else (lambda text: print(text, file=sys.stderr))
    threads = tuned_threads(args.model, again=args.again, status=say)
    record = tuning_record(args.model) or {}
    forced = THREADS_ENV if os.environ.get(THREADS_ENV) else None
    if args.json:
        print_json({"threads": threads, "ms_per_frame": record.get("ms_per_frame"), "overridden_by": forced})
        return 0
    if forced:
        print(f"{threads} threads ({forced} is set)")
        return 0
    for n, ms in (record.get("ms_per_frame") or {}).items():
        print(f"{n:>3} threads  {ms:6.1f} ms per 80 ms frame{'   <- used' if int(n) == threads else ''}")
    return 0
