"""Every `mimi-live` command: its name, the module that implements it, and its one-line summary
(main thread).

`mimi-live --help` needs only the summaries, so a command's module is imported only when that
command is parsed; its imports (and theirs) cost nothing to the others. A module implements a
command NAME with two functions: `add_NAME(parser)` declares the arguments and the description,
and sets `handler=cmd_NAME`, which runs the parsed command and returns the exit code.
"""

from __future__ import annotations

import argparse
import importlib
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["COMMANDS", "CommandInfo", "argument_adder"]


@dataclass(frozen=True)
class CommandInfo:
    module: str  # imported on first use only
    summary: str  # the line under COMMAND in `mimi-live --help`


# In the order `mimi-live --help` lists them.
COMMANDS: dict[str, CommandInfo] = {
    "info": CommandInfo("app.cli.info", "load a model folder and print its contract summary"),
    "roundtrip": CommandInfo("app.cli.roundtrip", "stream an audio file through encoder and decoder, write the result"),
    "export": CommandInfo("app.cli.export", "export a contract-identical model folder (needs the export extra)"),
    "run": CommandInfo("app.cli.run", "stream live audio through the codec, headless"),
    "devices": CommandInfo("app.cli.run", "list audio devices"),
    "models": CommandInfo("app.cli.models", "list the published model variants and what is downloaded"),
    "download": CommandInfo("app.cli.models", "download a published model variant"),
    "bench": CommandInfo("app.cli.bench", "time the naive loop against the app's settings"),
    "tune": CommandInfo("app.cli.tune", "find (or show) the fastest thread count for a model here"),
    "quantize": CommandInfo("app.cli.quantize", "make a local int8 copy of a model and measure it"),
    "compare": CommandInfo("app.cli.compare", "a file through Mimi, Codec2 and Opus: WAVs, quality figures, a report"),
    "gui": CommandInfo("app.cli.gui", "open the Mimi Live window (the default)"),
}


def argument_adder(name: str) -> Callable[[argparse.ArgumentParser], None]:
    """`add_<name>` of the command's module, importing the module."""
    module = importlib.import_module(COMMANDS[name].module)
    return getattr(module, f"add_{name}")
