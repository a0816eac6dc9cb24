"""Shared test fixtures: the tiny model folders, isolated user folders and the audio servers.

Isolation has two layers. pytest_configure points the whole session (this process and every
subprocess it starts, including the audio servers) at a temporary home for everything the app
and its libraries write: the app data dir, XDG data/config/cache/state (platformdirs' log dir,
QSettings, onnxruntime's and PyInstaller's caches, PulseAudio's cookie, wireplumber's state) and
the Hugging Face cache. HOME itself stays: pyenv's shims and git read their setup from it. On top,
`_isolated_data_dir` gives each test a fresh MIMI_LIVE_DATA_DIR; session fixtures such as the
audio servers snapshot the environment before it applies, so their subprocesses share the
session's data dir (a rewrite cached by one live run is reused by the next).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pytest

from app.config import FRAME_SIZE, SAMPLE_RATE_HZ

# GUI tests are headless wherever they run (before any Qt import); set it yourself to watch them.
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

FIXTURES = Path(__file__).parent / "fixtures"
MODEL_VARIANTS = ("tiny-8cb", "tiny-16cb", "tiny-8cb-fp16", "tiny-16cb-fp16")
AUDIO_SERVERS = ("pulseaudio", "pipewire")
REQUIRE_SERVERS_ENV = "MIMI_LIVE_REQUIRE_PULSE"  # "1" in CI: a missing audio server fails

# Folders the session redirects, and the variables that would point elsewhere and so are dropped.
SESSION_DIRS = {
    "MIMI_LIVE_DATA_DIR": "data",
    "XDG_DATA_HOME": "xdg-data",
    "XDG_CONFIG_HOME": "xdg-config",
    "XDG_CACHE_HOME": "xdg-cache",
    "XDG_STATE_HOME": "xdg-state",
    "HF_HOME": "hf",
}
SESSION_DROPPED = ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE", "MIMI_LIVE_LOG_DIR", "PYINSTALLER_CONFIG_DIR")
_saved_environ: dict[str, str] | None = None
_session_home: Path | None = None


def pytest_configure(config: pytest.Config) -> None:
    # Before collection: huggingface_hub reads HF_HOME when a test module imports it.
    global _saved_environ, _session_home
    _saved_environ = dict(os.environ)
    _session_home = Path(tempfile.mkdtemp(prefix="mimi-live-session-"))
    for name in SESSION_DROPPED:
        os.environ.pop(name, None)
    for name, sub in SESSION_DIRS.items():
        (_session_home / sub).mkdir()
        os.environ[name] = str(_session_home / sub)
    # Same reason as in _isolated_data_dir, for subprocesses of session fixtures.
    os.environ.setdefault("MIMI_LIVE_THREADS", "1")
    # huggingface_hub's telemetry request would go to the real hub, and hf_xet's client past the
    # app's timeouts: tests talk to local hubs only.
    os.environ["HF_HUB_DISABLE_TELEMETRY"] = "1"
    os.environ["HF_HUB_DISABLE_XET"] = "1"


def session_home() -> Path:
    """The session's temporary home (tests/test_isolation.py checks that writes land there)."""
    assert _session_home is not None, "pytest_configure has not run"
    return _session_home


def pytest_unconfigure(config: pytest.Config) -> None:
    if _saved_environ is not None:
        os.environ.clear()
        os.environ.update(_saved_environ)
    if _session_home is not None:
        shutil.rmtree(_session_home, ignore_errors=True)


def model_dir(name: str) -> Path:
    """Path of a tiny model fixture folder; skips the test if the exporter has not made it."""
    folder = FIXTURES / name
    if not (folder / "decoder_model.onnx").is_file():
        pytest.skip(f"fixture model {name} missing: run the exporter to create tests/fixtures/{name}")
    return folder


def chirp_noise(rng: np.random.Generator, frames: int) -> np.ndarray:
    """A chirp plus noise, `frames` code frames: varied enough to move every code."""
    n = frames * FRAME_SIZE
    t = np.arange(n) / SAMPLE_RATE_HZ
    chirp = 0.3 * np.sin(2 * np.pi * (100 * t + 2000 * t**2))
    return (chirp + 0.05 * rng.standard_normal(n)).astype(np.float32)


def relative(a: np.ndarray, b: np.ndarray) -> float:
    """max |a - b| / max |b|."""
    return float(np.abs(a - b).max() / np.abs(b).max())


@pytest.fixture(autouse=True)
def _isolated_data_dir(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    # Never write edited decoders (or anything else) into the real user data dir.
    path = tmp_path_factory.mktemp("mimi-live-data")
    monkeypatch.setenv("MIMI_LIVE_DATA_DIR", str(path))
    # A fresh data dir would time every model's thread counts again in every test (tests/test_tuning.py
    # covers that); the user-facing override skips it.
    monkeypatch.setenv("MIMI_LIVE_THREADS", "1")
    return path


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)


def _serve(kind: str):
    """Start a private audio server of `kind` for a fixture: yields it, stops it afterwards.

    Skips when the server's tools are missing or it will not start, unless
    MIMI_LIVE_REQUIRE_PULSE=1 (CI), where that is a failure.
    """
    from pulse import PulseUnavailable, start_pulse_server  # tests/pulse.py

    if kind == "pulseaudio":
        start = start_pulse_server
    else:
        from pipewire import start_pipewire_server  # tests/pipewire.py

        start = start_pipewire_server
    try:
        server = start()
    except PulseUnavailable as exc:
        if os.environ.get(REQUIRE_SERVERS_ENV) == "1":
            pytest.fail(f"no {kind} ({REQUIRE_SERVERS_ENV}=1): {exc}")
        pytest.skip(f"no {kind}: {exc}")
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def pulse_server():
    """A private PulseAudio daemon with null sinks `mic` and `speaker` (see tests/pulse.py)."""
    yield from _serve("pulseaudio")


@pytest.fixture
def own_pulse_server():
    """A private PulseAudio daemon for one test, which may kill it, restart it or remove its
    sinks without touching the session's shared `pulse_server`."""
    yield from _serve("pulseaudio")


@pytest.fixture(scope="session", params=AUDIO_SERVERS)
def audio_server(request: pytest.FixtureRequest):
    """Each audio server in turn, with the same surface (tests/pulse.py, tests/pipewire.py):
    a test using it runs once per server, with ids like `[pipewire]`. The PulseAudio one is
    `pulse_server` itself, so a session starts one PulseAudio daemon however many tests ask."""
    if request.param == "pulseaudio":
        yield request.getfixturevalue("pulse_server")
    else:
        yield from _serve(request.param)


@pytest.fixture(params=AUDIO_SERVERS)
def own_audio_server(request: pytest.FixtureRequest):
    """Each audio server in turn (as `audio_server`), but a fresh one for this test alone, which
    may kill it or restart it (`restart(down_s)`) without touching the session's shared servers."""
    yield from _serve(request.param)


@pytest.fixture
def settings(tmp_path):
    """The window's QSettings in a temporary folder (the GUI tests' own; Qt is imported here only)."""
    from PySide6.QtCore import QSettings

    QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, str(tmp_path / "qsettings"))
    return QSettings(str(tmp_path / "mimi-live.ini"), QSettings.Format.IniFormat)
