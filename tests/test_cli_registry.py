"""The command registry (app.cli.registry): every command listed, and `--help` loads no command.

`mimi-live --help` and `mimi-live COMMAND --help` must stay fast: they may import a command's
module but nothing heavy, so each is run in a fresh interpreter and its sys.modules inspected.
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import json
import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest

import app.cli
from app.cli import build_parser
from app.cli.registry import COMMANDS, argument_adder

REPO = Path(__file__).resolve().parents[1]
HEAVY = {"numpy", "onnxruntime", "PySide6", "torch", "transformers", "huggingface_hub", "sounddevice",
         "soundfile"}
COMMAND_MODULES = sorted({info.module for info in COMMANDS.values()})

PROBE = """
import json, sys
from app.cli import main
try:
    main(sys.argv[1:])
except SystemExit:
    pass
print(json.dumps({"heavy": sorted(m for m in sys.modules if m.split(".")[0] in %r),
                  "commands": sorted(m for m in sys.modules if m in %r)}), file=sys.stderr)
"""


def _subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


def _probe(*argv: str) -> dict:
    code = PROBE % (HEAVY, COMMAND_MODULES)
    result = subprocess.run([sys.executable, "-c", code, *argv], cwd=REPO, capture_output=True, text=True,
                            timeout=120, check=True)
    return json.loads(result.stderr.strip().splitlines()[-1])


def test_every_command_module_function_is_registered() -> None:
    declared = set()
    for module_info in pkgutil.iter_modules(app.cli.__path__):
        if module_info.name == "__main__":
            continue
        module = importlib.import_module(f"app.cli.{module_info.name}")
        for name, function in inspect.getmembers(module, inspect.isfunction):
            if name.startswith("add_") and function.__module__ == module.__name__:
                declared.add(name.removeprefix("add_"))
                assert COMMANDS[name.removeprefix("add_")].module == module.__name__
    assert declared == set(COMMANDS)


def test_the_parser_offers_every_registered_command_in_order() -> None:
    assert list(_subcommands(build_parser())) == list(COMMANDS)
    for name in COMMANDS:
        chosen = _subcommands(build_parser(name))[name]
        assert callable(chosen.get_default("handler")), name
        assert chosen.description, name
        assert argument_adder(name).__name__ == f"add_{name}"


def test_top_level_help_lists_each_summary(capsys) -> None:
    with pytest.raises(SystemExit):
        app.cli.main(["--help"])
    out = " ".join(capsys.readouterr().out.split())
    for name, info in COMMANDS.items():
        assert f"{name} {info.summary}" in out


def test_help_imports_no_command_and_nothing_heavy() -> None:
    assert _probe("--help") == {"heavy": [], "commands": []}


@pytest.mark.parametrize("command", list(COMMANDS))
def test_a_commands_help_imports_only_its_own_module(command) -> None:
    assert _probe(command, "--help") == {"heavy": [], "commands": [COMMANDS[command].module]}
