"""Model catalogue and download against tests/fakehub.py (no internet): progress, resume, integrity,
errors (404, unknown variant, connection refused, disk full, cancel), offline mode and the CLI.

In-process tests pass `endpoint=` and `cache_dir=` explicitly (huggingface_hub reads HF_ENDPOINT and
HF_HOME at import time); the CLI tests run `python -m app` in a subprocess with HF_ENDPOINT/HF_HOME set.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
from pathlib import Path
from typing import BinaryIO, cast

import pytest

from app.cli import main
from app.models import resolve_model, verify_cached
from app.models.catalogue import manifest_path
from app.models.download import DownloadProgress, download_variant, list_models
from app.models.errors import CorruptModel, DownloadCancelled, DownloadError, NotDownloaded, UnknownModel
from conftest import model_dir
from fakehub import COMMIT, FakeHub

REPO = Path(__file__).resolve().parent.parent
V8 = "streaming-8cb"


@pytest.fixture
def hub():
    model_dir("tiny-8cb")  # skips if the fixture models are missing
    with FakeHub() as h:
        yield h


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty HF hub cache; also the default one for code that does not take cache_dir (the CLI)."""
    from huggingface_hub import constants

    path = tmp_path / "hf" / "hub"
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(path))
    return path


def fetch(hub: FakeHub, cache: Path, name: str = V8, **kw) -> Path:
    return download_variant(name, cache_dir=cache, endpoint=hub.endpoint, **kw)


def gets(hub: FakeHub) -> list[tuple[str, str, str | None]]:
    return [r for r in hub.requests if r[0] == "GET" and "/resolve/" in r[1]]


def leftovers(cache: Path) -> list[Path]:
    return [p for p in cache.rglob("*") if p.name.endswith(".incomplete")]


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---------------------------------------------------------------------------------------------
# Download, progress, cache


def test_download_reports_progress_and_lands_in_the_hf_cache(hub, cache):
    reports: list[DownloadProgress] = []
    folder = fetch(hub, cache, progress=reports.append)
    fixture = model_dir("tiny-8cb")
    assert folder == cache / "models--BMekiker--mimi-onnx-streaming" / "snapshots" / COMMIT / V8
    for name in ("encoder_model.onnx", "decoder_model.onnx", "state_spec.txt"):
        assert (folder / name).read_bytes() == (fixture / name).read_bytes()
    total = sum((fixture / n).stat().st_size for n in ("encoder_model.onnx", "decoder_model.onnx", "state_spec.txt"))
    assert reports and all(r.total_bytes == total and r.variant == V8 for r in reports)
    done = [r.done_bytes for r in reports]
    assert done == sorted(done) and done[-1] == total
    assert reports[-1].fraction == 1.0 and reports[-1].eta_s in (0.0, None)
    assert manifest_path(COMMIT, V8).is_file()
    assert resolve_model(V8, cache_dir=cache) == folder
    assert (cache / "models--BMekiker--mimi-onnx-streaming" / "refs" / "main").read_text() == COMMIT
    # listed as cached, with its folder; the others are not
    rows = {r.name: r for r in list_models(cache)}
    assert rows[V8].cached and rows[V8].folder == folder and rows[V8].size_bytes == total
    assert not any(r.cached for name, r in rows.items() if name != V8)
    # a second download is metadata only: nothing is transferred again
    before = len(gets(hub))
    assert fetch(hub, cache) == folder
    assert len(gets(hub)) == before


def test_dropped_connection_resumes_with_a_range_request(hub, cache, monkeypatch):
    from huggingface_hub import constants

    # Real files are read in 10 MB chunks; the kilobyte fixtures need small ones to resume mid-file.
    monkeypatch.setattr(constants, "DOWNLOAD_CHUNK_SIZE", 16 * 1024)
    path = f"{V8}/encoder_model.onnx"
    hub.drop_once.add(path)
    folder = fetch(hub, cache)
    encoder_gets = [r for r in gets(hub) if r[1].endswith(path)]
    assert len(encoder_gets) == 2
    assert encoder_gets[0][2] is None
    assert encoder_gets[1][2] is not None and encoder_gets[1][2].startswith("bytes=")
    assert int(encoder_gets[1][2][len("bytes="):].rstrip("-")) > 0  # resumed, not restarted
    assert (folder / "encoder_model.onnx").read_bytes() == (model_dir("tiny-8cb") / "encoder_model.onnx").read_bytes()
    assert not verify_cached(V8, folder) and not leftovers(cache)


