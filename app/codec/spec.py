"""state_spec.txt: the list of streaming conv states of a Mimi ONNX export.

The file has ``#`` comments (one carries ``num_codebooks=K``), then an
``[encoder]`` and a ``[decoder]`` section; each section line reads
``kind name channels temporal`` with kind ``conv`` or ``conv_tr``. The order
of the lines is the order of the ``past_conv_<name>_state`` graph inputs.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from .errors import ModelContractError

__all__ = ["KINDS", "ConvStateSpec", "StateSpec", "parse_state_spec", "format_state_spec"]

KINDS = ("conv", "conv_tr")
SECTIONS = ("encoder", "decoder")

# Names become part of tensor names and must survive a whitespace split.
_NAME_RE = re.compile(r"[A-Za-z0-9_.]+\Z")
_NUM_CODEBOOKS_RE = re.compile(r"num_codebooks\s*=\s*(\S+)")
_SECTION_RE = re.compile(r"\[(.*)\]\Z")
_INT_RE = re.compile(r"[+-]?[0-9]+\Z")


@dataclass(frozen=True)
class ConvStateSpec:
    """One conv state: ``[1, channels, temporal]`` float32, carried between calls."""

    kind: str
    name: str
    channels: int
    temporal: int

    @property
    def input_name(self) -> str:
        return f"past_conv_{self.name}_state"

    @property
    def output_name(self) -> str:
        return f"present_conv_{self.name}_state"

    @property
    def shape(self) -> tuple[int, int, int]:
        return (1, self.channels, self.temporal)


@dataclass(frozen=True)
class StateSpec:
    """The parsed state_spec.txt: codebook count and conv states per model."""

    num_codebooks: int
    encoder: tuple[ConvStateSpec, ...]
    decoder: tuple[ConvStateSpec, ...]


def _positive_int(text: str, what: str, where: str) -> int:
    # int() alone would also take "1_024" or "١٢"; the format is plain ASCII digits.
    if not _INT_RE.match(text):
        raise ModelContractError(f"{where}: {what} '{text}' is not an integer")
    value = int(text)
    if value <= 0:
        raise ModelContractError(f"{where}: {what} is {value}, expected a positive integer")
    return value


def parse_state_spec(path: Path) -> StateSpec:
    """Read and validate a state_spec.txt; raise ModelContractError naming file and line."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ModelContractError(f"{path}: state spec file not found (it comes with the model files)") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ModelContractError(f"{path}: cannot read state spec: {exc}") from None

    num_codebooks: int | None = None
    sections: dict[str, list[ConvStateSpec]] = {}
    header_line: dict[str, int] = {}
    current: str | None = None
    for number, raw in enumerate(text.splitlines(), start=1):
        where = f"{path.name} line {number}"
        line = raw.strip()
        if not line:
            continue
        if line.startswith("#"):
            match = _NUM_CODEBOOKS_RE.search(line)
            if match:
                value = _positive_int(match.group(1), "num_codebooks", where)
                if num_codebooks is not None and value != num_codebooks:
                    raise ModelContractError(
                        f"{where}: num_codebooks={value} contradicts num_codebooks={num_codebooks}")
                num_codebooks = value
            continue
        match = _SECTION_RE.match(line)
        if match:
            current = match.group(1).strip()
            if current not in SECTIONS:
                raise ModelContractError(f"{where}: unknown section [{current}], expected [encoder] or [decoder]")
            if current in sections:
                raise ModelContractError(f"{where}: section [{current}] appears twice")
            sections[current] = []
            header_line[current] = number
            continue
        if current is None:
            raise ModelContractError(f"{where}: '{line}' is outside a section, expected [encoder] or [decoder] first")
        fields = line.split()
        if len(fields) != 4:
            raise ModelContractError(
                f"{where}: '{line}' has {len(fields)} fields, expected 4: kind name channels temporal"
            )
        kind, name, channels, temporal = fields
        if kind not in KINDS:
            raise ModelContractError(f"{where}: unknown kind '{kind}', expected conv or conv_tr")
        if not _NAME_RE.match(name):
            raise ModelContractError(f"{where}: name '{name}' may only use letters, digits, '_' and '.'")
        if any(entry.name == name for entry in sections[current]):
            raise ModelContractError(f"{where}: duplicate name '{name}' in [{current}]")
        sections[current].append(
            ConvStateSpec(
                kind=kind,
                name=name,
                channels=_positive_int(channels, "channels", where),
                temporal=_positive_int(temporal, "temporal", where),
            )
        )

    if num_codebooks is None:
        raise ModelContractError(f"{path.name}: no '# num_codebooks=K' comment line")
    for section in SECTIONS:
        if section not in sections:
            raise ModelContractError(f"{path.name}: no [{section}] section")
        if not sections[section]:
            raise ModelContractError(f"{path.name} line {header_line[section]}: section [{section}] is empty")
    return StateSpec(
        num_codebooks=num_codebooks,
        encoder=tuple(sections["encoder"]),
        decoder=tuple(sections["decoder"]),
    )


def format_state_spec(spec: StateSpec) -> str:
    """Write ``spec`` in the published state_spec.txt format (newline-terminated)."""
    lines = [
        "# Mimi streaming state spec",
        f"# num_codebooks={spec.num_codebooks}",
        "# format: kind name channels temporal",
    ]
    for section in SECTIONS:
        lines.append(f"[{section}]")
        for entry in getattr(spec, section):
            lines.append(f"{entry.kind} {entry.name} {entry.channels} {entry.temporal}")
    return "\n".join(lines) + "\n"
