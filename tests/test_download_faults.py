"""Downloads never hang: a hub that accepts and never answers, or stalls mid-metadata or mid-file,
ends the download with one line naming the host within a bound, and leaves nothing partial.

Servers run on 127.0.0.1 only: a bare TCP listener that accepts and never answers, and the fake hub
(tests/fakehub.py) made to stall at a chosen request. MIMI_LIVE_HUB_TIMEOUT_S is set small here so
three tries take a few seconds; the default (10 s, 3 tries) bounds a real hang to about 30 s.
"""

from __future__ import annotations

import hashlib
import os
import socket
import subprocess
import sys
import threading
import time
from io import BufferedIOBase
from pathlib import Path
from typing import cast

import pytest

from app.config import MODEL_FILES
from app.models import resolve_model
from app.models.download import DEFAULT_HUB_TIMEOUT_S, HUB_TIMEOUT_ENV, HUB_TRIES, download_variant, hub_timeout_s
from app.models.errors import DownloadError, HubUnresponsive, NotDownloaded
from conftest import model_dir
from fakehub import COMMIT, FakeHub
from fakehub import _Handler as HubHandler

REPO = Path(__file__).resolve().parent.parent
VARIANT = "streaming-8cb-fp16"
TIMEOUT_S = 1.0
BOUND_S = 45.0  # what a user may wait at worst with these settings, start-up included
STALL_HOLD_S = 120.0  # a stalled handler lets go at teardown, or after this long