def test_cancel_leaves_no_partial_file_and_a_rerun_completes(hub, cache):
    cancel = threading.Event()
    with pytest.raises(DownloadCancelled, match="cancelled"):
        fetch(hub, cache, progress=lambda p: cancel.set(), cancel=cancel)
    assert not leftovers(cache)
    with pytest.raises(NotDownloaded):
        resolve_model(V8, cache_dir=cache)
    assert fetch(hub, cache).is_dir()


# ---------------------------------------------------------------------------------------------
# Integrity


def test_corrupted_transfer_is_rejected_and_removed(hub, cache):
    hub.corrupt.add(f"{V8}/decoder_model.onnx")
    with pytest.raises(CorruptModel, match="decoder_model.onnx failed its integrity check.*sha256"):
        fetch(hub, cache)
    with pytest.raises(NotDownloaded):  # nothing partial is ever resolved
        resolve_model(V8, cache_dir=cache)
    hub.corrupt.clear()
    folder = fetch(hub, cache)
    assert resolve_model(V8, cache_dir=cache) == folder


@pytest.mark.parametrize("manifest", [True, False], ids=["manifest", "blob-names"])
def test_tampered_cache_file_is_detected_not_loaded_and_redownloaded(hub, cache, manifest, monkeypatch, capsys):
    folder = fetch(hub, cache)
    if not manifest:  # a cache filled by another tool: the blob names carry the hub's checksums
        shutil.rmtree(manifest_path(COMMIT, V8).parent)
        assert not verify_cached(V8, folder)
    target = folder / "encoder_model.onnx"
    data = bytearray(target.read_bytes())
    data[len(data) // 2] ^= 0x01
    target.write_bytes(bytes(data))  # through the snapshot symlink: the blob itself
    assert "encoder_model.onnx" in verify_cached(V8, folder)
    with pytest.raises(CorruptModel, match=r"streaming-8cb in the cache failed its integrity check"
                                           r".*encoder_model.onnx.*mimi-live download streaming-8cb"):
        resolve_model(V8, cache_dir=cache)

    def never(*a, **k):
        raise AssertionError("a corrupted model must not be loaded")

    monkeypatch.setattr("app.cli.codec_loader.open_codec", never)
    assert main(["info", "--model", V8]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("mimi-live: error: streaming-8cb in the cache failed")
    # a download repairs exactly the damaged file
    before = len(gets(hub))
    fetch(hub, cache)
    assert [r[1].rsplit("/", 1)[1] for r in gets(hub)[before:]] == ["encoder_model.onnx"]
    assert resolve_model(V8, cache_dir=cache) == folder


# ---------------------------------------------------------------------------------------------
# Errors: one line each, the app stays usable


def test_unknown_variant_and_unknown_model(cache, capsys):
    with pytest.raises(UnknownModel, match="bogus: no such variant.*streaming-8cb, streaming-16cb"):
        download_variant("bogus", cache_dir=cache)
    with pytest.raises(UnknownModel, match="no-such-dir: no such model folder or variant.*streaming-16cb-fp16"):
        resolve_model("no-such-dir", cache_dir=cache)
    with pytest.raises(NotDownloaded,
                       match=r"streaming-16cb is not downloaded yet: run `mimi-live download streaming-16cb`"):
        resolve_model("streaming-16cb", cache_dir=cache)
    assert resolve_model(str(REPO / "tests" / "fixtures")) == REPO / "tests" / "fixtures"  # a folder is itself
    assert main(["download", "bogus"]) == 1
    assert main(["info", "--model", "streaming-16cb"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["mimi-live: error: bogus: no such variant (published variants: streaming-8cb, streaming-16cb, "
                   "streaming-8cb-fp16, streaming-16cb-fp16)",
                   "mimi-live: error: streaming-16cb is not downloaded yet: run `mimi-live download streaming-16cb`"]


def test_file_missing_from_the_repository_is_a_404(hub, cache):
    del hub.files[f"{V8}/state_spec.txt"]
    with pytest.raises(DownloadError, match=r"streaming-8cb/state_spec.txt is not in .* \(404\)"):
        fetch(hub, cache)


def test_resolve_404_is_reported(hub, cache):
    hub.fail_status[f"{V8}/decoder_model.onnx"] = 404
    with pytest.raises(DownloadError,
                       match=r"streaming-8cb/decoder_model.onnx was not found on http://127.0.0.1:\d+ \(404\)"):
        fetch(hub, cache)
    assert not leftovers(cache)


def test_connection_refused_is_one_line_and_cached_models_still_work(hub, cache):
    folder = fetch(hub, cache)
    dead = f"http://127.0.0.1:{closed_port()}"
    with pytest.raises(DownloadError, match=r"cannot reach the Hugging Face hub at http://127.0.0.1:\d+ "
                                            r"\(connection refused\); models already downloaded still work"):
        download_variant("streaming-16cb", cache_dir=cache, endpoint=dead)
    assert resolve_model(V8, cache_dir=cache) == folder


def test_disk_full_while_writing_is_reported_and_leaves_nothing_partial(hub, cache, monkeypatch):
    from huggingface_hub import file_download

    real_http_get = file_download.http_get

    class Full:
        def __init__(self, f):
            self.f, self.written = f, 0

        def write(self, chunk):
            if self.written + len(chunk) > 1000:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            self.written += len(chunk)
            return self.f.write(chunk)

        def __getattr__(self, name):
            return getattr(self.f, name)

    monkeypatch.setattr(file_download, "http_get",
                        lambda url, temp_file, **kw: real_http_get(url, cast(BinaryIO, Full(temp_file)), **kw))
    with pytest.raises(DownloadError,
                       match=r"disk full while downloading streaming-8cb/encoder_model.onnx: free some space"):
        fetch(hub, cache)
    assert not leftovers(cache)
    with pytest.raises(NotDownloaded):
        resolve_model(V8, cache_dir=cache)
    monkeypatch.setattr(file_download, "http_get", real_http_get)
    assert fetch(hub, cache).is_dir()


def test_offline_mode_uses_only_the_cache(hub, cache, monkeypatch):
    from huggingface_hub import constants

    folder = fetch(hub, cache)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    n = len(hub.requests)
    assert fetch(hub, cache) == folder  # cached and intact: no request at all
    with pytest.raises(DownloadError, match=r"offline mode \(HF_HUB_OFFLINE=1\): streaming-16cb is not in the cache"):
        fetch(hub, cache, "streaming-16cb")
    assert len(hub.requests) == n
    rows = {r.name: r for r in list_models(cache)}
    assert rows[V8].cached and not rows["streaming-16cb"].cached
    assert resolve_model(V8, cache_dir=cache) == folder


# ---------------------------------------------------------------------------------------------
# The command line, in a subprocess (HF_ENDPOINT and HF_HOME are read when huggingface_hub is imported)


def run_app(env: dict, *argv: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "app", *argv], env=env, cwd=REPO, capture_output=True,
                          text=True, timeout=120)


def test_cli_download_models_info_and_offline(hub, tmp_path):
    env = dict(os.environ, HF_HOME=str(tmp_path / "hf"), HF_ENDPOINT=hub.endpoint,
               HF_HUB_DISABLE_TELEMETRY="1", QT_QPA_PLATFORM="offscreen")
    env.pop("HF_HUB_OFFLINE", None)
    env.pop("HF_HUB_CACHE", None)
    r = run_app(env, "download", V8, "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["variant"] == V8 and out["verified"] and Path(out["folder"]).is_relative_to(tmp_path / "hf" / "hub")

    r = run_app(env, "info", "--model", V8, "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["folder"] == out["folder"]

    for offline_env in (env, dict(env, HF_HUB_OFFLINE="1")):
        r = run_app(offline_env, "models", "--json")
        assert r.returncode == 0, r.stderr
        rows = {row["variant"]: row for row in json.loads(r.stdout)}
        assert rows[V8]["cached"] and rows[V8]["folder"] == out["folder"]
        assert not rows["streaming-16cb"]["cached"]

    r = run_app(dict(env, HF_ENDPOINT=f"http://127.0.0.1:{closed_port()}"), "download", "streaming-16cb")
    assert r.returncode == 1
    assert r.stderr.strip().splitlines() == [
        f"mimi-live: error: cannot reach the Hugging Face hub at {r.stderr.split(' at ')[1].split(' ')[0]} "
        "(connection refused); models already downloaded still work"]
    r = run_app(dict(env, HF_HUB_OFFLINE="1"), "models")
    assert r.returncode == 0 and V8 in r.stdout and "not downloaded (mimi-live download streaming-16cb)" in r.stdout
