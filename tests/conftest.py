"""Shared test fixtures: the tiny model folders and an isolated app data dir."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

# GUI tests are headless wherever they run (before any Qt import); set it yourself to watch them.
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

FIXTURES = Path(__file__).parent / "fixtures"
MODEL_VARIANTS = ("tiny-8cb", "tiny-16cb", "tiny-8cb-fp16", "tiny-16cb-fp16")


def model_dir(name: str) -> Path:
    """Path of a tiny model fixture folder; skips the test if the exporter has not made it."""
    folder = FIXTURES / name
    if not (folder / "decoder_model.onnx").is_file():
        pytest.skip(f"fixture model {name} missing: run the exporter to create tests/fixtures/{name}")
    return folder


def chirp_noise(rng: np.random.Generator, frames: int) -> np.ndarray:
    """A chirp plus noise, `frames` x 1920 samples: varied enough to move every code."""
    n = frames * 1920
    t = np.arange(n) / 24_000
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


@pytest.fixture(scope="session")
def pulse_server():
    """A private PulseAudio daemon with null sinks `mic` and `speaker` (see tests/pulse.py).

    Skips when PulseAudio is missing or will not start, unless MIMI_LIVE_REQUIRE_PULSE=1 (CI),
    where that is a failure.
    """
    import os

    from pulse import PulseUnavailable, start_pulse_server  # tests/pulse.py

    try:
        server = start_pulse_server()
    except PulseUnavailable as exc:
        if os.environ.get("MIMI_LIVE_REQUIRE_PULSE") == "1":
            pytest.fail(f"no PulseAudio (MIMI_LIVE_REQUIRE_PULSE=1): {exc}")
        pytest.skip(f"no PulseAudio: {exc}")
    try:
        yield server
    finally:
        server.stop()
