"""The four published variants of BMekiker/mimi-onnx-streaming and their local cache (any thread).

Looks only at the Hugging Face cache on disk (`huggingface_hub.try_to_load_from_cache`) and at the
integrity manifests the downloader writes: nothing here touches the network (downloading is in
`app.models.download`). User-added local folders are remembered by the UI (QSettings), not here.

Integrity: a cached variant is used only after every file matches the hub's metadata (size and
sha256 for LFS files, the git blob sha1 for small text files). The expected values come from the
manifest written by `download_variant` (data dir, `models/manifests/<commit>/<variant>.json`) or,
for a cache filled by another tool, from the blob names of the HF cache (a blob is named by the
hub's ETag: the sha256 of an LFS file, the git sha1 of a regular file).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from app.config import HUB_REPO, INT8_PARTS, LOWEST_LATENCY_INT8_PARTS, MODEL_FILES, data_dir, write_atomically
from app.models.errors import CorruptModel, NotDownloaded, UnknownModel

if TYPE_CHECKING:
    from app.codec.quantize import Int8Quality



@dataclass(frozen=True)
class Variant:
    name: str  # folder in the hub repository
    codebooks: int
    weights: str  # "fp32" | "fp16"
    size_mb: int  # encoder + decoder, approximate

    @property
    def label(self) -> str:
        return f"{self.name}  ({self.codebooks} codebooks, {self.weights}, ~{self.size_mb} MB)"


VARIANTS: tuple[Variant, ...] = (
    Variant("streaming-8cb", 8, "fp32", 364),
    Variant("streaming-16cb", 16, "fp32", 428),
    Variant("streaming-8cb-fp16", 8, "fp16", 222),
    Variant("streaming-16cb-fp16", 16, "fp16", 276),
)


def variant(name: str) -> Variant | None:
    """The published variant called `name`, or None."""
    return next((v for v in VARIANTS if v.name == name), None)


def is_model_folder(folder: Path | str) -> bool:
    """Whether `folder` holds the three files of the streaming contract (not whether they are valid)."""
    folder = Path(folder)
    return all((folder / name).is_file() for name in MODEL_FILES)


def find_cached_file(repo_path: str, cache_dir: Path | str | None = None, revision: str | None = None) -> Path | None:
    """The cached copy of one file of the hub repository, or None (never touches the network)."""
    from huggingface_hub import try_to_load_from_cache

    try:
        found = try_to_load_from_cache(HUB_REPO, repo_path, cache_dir=cache_dir, revision=revision)
    except Exception:  # noqa: BLE001 - a broken cache is "not cached", never a crash
        return None
    # None (unknown) or the "known not to exist" sentinel are not files.
    return Path(found) if isinstance(found, str) and Path(found).is_file() else None


def find_cached(name: str | Variant, cache_dir: Path | str | None = None) -> Path | None:
    """The local folder of a published variant if all three files are in the HF cache, else None.

    Never touches the network. All three files must resolve into one snapshot folder.
    """
    name = name.name if isinstance(name, Variant) else str(name)
    files = [find_cached_file(f"{name}/{filename}", cache_dir) for filename in MODEL_FILES]
    if any(f is None for f in files):
        return None
    folders = {f.parent for f in files if f is not None}  # (all are, by now)
    return folders.pop() if len(folders) == 1 else None


# ---------------------------------------------------------------------------------------------
# Integrity

_HEX64 = re.compile(r"[0-9a-f]{64}")
_HEX40 = re.compile(r"[0-9a-f]{40}")
HASH_CHUNK = 1 << 20


@dataclass(frozen=True)
class Expected:
    """What the hub says a file is: its size (None if unknown) and sha256 or git blob sha1."""

    size: int | None
    sha256: str | None = None
    git_sha1: str | None = None

    def to_json(self) -> dict:
        return {"size": self.size, "sha256": self.sha256, "git_sha1": self.git_sha1}


def manifest_path(commit: str, name: str) -> Path:
    return data_dir() / "models" / "manifests" / commit / f"{name}.json"


def write_manifest(commit: str, name: str, expected: dict[str, Expected]) -> None:
    text = json.dumps({k: v.to_json() for k, v in expected.items()}, indent=1)
    write_atomically(manifest_path(commit, name), lambda tmp: tmp.write_text(text, encoding="utf-8"))


def read_manifest(commit: str, name: str) -> dict[str, Expected] | None:
    try:
        data = json.loads(manifest_path(commit, name).read_text(encoding="utf-8"))
        return {k: Expected(v.get("size"), v.get("sha256"), v.get("git_sha1")) for k, v in data.items()}
    except (OSError, ValueError, AttributeError, TypeError):
        return None


def _from_blob_name(path: Path) -> Expected | None:
    """The hub's ETag recorded as the blob name of an HF cache symlink, if `path` is one."""
    if not path.is_symlink():
        return None
    etag = Path(os.path.realpath(path)).name
    if _HEX64.fullmatch(etag):
        return Expected(None, sha256=etag)
    if _HEX40.fullmatch(etag):
        return Expected(None, git_sha1=etag)
    return None


