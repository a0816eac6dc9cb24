"""`mimi-live quantize`: a local int8 copy of a model, measured against the original (main thread)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from app.cli.args import MODEL_HELP
from app.cli.output import PROG, print_json

__all__ = ["add_quantize", "cmd_quantize"]


def add_quantize(p: argparse.ArgumentParser) -> None:
    p.description = ("Make an int8 copy of a model (ONNX Runtime dynamic quantization of its "
                     "MatMuls) under the app's data folder, once, and measure it against the original on "
                     "this machine: SNR of the audio on the same codes and end to end on the same input, "
                     "share of identical codes, and ms per frame of both.")
    p.add_argument("--model", type=Path, required=True, metavar="DIR|VARIANT", help=MODEL_HELP)
    p.add_argument("--decoder-only", action="store_true",
                   help="keep the encoder in float (the codes stay exactly the original's)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(handler=cmd_quantize)


def cmd_quantize(args: argparse.Namespace) -> int:
    from dataclasses import asdict

    from app.codec.int8_copy import make_int8
    from app.config import INT8_PARTS

    parts = INT8_PARTS[1] if args.decoder_only else INT8_PARTS[0]
    say = None if args.json else (lambda text: print(text, file=sys.stderr))
    folder, quality = make_int8(args.model, parts=parts, status=say)
    if args.json:
        print_json({"folder": str(folder), **asdict(quality), "speedup": round(quality.speedup, 2)})
        return 0
    print(f"{folder}\n  {parts} in int8; against {quality.source}:\n"
          f"  SNR same codes {quality.snr_same_codes_db} dB, end to end {quality.snr_end_to_end_db} dB, "
          f"identical codes {quality.codes_agreement:.1%}\n"
          f"  {quality.ms_per_frame} ms/frame vs {quality.original_ms_per_frame} ({quality.speedup:.2f}x)")
    print(f"use it with: {PROG} run --model {folder}  (the window lists it with these numbers)")
    return 0