class SilentServer:
    """Accepts every connection and never sends a byte (a hub behind a black-holing proxy)."""

    def __init__(self) -> None:
        self._sock = socket.socket()
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(64)
        self.endpoint = f"http://127.0.0.1:{self._sock.getsockname()[1]}"
        self.accepted: list[socket.socket] = []
        self._stop = threading.Event()

    def _serve(self) -> None:
        self._sock.settimeout(0.2)
        while not self._stop.is_set():
            try:
                self.accepted.append(self._sock.accept()[0])
            except OSError:
                continue

    def __enter__(self) -> SilentServer:
        threading.Thread(target=self._serve, name="silent-hub", daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        for c in self.accepted:
            c.close()
        self._sock.close()


class StallingHub(FakeHub):
    """The fake hub, except that requests matching `stall` get no answer, or half an answer.

    `stall(method, path, nth)` -> None (answer normally), "silent" (read the request, say nothing)
    or "half" (headers and half the body, then nothing); `nth` counts that method+path from 1.
    """

    def __init__(self, stall) -> None:
        super().__init__()
        self.stall = stall
        self.release = threading.Event()
        self.counts: dict[tuple[str, str], int] = {}
        self._lock = threading.Lock()

    def stop(self) -> None:
        self.release.set()
        super().stop()


class _HalfThenSilence:
    """A handler's wfile that sends the headers, then half of the body, then nothing more."""

    def __init__(self, handler, wfile) -> None:
        self._handler, self._wfile, self._writes = handler, wfile, 0

    def write(self, data: bytes) -> int:
        self._writes += 1
        if self._writes == 1:  # the status line and headers, in one write
            return self._wfile.write(data)
        self._wfile.write(data[: len(data) // 2])
        self._wfile.flush()
        self._handler.fake.release.wait(STALL_HOLD_S)
        self._handler.close_connection = True
        return len(data)

    def __getattr__(self, name):
        return getattr(self._wfile, name)


class _StallingHandler(HubHandler):  # HubHandler is FakeHub.handler (a class variable mypy cannot subclass)
    fake: StallingHub

    def _handle(self) -> None:
        key = (self.command, self.path.split("?")[0])
        with self.fake._lock:
            self.fake.counts[key] = nth = self.fake.counts.get(key, 0) + 1
        decision = self.fake.stall(self.command, key[1], nth)
        if decision == "silent":  # the request was read; no answer comes
            self.fake.requests.append((self.command, key[1], "silent"))
            self.fake.release.wait(STALL_HOLD_S)
            self.close_connection = True
            return
        if decision == "half":
            # this connection closes after it; the wrapper passes all else on to the real wfile
            self.wfile = cast(BufferedIOBase, _HalfThenSilence(self, self.wfile))
        super()._handle()


StallingHub.handler = _StallingHandler


def resolve_path(method: str, path: str, filename: str) -> bool:
    return path.endswith(f"/{VARIANT}/{filename}") and "/resolve/" in path


def app_env(tmp_path: Path, endpoint: str) -> dict:
    # As a user runs it: telemetry on, so huggingface_hub also asks HF_ENDPOINT for its agent list.
    env = dict(os.environ, HF_HOME=str(tmp_path / "hf"), HF_ENDPOINT=endpoint, **{HUB_TIMEOUT_ENV: str(TIMEOUT_S)})
    for name in ("HF_HUB_OFFLINE", "HF_HUB_CACHE", "HF_HUB_VERBOSITY", "HF_HUB_ETAG_TIMEOUT",
                 "HF_HUB_DOWNLOAD_TIMEOUT", "HF_HUB_DISABLE_TELEMETRY"):
        env.pop(name, None)
    return env


def run_download(env: dict) -> tuple[subprocess.CompletedProcess, float]:
    t0 = time.monotonic()
    r = subprocess.run([sys.executable, "-m", "app", "download", VARIANT], env=env, cwd=REPO,
                       capture_output=True, text=True, timeout=BOUND_S + 30)
    return r, time.monotonic() - t0


def repo_cache(tmp_path: Path) -> Path:
    return tmp_path / "hf" / "hub" / "models--BMekiker--mimi-onnx-streaming"


def assert_nothing_partial(cache_repo: Path, complete: tuple[str, ...] = ()) -> None:
    """No .incomplete file; every snapshot entry is a whole, correct file; only `complete` are there."""
    assert not [p for p in cache_repo.rglob("*") if p.name.endswith(".incomplete")]
    fixture = model_dir("tiny-8cb-fp16")
    snapshot = cache_repo / "snapshots" / COMMIT / VARIANT
    present = sorted(p.name for p in snapshot.iterdir()) if snapshot.is_dir() else []
    assert present == sorted(complete)
    for name in present:
        assert hashlib.sha256((snapshot / name).read_bytes()).digest() == \
            hashlib.sha256((fixture / name).read_bytes()).digest()
    for blob in (cache_repo / "blobs").glob("*") if (cache_repo / "blobs").is_dir() else []:
        if blob.name.endswith(".lock"):
            continue
        assert any(blob.read_bytes() == (fixture / n).read_bytes() for n in MODEL_FILES), blob


# ---------------------------------------------------------------------------------------------
# The command line, in a subprocess: one line on stderr, exit 1, within the bound


def test_cli_against_a_hub_that_never_answers_ends_with_one_line(tmp_path) -> None:
    with SilentServer() as server:
        r, elapsed = run_download(app_env(tmp_path, server.endpoint))
        tries = len(server.accepted)
    host = server.endpoint.removeprefix("http://")
    assert r.returncode == 1 and r.stdout == ""
    assert r.stderr.splitlines() == [f"mimi-live: error: {host} did not answer within {TIMEOUT_S:g} s "
                                     f"({HUB_TRIES} tries): check your network or set HF_ENDPOINT"]
    assert elapsed < BOUND_S
    assert elapsed >= HUB_TRIES * TIMEOUT_S  # it really waited for each try
    assert tries >= HUB_TRIES  # and huggingface_hub's own agent lookup, which is not counted as one
    assert not repo_cache(tmp_path).exists() or not list(repo_cache(tmp_path).rglob("snapshots/*/*/*"))


def test_cli_against_a_hub_that_stalls_mid_file_ends_with_one_line_and_nothing_partial(tmp_path) -> None:
    model_dir("tiny-8cb-fp16")
    # The encoder comes whole; the decoder's first GET stops half way, every later one says nothing.
    def stall(method, path, nth):
        if method == "GET" and resolve_path(method, path, "decoder_model.onnx"):
            return "half" if nth == 1 else "silent"
        return None

    with StallingHub(stall) as hub:
        r, elapsed = run_download(app_env(tmp_path, hub.endpoint))
        decoder_gets = [req for req in hub.requests if req[0] == "GET" and req[1].endswith("decoder_model.onnx")]
        host = hub.endpoint.removeprefix("http://")
    assert r.returncode == 1 and r.stdout == ""
    assert r.stderr.splitlines() == [
        f"mimi-live: error: {host} stopped sending {VARIANT}/decoder_model.onnx (nothing for {TIMEOUT_S:g} s, "
        f"{HUB_TRIES} tries): check your network and run the download again (completed files are kept)"]
    assert elapsed < BOUND_S
    assert len(decoder_gets) == HUB_TRIES
    assert_nothing_partial(repo_cache(tmp_path), complete=("encoder_model.onnx",))
    with pytest.raises(NotDownloaded):
        resolve_model(VARIANT, cache_dir=tmp_path / "hf" / "hub")


# ---------------------------------------------------------------------------------------------
# In process: every kind of request is bounded, and a single stall is survived


@pytest.fixture
def small_timeout(monkeypatch):
    from huggingface_hub import constants

    monkeypatch.setenv(HUB_TIMEOUT_ENV, str(TIMEOUT_S))
    monkeypatch.delenv("HF_HUB_VERBOSITY", raising=False)
    # In process, huggingface_hub's agent lookup would go to the real huggingface.co: not from tests.
    monkeypatch.setattr(constants, "HF_HUB_DISABLE_TELEMETRY", True)


@pytest.mark.parametrize("where", ["model_info", "file metadata (HEAD)", "file body"])
def test_a_stall_anywhere_is_bounded(tmp_path, small_timeout, where) -> None:
    model_dir("tiny-8cb-fp16")

    def stall(method, path, nth):
        if where == "model_info" and path.startswith("/api/models/"):
            return "silent"
        if where.endswith("(HEAD)") and method == "HEAD" and resolve_path(method, path, "state_spec.txt"):
            return "silent"
        if where == "file body" and method == "GET" and resolve_path(method, path, "encoder_model.onnx"):
            return "half"
        return None

    with StallingHub(stall) as hub:
        t0 = time.monotonic()
        with pytest.raises(HubUnresponsive) as info:
            download_variant(VARIANT, cache_dir=tmp_path / "hf" / "hub", endpoint=hub.endpoint)
        elapsed = time.monotonic() - t0
        host = hub.endpoint.removeprefix("http://")
    message = str(info.value)
    assert "\n" not in message and message.startswith(host)
    assert f"{HUB_TRIES} tries" in message
    # three tries of TIMEOUT_S each, the pauses between them, and the metadata that did answer
    assert HUB_TRIES * TIMEOUT_S <= elapsed < HUB_TRIES * (TIMEOUT_S + 1.5) + 3
    assert_nothing_partial(repo_cache(tmp_path), complete=("encoder_model.onnx", "decoder_model.onnx")
                           if where.endswith("(HEAD)") else ())


def test_one_stall_is_retried_and_the_download_completes(tmp_path, small_timeout) -> None:
    model_dir("tiny-8cb-fp16")

    def stall(method, path, nth):
        if nth == 1 and (path.startswith("/api/models/") or resolve_path(method, path, "decoder_model.onnx")):
            return "half" if method == "GET" and "/resolve/" in path else "silent"
        return None

    with StallingHub(stall) as hub:
        folder = download_variant(VARIANT, cache_dir=tmp_path / "hf" / "hub", endpoint=hub.endpoint)
    assert resolve_model(VARIANT, cache_dir=tmp_path / "hf" / "hub") == folder
    assert_nothing_partial(repo_cache(tmp_path), complete=MODEL_FILES)


def test_the_timeout_setting(monkeypatch) -> None:
    monkeypatch.delenv(HUB_TIMEOUT_ENV, raising=False)
    assert hub_timeout_s() == DEFAULT_HUB_TIMEOUT_S == 10.0 and HUB_TRIES == 3  # ~30 s to the one line
    monkeypatch.setenv(HUB_TIMEOUT_ENV, "2.5")
    assert hub_timeout_s() == 2.5
    for bad in ("soon", "0", "-1", "inf", "nan"):
        monkeypatch.setenv(HUB_TIMEOUT_ENV, bad)
        with pytest.raises(DownloadError, match=rf"^{HUB_TIMEOUT_ENV}='{bad}' is not a number of seconds above 0"):
            download_variant(VARIANT)


# ---------------------------------------------------------------------------------------------
# The window's download dialog ends the same way: the line, no hang; Cancel answers at once


def test_the_download_dialog_shows_the_line_and_closes(qtbot, tmp_path, small_timeout) -> None:
    from app.ui.download_dialog import DownloadDialog

    with SilentServer() as server:
        def download(name, progress, cancel):
            return download_variant(name, cache_dir=tmp_path / "hf" / "hub", endpoint=server.endpoint,
                                    progress=progress, cancel=cancel)

        dialog = DownloadDialog(VARIANT, download=download)
        with qtbot.waitSignal(dialog.sigDone, timeout=int(BOUND_S * 1000)) as done:
            dialog.start()
    folder, error = done.args
    assert folder is None
    assert error == (f"{server.endpoint.removeprefix('http://')} did not answer within {TIMEOUT_S:g} s "
                     f"({HUB_TRIES} tries): check your network or set HF_ENDPOINT")
    assert not dialog.isVisible()


def test_cancel_during_a_stall_ends_the_dialog_at_once(qtbot, tmp_path, small_timeout, monkeypatch) -> None:
    from PySide6.QtWidgets import QPushButton

    from app.ui.download_dialog import DownloadDialog

    monkeypatch.setenv(HUB_TIMEOUT_ENV, "5")
    with SilentServer() as server:
        def download(name, progress, cancel):
            return download_variant(name, cache_dir=tmp_path / "hf" / "hub", endpoint=server.endpoint,
                                    progress=progress, cancel=cancel)

        dialog = DownloadDialog(VARIANT, download=download)
        dialog.start()
        qtbot.waitUntil(lambda: bool(server.accepted), timeout=5000)  # the request is out, unanswered
        t0 = time.monotonic()
        with qtbot.waitSignal(dialog.sigDone, timeout=2000) as done:
            cancel = dialog.findChild(QPushButton)
            assert cancel is not None
            cancel.click()  # the user's Cancel
        assert time.monotonic() - t0 < 1.0
    assert done.args == [None, f"download of {VARIANT} cancelled; nothing was kept"]
    dialog._thread.join(3 * 5 + 5)  # the abandoned try still ends on its own, within the bound
    assert not dialog._thread.is_alive()
