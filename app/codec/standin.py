"""The mark `mimi-live export` leaves in the folders it makes (any thread).

A folder exported with random weights has the published contract and cost but decodes noise:
reports and readouts made with it must say so, not pass its figures off as Mimi's.
"""

from __future__ import annotations

import json
from pathlib import Path

__all__ = ["EXPORT_MARK_FILE", "stand_in_note", "write_export_mark"]

EXPORT_MARK_FILE = "mimi-live-export.json"


def write_export_mark(folder: Path, weights: str, seed: int, tiny: bool) -> None:
    """Records how `folder` was made (`weights`: "random" or the checkpoint it came from)."""
    mark = {"made_by": "mimi-live export", "weights": weights, "seed": seed, "tiny": tiny}
    (Path(folder) / EXPORT_MARK_FILE).write_text(json.dumps(mark, indent=1) + "\n")


def stand_in_note(folder: Path | str) -> str | None:
    """One line if `folder` is a stand-in with random weights (its output is noise), else None."""
    try:
        mark = json.loads((Path(folder) / EXPORT_MARK_FILE).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(mark, dict) or mark.get("weights") != "random":
        return None
    size = "tiny " if mark.get("tiny") else ""
    return (f"{Path(folder).name} is a {size}stand-in exported with random weights (seed {mark.get('seed')}): "
            "it decodes noise, so its figures say nothing about Mimi's quality")
