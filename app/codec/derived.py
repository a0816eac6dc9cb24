"""Model files the app derives from a user's model (edited or quantized graphs), cached on disk.

Each derived file lives under ``<data dir>/<kind>/<key>/``; the key changes with the
source file's path, size and mtime and with the edit's version, so a changed source or
a changed edit never reuses a stale file. Files are written beside their target and
renamed into place, so a crash never leaves half a file where the next start looks.

Each folder records (in ``made-from.txt``, JSON) what it was made from and, for every file it
holds, the size and sha256 it had when it was made. Making a new folder removes the ones it
replaces (same sources, older edit or older files) and those whose sources are gone, so the data
folder does not fill up with full-size copies nobody will load again.

Checking a file against its record (``file_problem``): the record also keeps the file's size,
mtime, ctime and inode as they were after it was written. While all four still match, the file is
taken as recorded without reading it (a ``stat``, ~2 us); when any differs the whole file is
hashed (sha256, ~0.25 s per 200 MB here) and, if the hash still matches (a backup restored, a
``touch``), the record is brought up to date so the next use is quick again. Truncating, zeroing
or swapping a file always changes at least one of the four (writing sets mtime and ctime, a rename
brings another inode, and ctime cannot be set back), so hashing on every load would only catch
damage that bypasses the file system (bit rot), at ~0.5-1 s per model load on every start and
every model switch, while audio streams.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import onnx

from ..config import data_dir, write_atomically

__all__ = [
    "MADE_FROM_FILE", "Record", "source_key", "derived_dir", "save_atomically", "sha256_of", "read_record",
    "write_record", "prune_siblings", "record_and_prune", "file_problem", "is_intact",
]

MADE_FROM_FILE = "made-from.txt"
_HASH_BLOCK = 1 << 20  # 1 MiB reads: hashlib releases the GIL on each, the loader never hogs it

# path -> (sha256, stamp) of files hashed (or made) by this process and found as recorded: a data
# folder that cannot take the refreshed stamp is not hashed again on every use.
_verified: dict[str, tuple[str, dict[str, int]]] = {}


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


def sha256_of(path: Path) -> str:
    """The sha256 of the file at `path`, read in blocks (hex)."""
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        while block := file.read(_HASH_BLOCK):
            digest.update(block)
    return digest.hexdigest()


def _stamp(path: Path) -> dict[str, int]:
    """What a write, truncation or swap of the file changes without reading it."""
    stat = path.stat()
    return {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns, "ctime_ns": stat.st_ctime_ns, "inode": stat.st_ino}


@dataclass(frozen=True)
class Record:
    """What a derived folder says about itself."""

    kind: str
    tag: str
    sources: tuple[str, ...]
    files: dict[str, dict]  # file name -> {"sha256", "size", "mtime_ns", "ctime_ns", "inode"}

    def made_from(self) -> tuple[str, tuple[str, ...]]:
        return self.tag, self.sources


def read_record(folder: Path) -> Record | None:
    """The folder's record, or None if it has none or an unreadable one. Folders made before the
    checksums read as a record with no files (their sources still count for pruning)."""
    try:
        text = (Path(folder) / MADE_FROM_FILE).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None
    try:
        data = json.loads(text)
        files = data["files"]
        if not isinstance(files, dict) or not all(isinstance(f, dict) for f in files.values()):
            return None
        return Record(str(data["kind"]), str(data["tag"]), tuple(map(str, data["sources"])), files)
    except (ValueError, KeyError, TypeError):
        if text.lstrip().startswith("{"):
            return None  # a damaged record
        lines = text.splitlines()  # the older format: tag, then one source per line
        return Record("", lines[0] if lines else "", tuple(lines[1:]), {}) if lines else None


def _write(folder: Path, record: Record) -> None:
    data = {"kind": record.kind, "tag": record.tag, "sources": list(record.sources), "files": record.files}
    text = json.dumps(data, indent=1) + "\n"
    write_atomically(Path(folder) / MADE_FROM_FILE, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def write_record(folder: Path, sources: Iterable[Path], tag: str = "", files: Iterable[str] = (),
                 kind: str = "") -> None:
    """Records in `folder` what it was made from and the checksum of each of `files` (names in
    `folder`, hashed now: call it once they are complete). Raises OSError if it cannot."""
    folder = Path(folder)
    entries: dict[str, dict] = {}
    for name in files:
        stamp = _stamp(folder / name)
        digest = sha256_of(folder / name)
        entries[name] = {"sha256": digest, **stamp}
        _verified[str(folder / name)] = (digest, stamp)
    record = Record(kind or folder.parent.name, tag, tuple(str(Path(s).resolve()) for s in sources), entries)
    _write(folder, record)


def prune_siblings(folder: Path) -> None:
    """Removes the siblings of `folder` made from the same sources with the same tag (the ones it
    replaces), or from sources that no longer exist. Folders without a record are left alone."""
    folder = Path(folder)
    mine = read_record(folder)
    try:
        siblings = [p for p in folder.parent.iterdir() if p.is_dir() and p != folder]
    except OSError:
        return
    for sibling in siblings:
        theirs = read_record(sibling)
        if theirs is None:
            continue
        if (mine is not None and theirs.made_from() == mine.made_from()) or not all(
                Path(p).exists() for p in theirs.sources):
            shutil.rmtree(sibling, ignore_errors=True)


def record_and_prune(folder: Path, sources: list[Path], tag: str = "", files: Iterable[str] = (),
                     kind: str = "") -> bool:
    """``write_record`` then ``prune_siblings``; False (nothing recorded, nothing removed) if the
    data folder cannot be written: the files then count as unchecked and are made again next time."""
    try:
        write_record(folder, sources, tag, files, kind)
    except OSError:
        return False
    prune_siblings(folder)
    return True


def file_problem(path: Path, thorough: bool = True) -> str | None:
    """None if the derived file at `path` is the one its folder's record describes, else what is
    wrong with it (one phrase). Only a stat while the file is as it was after it was written; a
    changed stamp costs a full hash, or with `thorough` False is reported as a problem at once
    (prepare's parent process then leaves the hashing to its child)."""
    path = Path(path)
    record = read_record(path.parent)
    if record is None:
        return "no record of how it was made"
    entry = record.files.get(path.name)
    if entry is None:
        return "no checksum recorded (made by an older version)"
    try:
        stamp = _stamp(path)
    except OSError:
        return "missing"
    recorded = {k: entry.get(k) for k in stamp}
    if stamp == recorded or _verified.get(str(path)) == (entry.get("sha256"), stamp):
        return None
    if stamp["size"] != entry.get("size"):
        return f"{stamp['size']} bytes instead of {entry.get('size')}"
    if not thorough:
        return "changed since it was made (not checked yet)"
    try:
        digest = sha256_of(path)
    except OSError as exc:
        return f"unreadable ({exc.strerror or exc})"
    if digest != entry.get("sha256"):
        return "its sha256 differs from the one recorded when it was made"
    _verified[str(path)] = (digest, stamp)
    try:  # the same bytes, touched or restored: make the next check a quick one again
        _write(path.parent, Record(record.kind, record.tag, record.sources,
                                   {**record.files, path.name: {**entry, **stamp}}))
    except OSError:
        pass
    return None


def is_intact(path: Path) -> bool:
    """Whether `path` is as recorded, from its stat alone (no hashing)."""
    return file_problem(path, thorough=False) is None
