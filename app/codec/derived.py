"""Model files the app derives from a user's model (edited or quantized graphs), cached on disk.

Each derived file lives under ``<data dir>/<kind>/<key>/``; the key changes with the
source file's path, size and mtime and with the edit's version, so a changed source or
a changed edit never reuses a stale file. Files are written beside their target and
renamed into place, so a crash never leaves half a file where the next start looks.
Each folder records what it was made from; making a new one removes the ones it replaces
(same sources, older edit or older files) and those whose sources are gone, so the data
folder does not fill up with full-size copies nobody will load again.
"""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import onnx

from ..config import data_dir, write_atomically

__all__ = ["source_key", "derived_dir", "save_atomically", "record_and_prune", "MADE_FROM_FILE"]

MADE_FROM_FILE = "made-from.txt"


def source_key(sources: list[Path], version: int | str) -> str:
    """A short key that changes with the sources' paths, sizes and mtimes, and with `version`."""
    parts = [f"v{version}"]
    for source in sources:
        stat = source.stat()
        parts.append(f"{source.resolve()}|{stat.st_size}|{stat.st_mtime_ns}")
    return hashlib.sha256("\n".join(parts).encode("utf-8")).hexdigest()[:20]


def derived_dir(kind: str, sources: list[Path], version: int | str, cache_dir: Path | None = None) -> Path:
    """The folder for files of `kind` derived from `sources` by edit `version` (not created)."""
    key = source_key(sources, f"{kind}|{version}")
    return (Path(cache_dir) if cache_dir is not None else data_dir() / kind) / key


def save_atomically(model: onnx.ModelProto, target: Path) -> None:
    """Write `model` to `target` via a temporary file in the same folder and a rename."""
    write_atomically(target, lambda tmp: onnx.save_model(model, str(tmp)))


def record_and_prune(folder: Path, sources: list[Path], tag: str = "") -> None:
    """Notes in `folder` what it was made from (`sources`, and `tag` for variants of one edit that
    are kept side by side), then removes its siblings made from the same sources with the same
    tag, or from sources that no longer exist. Folders without a record are left alone."""
    record = [tag, *(str(Path(s).resolve()) for s in sources)]
    try:
        (folder / MADE_FROM_FILE).write_text("\n".join(record) + "\n", encoding="utf-8")
        siblings = [p for p in folder.parent.iterdir() if p.is_dir() and p != folder]
    except OSError:
        return  # a read-only data folder: nothing recorded, nothing removed
    for sibling in siblings:
        try:
            theirs = (sibling / MADE_FROM_FILE).read_text(encoding="utf-8").splitlines()
        except OSError:
            continue
        if theirs == record or not all(Path(p).exists() for p in theirs[1:]):
            shutil.rmtree(sibling, ignore_errors=True)