def file_problem(path: Path, expected: Expected) -> str | None:
    """None if the file matches `expected`, else a short reason (missing, size or hash mismatch)."""
    try:
        size = path.stat().st_size
        if expected.size is not None and size != expected.size:
            return f"size {size} bytes, the hub says {expected.size}"
        if expected.sha256 is None and expected.git_sha1 is None:
            return "no hub checksum to check it against"
        sha256 = hashlib.sha256()
        sha1 = hashlib.sha1(b"blob %d\0" % size)
        with open(path, "rb") as f:
            while chunk := f.read(HASH_CHUNK):
                if expected.sha256 is not None:
                    sha256.update(chunk)
                if expected.git_sha1 is not None:
                    sha1.update(chunk)
    except OSError as exc:
        return exc.strerror or str(exc)
    if expected.sha256 is not None and sha256.hexdigest() != expected.sha256:
        return "sha256 does not match the hub's"
    if expected.git_sha1 is not None and sha1.hexdigest() != expected.git_sha1:
        return "checksum (git sha1) does not match the hub's"
    return None


def verify_cached(name: str | Variant, folder: Path) -> dict[str, str]:
    """Problems of a cached variant folder, file name -> reason; empty if every file checks out."""
    name = name.name if isinstance(name, Variant) else str(name)
    folder = Path(folder)
    manifest = read_manifest(folder.parent.name, name) or {}
    problems = {}
    for filename in MODEL_FILES:
        path = folder / filename
        expected = manifest.get(filename) or _from_blob_name(path)
        if expected is None:
            problems[filename] = "no hub checksum to check it against"
            continue
        problem = file_problem(path, expected)
        if problem:
            problems[filename] = problem
    return problems


def corrupt_message(name: str, problems: dict[str, str]) -> str:
    """The one line shown (CLI and window) when a cached variant fails its integrity check."""
    detail = "; ".join(f"{k}: {v}" for k, v in problems.items())
    return (f"{name} in the cache failed its integrity check ({detail}); not loaded: "
            f"run `mimi-live download {name}` to download it again")


def _same_folder(a: Path, b: Path) -> bool:
    if a == b:
        return True
    try:
        return a.resolve() == b.resolve()
    except OSError:
        return False


def cached_variant(folder: Path | str, cache_dir: Path | str | None = None) -> tuple[Variant, Path] | None:
    """The published variant whose cached folder `folder` is, with that folder; else None.

    Cheap (a few small reads and stats of the HF cache, no hashing): fine on any thread.
    """
    folder = Path(folder)
    for v in VARIANTS:
        cached = find_cached(v, cache_dir)
        if cached is not None and _same_folder(cached, folder):
            return v, cached
    return None


def check_cached_model(folder: Path | str, cache_dir: Path | str | None = None) -> None:
    """Raises CorruptModel if `folder` is a cached published variant and any of its files does not
    match the hub's size or checksum (one line: which variant, which files and why, how to repair).

    Slow for a cached variant (hashes every file: 100-400 MB): call it off the GUI thread. Any
    other folder (a user's own model) passes at once; the codec checks its contract when it loads.
    """
    found = cached_variant(folder, cache_dir)
    if found is None:
        return
    v, cached = found
    problems = verify_cached(v, cached)
    if problems:
        raise CorruptModel(corrupt_message(v.name, problems))


# ---------------------------------------------------------------------------------------------
# --model DIR|VARIANT


def variant_names() -> str:
    return ", ".join(v.name for v in VARIANTS)


def resolve_model(text: str | Path, cache_dir: Path | str | None = None) -> Path:
    """The folder to load for a `--model` value, checked before anything is loaded.

    An existing folder is itself (the codec checks its contract). A published variant name is its
    cached folder, after every file matched the hub's size and checksum. Raises UnknownModel,
    NotDownloaded or CorruptModel (one-line messages).
    """
    path = Path(text).expanduser()
    if path.is_dir():
        return path
    name = str(text)
    if variant(name) is None:
        raise UnknownModel(f"{text}: no such model folder or variant (published variants: {variant_names()})")
    folder = find_cached(name, cache_dir)
    if folder is None:
        raise NotDownloaded(f"{name} is not downloaded yet: run `mimi-live download {name}`")
    problems = verify_cached(name, folder)
    if problems:
        raise CorruptModel(corrupt_message(name, problems))
    return folder


# ---------------------------------------------------------------------------------------------
# Local int8 copies (made on this machine by app.codec.quantize, each with its measured quality)

def local_int8_models() -> list[tuple[Path, Int8Quality]]:
    """Every int8 copy made on this machine whose source model still exists, with its quality record.

    Reads only the data dir (a few small JSON files): fine on the GUI thread. Folders are resolved.
    """
    from app.codec.quantize import int8_models

    return [(Path(folder).resolve(), quality) for folder, quality in int8_models()]


def make_int8_copy(folder: Path | str, parts: str = INT8_PARTS[0],
                   status: Callable[[str], None] | None = None) -> tuple[Path, Int8Quality]:
    """The int8 copy of the model in `folder` (made once, then reused) and its measured quality.

    Slow the first time (quantization, then ~20 s of test signal through both models: ~30 s at full
    size, using every core): call it off the GUI thread. `status` gets short progress lines (from
    the calling thread). Raises a codec ModelContractError (one line) if the copy cannot be made.
    """
    from app.codec.int8_copy import make_int8

    target, quality = make_int8(Path(folder), parts=parts, status=status)
    return Path(target).resolve(), quality


def lowest_latency_model(folder: Path | str,
                         status: Callable[[str], None] | None = None) -> tuple[Path, Int8Quality]:
    """The model the lowest-latency preset streams, and its measured quality: `folder` itself if it
    is an int8 copy already, else its decoder-only int8 copy (made once, as make_int8_copy)."""
    from app.codec.quantize import read_quality

    quality = read_quality(Path(folder))
    if quality is not None:
        return Path(folder).resolve(), quality
    return make_int8_copy(folder, LOWEST_LATENCY_INT8_PARTS, status=status)
