"""`mimi-live gui` (and `mimi-live` with no command): the window (main thread, which runs Qt's loop)."""

from __future__ import annotations

import argparse
from pathlib import Path

import app.cli.signals as signals
from app.cli.args import MODEL_HELP

__all__ = ["add_gui", "cmd_gui"]


def add_gui(p: argparse.ArgumentParser) -> None:
    p.description = "Open the Mimi Live window (what `mimi-live` with no command does)."
    p.add_argument("--model", type=Path, metavar="DIR|VARIANT", help=MODEL_HELP + " to open (added to the model list)")
    p.set_defaults(handler=cmd_gui)


def cmd_gui(args: argparse.Namespace) -> int:
    from app.ui.app import run_gui

    code = run_gui(model=getattr(args, "model", None))  # no command: no --model either
    signals.raise_pending()  # the window closed on a signal: exit as Ctrl-C does
    return code
