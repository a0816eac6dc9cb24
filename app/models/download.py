"""Download a published variant into the standard Hugging Face cache, with progress, cancel and checks.

Runs on any thread except the GUI's (it blocks). The transfers are huggingface_hub's: HF_HOME /
HF_HUB_CACHE, HF_ENDPOINT, HF_HUB_OFFLINE, tokens and proxies. A transfer that drops mid-file is
resumed with a Range request by huggingface_hub; files already complete stay in the cache, so
running the download again fetches only what is missing. A partial file is never left behind where
the loader could find it.

A hub that never answers must not hang the download (hub_client.py): about 30 s at worst, then
one line naming the host. (Files a hub serves through hf_xet are fetched by hf_xet's own client,
with its own timeouts and retries.)

Before a variant is reported downloaded, every file is checked against the hub's metadata
(`model_info(files_metadata=True)`: size and sha256 for LFS files, git blob sha1 otherwise); the
expected values are saved as a manifest so `resolve_model` checks them again, offline, before any
load. A file that fails is removed from the cache and reported.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm as _base_tqdm

from app.config import HUB_REPO, MODEL_FILES, write_atomically
from app.models.catalogue import (
    VARIANTS,
    Expected,
    file_problem,
    find_cached,
    find_cached_file,
    variant,
    variant_names,
    verify_cached,
    write_manifest,
)
from app.models.errors import (
    CorruptModel,
    DownloadCancelled,
    DownloadError,
    UnknownModel,
    translate_download_error,
)
from app.models.hub_client import (  # noqa: F401 - the timeout's names, re-exported
    DEFAULT_HUB_TIMEOUT_S,
    HUB_TIMEOUT_ENV,
    HUB_TRIES,
    Budget,
    bounded,
    hub_timeout_s,
    metadata,
)

RATE_WINDOW_S = 3.0  # rate = bytes over the last few seconds


@dataclass(frozen=True)
class DownloadProgress:
    """One progress report: whole-variant bytes, current rate and time left (None if unknown)."""

    variant: str
    filename: str  # file being transferred now
    done_bytes: int
    total_bytes: int
    rate_bps: float | None
    eta_s: float | None

    @property
    def fraction(self) -> float:
        return self.done_bytes / self.total_bytes if self.total_bytes else 0.0


ProgressCallback = Callable[[DownloadProgress], None]


@dataclass(frozen=True)
class ModelStatus:
    """A row of `mimi-live models`: a published variant and its local copy, if any."""

    name: str
    codebooks: int
    weights: str
    size_bytes: int  # exact when cached, the catalogue's estimate otherwise
    cached: bool
    folder: Path | None

    def to_json(self) -> dict:
        return {"variant": self.name, "codebooks": self.codebooks, "weights": self.weights,
                "size_bytes": self.size_bytes, "cached": self.cached,
                "folder": str(self.folder) if self.folder else None}


def list_models(cache_dir: Path | str | None = None) -> list[ModelStatus]:
    """The published variants and whether each is complete in the cache (no network, no hashing)."""
    rows = []
    for v in VARIANTS:
        folder = find_cached(v, cache_dir)
        size = (sum((folder / f).stat().st_size for f in MODEL_FILES) if folder is not None
                else v.size_mb * 1_000_000)
        rows.append(ModelStatus(v.name, v.codebooks, v.weights, size, folder is not None, folder))
    return rows


# ---------------------------------------------------------------------------------------------
# Progress plumbing: huggingface_hub creates one bar per file transfer from `tqdm_class`


class _Aggregator:
    def __init__(self, name: str, total: int, callback: ProgressCallback | None,
                 cancel: threading.Event | None, budget: Budget | None = None) -> None:
        self.name = name
        self.budget = budget
        self.total = total
        self.done = 0
        self.filename = ""
        self.callback = callback
        self.cancel = cancel
        self._samples: list[tuple[float, int]] = [(time.monotonic(), 0)]
        self._lock = threading.Lock()

    def check_cancel(self) -> None:
        if self.cancel is not None and self.cancel.is_set():
            raise DownloadCancelled(f"download of {self.name} cancelled; run it again to continue")

    def add(self, n: int) -> None:
        self.check_cancel()
        if n > 0 and self.budget is not None:
            self.budget.answered()
        with self._lock:
            self.done += int(n)
            now = time.monotonic()
            if n < 0:  # a server that ignores Range: the file starts over, and so does the rate
                self._samples.clear()
            self._samples.append((now, self.done))
            while len(self._samples) > 2 and now - self._samples[1][0] > RATE_WINDOW_S:
                self._samples.pop(0)
            t0, d0 = self._samples[0]
            rate = (self.done - d0) / (now - t0) if now - t0 > 0.2 and self.done > d0 else None
            eta = (self.total - self.done) / rate if rate else None
            report = DownloadProgress(self.name, self.filename, self.done, self.total, rate, eta)
        if self.callback is not None:
            self.callback(report)

    def tqdm_class(self) -> type:
        agg = self

        class _Bar(_base_tqdm):
            """Silent bar that forwards byte counts to the aggregator (and raises on cancel)."""

            def __init__(self, *args, **kwargs):
                kwargs.pop("name", None)
                kwargs["disable"] = True
                super().__init__(*args, **kwargs)

            def update(self, n=1):
                agg.add(n)
                return super().update(n)

        return _Bar


# ---------------------------------------------------------------------------------------------
# Download


def _file_entries(api, info, name: str, budget: Budget) -> dict:
    """Repository path -> metadata entry (`.size`, `.blob_id`, `.lfs`) for the variant's files.

    The hub puts them in `model_info`'s siblings; mirrors that list bare file names there are
    asked for them with `paths-info`, which the hub client offers as `get_paths_info`.
    """
    entries = {s.rfilename: s for s in (info.siblings or [])}
    wanted = [f"{name}/{filename}" for filename in MODEL_FILES]
    if any(p in entries and entries[p].lfs is None and not entries[p].blob_id for p in wanted):
        found = metadata(budget, lambda: api.get_paths_info(HUB_REPO, wanted, revision=info.sha))
        entries.update({f.path: f for f in found if hasattr(f, "blob_id")})  # files, not folders
    return entries


def _expected_files(entries: dict, name: str, commit: str) -> dict[str, Expected]:
    expected = {}
    for filename in MODEL_FILES:
        s = entries.get(f"{name}/{filename}")
        if s is None:
            raise DownloadError(f"{name}/{filename} is not in {HUB_REPO} at {commit} (404)")
        if s.lfs is not None:
            expected[filename] = Expected(int(s.lfs.size), sha256=str(s.lfs.sha256).lower())
        else:
            expected[filename] = Expected(s.size, git_sha1=(s.blob_id or None))
    return expected


def _remove_from_cache(path: Path) -> None:
    """Remove a snapshot entry and the blob it points to (so the next download fetches it again)."""
    blob = Path(os.path.realpath(path))
    for p in {path, blob}:
        try:
            p.unlink()
        except FileNotFoundError:
            pass


def download_variant(
    name: str,
    *,
    cache_dir: Path | str | None = None,
    endpoint: str | None = None,
    token: str | bool | None = None,
    progress: ProgressCallback | None = None,
    cancel: threading.Event | None = None,
) -> Path:
    """Download (or complete) a published variant into the HF cache and return its checked folder.

    `endpoint`/`cache_dir`/`token` default to huggingface_hub's own settings (HF_ENDPOINT, HF_HOME,
    HF_TOKEN, ...). `progress` is called from this thread with a DownloadProgress after every chunk;
    setting `cancel` stops at the next chunk with DownloadCancelled. Offline (HF_HUB_OFFLINE=1), a
    complete and intact cached copy is returned; anything else raises DownloadError.
    """
    from huggingface_hub import constants

    v = variant(name)
    if v is None:
        raise UnknownModel(f"{name}: no such variant (published variants: {variant_names()})")
    if constants.is_offline_mode():
        folder = find_cached(name, cache_dir)
        if folder is not None and not verify_cached(name, folder):
            return folder
        raise DownloadError(f"offline mode (HF_HUB_OFFLINE=1): {name} is not in the cache "
                            f"{'intact' if folder else ''}".rstrip() + "; only cached models can be used")

    budget = Budget(hub_timeout_s(), HUB_TRIES)
    with bounded(budget):
        return _download(name, budget, cache_dir, endpoint, token, progress, cancel)


def _download(name: str, budget: Budget, cache_dir, endpoint, token, progress, cancel) -> Path:
    from huggingface_hub import HfApi, hf_hub_download

    what = f"{HUB_REPO} ({name})"
    try:
        api = HfApi(endpoint=endpoint, token=token)
        info = metadata(budget, lambda: api.model_info(HUB_REPO, revision="main", files_metadata=True,
                                                        timeout=budget.timeout_s))
        entries = _file_entries(api, info, name, budget)
    except Exception as exc:  # every failure becomes one line
        raise translate_download_error(exc, name, what, endpoint, cache_dir) from exc
    expected = _expected_files(entries, name, info.sha)
    agg = _Aggregator(name, sum(e.size or 0 for e in expected.values()), progress, cancel, budget)

    folder: Path | None = None
    for filename, exp in expected.items():
        agg.check_cancel()
        agg.filename = filename
        repo_path = f"{name}/{filename}"
        # A complete file already cached is kept if it checks out; a bad one is fetched again.
        cached = find_cached_file(repo_path, cache_dir, revision=info.sha)
        force = False
        if cached is not None:
            if file_problem(cached, exp) is None:
                agg.add(exp.size or 0)
                folder = cached.parent
                continue
            force = True
        budget.fetching(repo_path)
        try:
            downloaded = hf_hub_download(HUB_REPO, repo_path, revision=info.sha, cache_dir=cache_dir,
                                         endpoint=endpoint, token=token, force_download=force,
                                         etag_timeout=budget.timeout_s, tqdm_class=agg.tqdm_class())
        except Exception as exc:  # every failure is translated into one line
            raise translate_download_error(exc, name, repo_path, endpoint, cache_dir) from exc
        local = Path(downloaded)
        problem = file_problem(local, exp)
        if problem is not None:
            _remove_from_cache(local)
            raise CorruptModel(f"{repo_path} failed its integrity check after download ({problem}); "
                               "it was removed: run the download again")
        folder = local.parent
    assert folder is not None
    commit = folder.parent.name
    write_manifest(commit, name, expected)
    _point_main_at(folder, cache_dir, commit)
    # Every file was checked above; what is left to confirm is that the cache resolves to them.
    found = find_cached(name, cache_dir)
    if found != folder:
        raise DownloadError(f"{name} was downloaded to {folder} but is not complete in the cache; "
                            "run the download again")
    return found


def _point_main_at(folder: Path, cache_dir, commit: str) -> None:
    """Make refs/main name the commit just downloaded (hf_hub_download by commit does not)."""
    main = folder.parent.parent.parent / "refs" / "main"
    try:
        if main.read_text().strip() == commit:
            return
    except OSError:
        pass
    write_atomically(main, lambda tmp: tmp.write_text(commit))
