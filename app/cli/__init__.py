"""`mimi-live` command line: a thin argparse front over the app's rooms (main thread).

Each command lives in a module of this package, listed in `registry.COMMANDS` and imported only
when that command is parsed, so `--help` loads none of them. Handlers return an exit code. User
errors (see `user_errors`) become one line `mimi-live: error: <message>` on stderr and exit code 1;
`--debug` re-raises them with the traceback instead. Anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from app import __version__
from app.cli import signals
from app.cli.output import PROG
from app.cli.registry import COMMANDS, argument_adder
from app.cli.user_errors import user_error_message

__all__ = ["build_parser", "command_in", "main"]


def command_in(argv: Sequence[str]) -> str | None:
    """The command argparse will pick: the first word that is not an option (the top-level
    options take no values), or None."""
    words = iter(argv)
    for word in words:
        if word == "--":
            return next(words, None)
        if not word.startswith("-"):
            return word
    return None


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser; only `command` (if it is one) gets its arguments, the others just their summary."""
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
    for name, info in COMMANDS.items():
        if name == command:
            argument_adder(name)(sub.add_parser(name, parents=[common], help=info.summary))
        else:
            sub.add_parser(name, help=info.summary)
    parser.set_defaults(handler=None)
    return parser


def main(argv: list[str] | None = None) -> int:
    words = sys.argv[1:] if argv is None else argv
    args = build_parser(command_in(words)).parse_args(words)
    args.debug = getattr(args, "debug", False)
    if args.self_test:
        from app.selftest import main as self_test

        return self_test()
    if args.handler is None:  # no command: the window
        from app.cli.gui import cmd_gui

        args.handler = cmd_gui
    try:
        with signals.handled():  # SIGTERM and SIGHUP end every command as Ctrl-C does
            if getattr(args, "model", None) is not None:  # --model DIR|VARIANT, checked before any load
                from app.models import resolve_model

                args.model = resolve_model(args.model)
            return int(args.handler(args))
    except KeyboardInterrupt:
        if args.debug:
            raise
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        message = None if args.debug else user_error_message(exc)
        if message is None:
            raise
        print(f"{PROG}: error: {message}", file=sys.stderr)
        return 1
