"""Issue 5 against a hub imitation NOT written by this project: olah, a self-hosted Hugging Face mirror
from PyPI, serving the tiny fixture models from a local git repository (see tests/thirdparty_hub.py
for what it answers and how faithfully). Faults olah cannot make (a connection dropped mid-file,
bytes altered in transit) come from a small proxy of ours in front of it; every answer is olah's.

Covered: `mimi-live download streaming-8cb-fp16` (a subprocess with HF_ENDPOINT and HF_HOME) and the
GUI's download (the real MainWindow) fetch, verify and then use the model, survive a dropped
connection, and refuse a file altered in transit or in the cache.

Without olah these tests skip, except where the environment variable CI is set (CI runs them), where
that is a failure.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from app.config import SAMPLE_RATE_HZ
from app.models.errors import CorruptModel, NotDownloaded
from conftest import model_dir
from thirdparty_hub import REPO_ID, FaultProxy, HubUnavailable, OlahHub, olah_missing

try:  # the GUI helpers (and their autouse fixtures) of tests/test_gui.py; they need pytest-qt
    import test_gui
    from test_gui import _delete_fake_timers, _no_hub_cache  # noqa: F401 - fixtures
    HAVE_QT = True
except pytest.skip.Exception:  # test_gui is left unbound: only the needs_qt tests use it
    HAVE_QT = False

REPO = Path(__file__).resolve().parent.parent
V = "streaming-8cb-fp16"
TINY = "tiny-8cb-fp16"
ENCODER = f"{V}/encoder_model.onnx"
DECODER = f"{V}/decoder_model.onnx"
FILES = ("encoder_model.onnx", "decoder_model.onnx", "state_spec.txt")

needs_qt = pytest.mark.skipif(not HAVE_QT, reason="pytest-qt is not installed")

def required() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory):
    """olah on 127.0.0.1 serving BMekiker/mimi-onnx-streaming (all four tiny variants), for the module."""
    model_dir(TINY)  # skips if the fixture models are missing
    why = olah_missing()
    if why:
        if required():
            pytest.fail(f"{why}; CI is set, so the third-party hub tests must run", pytrace=False)
        pytest.skip(why)
    try:
        h = OlahHub(tmp_path_factory.mktemp("olah")).start()
    except HubUnavailable as exc:
        pytest.fail(f"olah is installed but did not start: {exc}", pytrace=False)
    yield h
    h.stop()


@pytest.fixture
def proxy(hub: OlahHub):
    """The fault proxy in front of olah, fresh for each test (no faults until a test sets some)."""
    with FaultProxy(hub.endpoint) as p:
        yield p


@pytest.fixture
def cli_env(tmp_path: Path, proxy: FaultProxy) -> dict:
    env = dict(os.environ, HF_HOME=str(tmp_path / "hf"), HF_ENDPOINT=proxy.endpoint,
               HF_HUB_DISABLE_TELEMETRY="1", QT_QPA_PLATFORM="offscreen")
    for name in ("HF_HUB_OFFLINE", "HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE", "HF_TOKEN", "HF_HUB_ENABLE_HF_TRANSFER"):
        env.pop(name, None)
    return env  # MIMI_LIVE_DATA_DIR (manifests) comes from conftest's autouse fixture


def run_app(env: dict, *argv: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "app", *argv], env=env, cwd=REPO, capture_output=True,
                          text=True, timeout=120)


def snapshot(cache: Path, hub: OlahHub) -> Path:
    return cache / f"models--{REPO_ID.replace('/', '--')}" / "snapshots" / hub.commit / V


def assert_fixture_bytes(folder: Path) -> None:
    for name in FILES:
        assert (folder / name).read_bytes() == (model_dir(TINY) / name).read_bytes(), name


def flip_a_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))  # through the snapshot symlink: the blob itself


def leftovers(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.name.endswith(".incomplete")]


def error_lines(r: subprocess.CompletedProcess) -> list[str]:
    return [line for line in r.stderr.strip().splitlines() if line.startswith("mimi-live: error:")]


# ---------------------------------------------------------------------------------------------
# The harness itself: huggingface_hub's own client against olah and the proxy


def test_huggingface_hub_fetches_from_olah_through_a_drop_and_the_app_checks_that_cache(
        hub, proxy, tmp_path, monkeypatch, capsys):
    """snapshot_download (huggingface_hub's own code path) survives a drop through olah; the app then
    verifies that cache offline, loads it, and refuses it once a blob is altered."""
    from huggingface_hub import constants, snapshot_download

    from app.cli import main
    from app.models import resolve_model

    cache = tmp_path / "hf" / "hub"
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))  # the CLI's default cache
    proxy.drop_once.add(ENCODER)
    root = snapshot_download(REPO_ID, allow_patterns=[f"{V}/*"], endpoint=proxy.endpoint, cache_dir=cache)
    folder = Path(root) / V
    assert folder == snapshot(cache, hub)
    assert_fixture_bytes(folder)
    assert len(proxy.file_gets(ENCODER)) == 2 and not leftovers(cache)  # dropped once, fetched again

    # A cache filled by another tool: the blob names (olah's ETags) are the checksums.
    assert resolve_model(V) == folder
    assert main(["info", "--model", V, "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["folder"] == str(folder) and info["codebooks"] == 8

    flip_a_byte(folder / "encoder_model.onnx")
    with pytest.raises(CorruptModel, match="encoder_model.onnx: sha256 does not match"):
        resolve_model(V)

    def never(*a, **k):
        raise AssertionError("a tampered model must not be loaded")

    monkeypatch.setattr("app.cli.codec_loader.open_codec", never)
    assert main(["info", "--model", V]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"mimi-live: error: {V} in the cache failed its integrity check")


# ---------------------------------------------------------------------------------------------
# mimi-live download, in a subprocess (HF_ENDPOINT and HF_HOME are read at import)


def test_cli_download_fetches_verifies_and_the_model_runs(hub, proxy, cli_env, tmp_path):
    import soundfile as sf

    r = run_app(cli_env, "download", V, "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    folder = snapshot(tmp_path / "hf" / "hub", hub)
    assert out["variant"] == V and out["verified"] is True and Path(out["folder"]) == folder
    assert_fixture_bytes(folder)
    assert {p[1].rsplit("/", 1)[1] for p in proxy.file_gets()} == set(FILES)  # all of it through olah

    t = np.arange(SAMPLE_RATE_HZ // 2) / SAMPLE_RATE_HZ  # 0.5 s
    sf.write(tmp_path / "in.wav", (0.3 * np.sin(2 * np.pi * (200 + 800 * t) * t)).astype(np.float32), SAMPLE_RATE_HZ)
    r = run_app(cli_env, "roundtrip", str(tmp_path / "in.wav"), str(tmp_path / "out.wav"), "--model", V, "--json")
    assert r.returncode == 0, r.stderr
    decoded, rate = sf.read(tmp_path / "out.wav")
    assert rate == 24_000 and len(decoded) == len(t) and np.abs(decoded).max() > 0


def test_cli_download_survives_a_dropped_connection(hub, proxy, cli_env, tmp_path):
    proxy.drop_once.add(ENCODER)
    r = run_app(cli_env, "download", V, "--json")
    assert r.returncode == 0, r.stderr
    assert len(proxy.file_gets(ENCODER)) == 2  # cut mid-file, then fetched again
    assert_fixture_bytes(snapshot(tmp_path / "hf" / "hub", hub))
    assert not leftovers(tmp_path / "hf")


def test_cli_download_refuses_a_file_altered_in_transit_and_a_rerun_repairs_it(hub, proxy, cli_env, tmp_path):
    from app.models import resolve_model

    cache = tmp_path / "hf" / "hub"
    proxy.corrupt.add(DECODER)
    r = run_app(cli_env, "download", V, "--json")
    assert r.returncode == 1
    assert error_lines(r) == [f"mimi-live: error: {DECODER} failed its integrity check after download "
                              "(sha256 does not match the hub's); it was removed: run the download again"]
    with pytest.raises(NotDownloaded):  # nothing partial or altered is ever found
        resolve_model(V, cache_dir=cache)

    proxy.corrupt.clear()
    before = len(proxy.file_gets())
    r = run_app(cli_env, "download", V, "--json")
    assert r.returncode == 0, r.stderr
    # The encoder was complete and is kept; the refused decoder and the file after it are fetched.
    assert sorted(g[1].rsplit("/", 1)[1] for g in proxy.file_gets()[before:]) == ["decoder_model.onnx",
                                                                                  "state_spec.txt"]
    assert resolve_model(V, cache_dir=cache) == snapshot(cache, hub)


def test_cli_refuses_a_file_tampered_in_the_cache_and_download_repairs_it(hub, proxy, cli_env, tmp_path):
    from app.models import resolve_model

    cache = tmp_path / "hf" / "hub"
    r = run_app(cli_env, "download", V, "--json")
    assert r.returncode == 0, r.stderr
    folder = snapshot(cache, hub)
    flip_a_byte(folder / "encoder_model.onnx")

    r = run_app(cli_env, "info", "--model", V)
    assert r.returncode == 1 and not r.stdout
    assert error_lines(r) == [f"mimi-live: error: {V} in the cache failed its integrity check (encoder_model.onnx: "
                              f"sha256 does not match the hub's); not loaded: run `mimi-live download {V}` "
                              "to download it again"]

    before = len(proxy.file_gets())
    r = run_app(cli_env, "download", V, "--json")
    assert r.returncode == 0, r.stderr
    assert [g[1].rsplit("/", 1)[1] for g in proxy.file_gets()[before:]] == ["encoder_model.onnx"]
    assert resolve_model(V, cache_dir=cache) == folder
    assert_fixture_bytes(folder)


# ---------------------------------------------------------------------------------------------
# The GUI's download: the real MainWindow, its DownloadDialog and app.models.download_variant


def gui_download_fn(proxy: FaultProxy, cache: Path, reports: list):
    """The window's download hook: the real download_variant, pointed at olah (HF_ENDPOINT is read
    at import, so the endpoint is passed instead)."""
    from app.models.download import download_variant

    def download(name, progress, cancel):
        def spy(p):
            reports.append(p)
            progress(p)

        return download_variant(name, cache_dir=cache, endpoint=proxy.endpoint, progress=spy, cancel=cancel)

    return download


@needs_qt
def test_gui_download_survives_a_drop_verifies_and_loads_the_model(qtbot, settings, hub, proxy, tmp_path, monkeypatch):
    from huggingface_hub import constants

    # Small reads, so the retry after the drop asks for a Range (olah answers 200: a restart).
    monkeypatch.setattr(constants, "DOWNLOAD_CHUNK_SIZE", 16 * 1024)
    proxy.drop_once.add(ENCODER)
    window = test_gui.open_window(qtbot, settings, test_gui.FakeAudio())
    reports: list = []
    window.download_fn = gui_download_fn(proxy, tmp_path / "hf", reports)
    window.welcome_download.click()  # the first-run button: streaming-8cb-fp16
    qtbot.waitUntil(lambda: window._download is None, timeout=30_000)
    assert f"Downloaded {V}" in window.banner.text, window.banner.text
    encoder_gets = proxy.file_gets(ENCODER)
    assert len(encoder_gets) == 2 and encoder_gets[1][2] and encoder_gets[1][2].startswith("bytes=")
    assert reports and reports[-1].done_bytes == reports[-1].total_bytes > 0
    qtbot.waitUntil(lambda: window.bridge.codec is not None and not window.bridge.busy, timeout=30_000)
    assert test_gui.loaded_codec(window).max_codebooks == 8
    assert window.pages.currentIndex() == 0  # the plots, not the welcome page
    assert_fixture_bytes(snapshot(tmp_path / "hf", hub))


@needs_qt
def test_gui_download_refuses_a_file_altered_in_transit(qtbot, settings, hub, proxy, tmp_path):
    proxy.corrupt.add(DECODER)
    window = test_gui.open_window(qtbot, settings, test_gui.FakeAudio())
    window.download_fn = gui_download_fn(proxy, tmp_path / "hf", [])
    window.download_variant(V)
    qtbot.waitUntil(lambda: window._download is None, timeout=30_000)
    assert f"{DECODER} failed its integrity check" in window.banner.text, window.banner.text
    assert window.bridge.codec is None and window.pages.currentIndex() == 1  # nothing loaded
