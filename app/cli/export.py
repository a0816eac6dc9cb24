"""`mimi-live export`: a model folder in the published streaming contract, built with torch and
transformers (main thread; needs the export extra, which the app itself never imports)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import app.cli.args as cli_args
from app.cli.output import PROG, print_json, print_lines
from app.cli.user_errors import UserError

__all__ = ["EXPORT_EXTRA_HINT", "add_export", "cmd_export"]

EXPORT_EXTRA_HINT = f"{PROG} export needs the export extra: pip install 'mimi-live[export]'"
EXPORT_MODULES = {"torch", "transformers", "onnxscript", "onnx"}


def add_export(p: argparse.ArgumentParser) -> None:
    p.description = ("Build Mimi with transformers and export encoder_model.onnx, "
                     "decoder_model.onnx and state_spec.txt in the published streaming contract. "
                     "Needs: pip install 'mimi-live[export]'.")
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
    p.set_defaults(handler=cmd_export)


def _export_extra_missing() -> int:
    print(EXPORT_EXTRA_HINT, file=sys.stderr)
    return 2


def cmd_export(args: argparse.Namespace) -> int:
    try:
        from app.codec.export import export_pair
    except ImportError as exc:
        if args.debug:
            raise
        if exc.name and exc.name.split(".")[0] not in EXPORT_MODULES:
            raise
        return _export_extra_missing()
    export_errors: tuple[type[Exception], ...] = ()  # an older exporter has no error class of its own
    try:
        from app.codec.export import ExportError

        export_errors = (ExportError,)
    except ImportError:
        pass

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
    except export_errors as exc:
        raise UserError(str(exc)) from exc
    if args.json:
        print_json(summary)
    else:
        print_lines(summary)
    return 0
