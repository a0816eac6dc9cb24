"""`mimi-live compare --play`: every path played in turn through a real audio server, announced.

The app plays into the private PulseAudio's `speaker` sink; its monitor is recorded, and the
recording must hold one burst of sound per path, in the announced order, with a gap between.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from app.audio.playback import GAP_S
from conftest import model_dir

pytestmark = [pytest.mark.pulse]

REPO = Path(__file__).resolve().parents[1]
SPEECH = REPO / "tests" / "fixtures" / "speech-espeak.wav"


def bursts(recording: np.ndarray, rate: int, min_gap_s: float) -> list[tuple[float, float]]:
    """(start s, end s) of the stretches with sound, split where it is silent for min_gap_s."""
    hop = rate // 100
    frames = recording[: len(recording) // hop * hop].reshape(-1, hop)
    loud = np.sqrt((frames ** 2).mean(axis=1)) > 1e-3
    spans, start, quiet = [], None, 0
    for i, on in enumerate(loud):
        if on:
            start = i if start is None else start
            quiet = 0
        elif start is not None:
            quiet += 1
            if quiet * hop >= min_gap_s * rate:
                spans.append((start / 100, (i - quiet + 1) / 100))
                start, quiet = None, 0
    if start is not None:
        spans.append((start / 100, len(loud) / 100))
    return spans


def test_play_plays_each_path_in_turn_and_says_which(pulse_server, tmp_path) -> None:
    recorder = pulse_server.start_recording_speaker()
    result = subprocess.run(
        [sys.executable, "-m", "app", "compare", str(SPEECH), "--out", str(tmp_path / "out"),
         "--model", str(model_dir("tiny-8cb")), "--codebooks", "8", "--classic", "codec2-3200,opus-12k",
         "--play", "--play-seconds", "1.0"],
        env=pulse_server.env, cwd=REPO, capture_output=True, text=True, timeout=120)
    recording = recorder.stop()
    assert result.returncode == 0, result.stderr
    announced = [line.split(": ", 2)[2] for line in result.stderr.splitlines() if ": playing " in line]
    assert announced == ["Original", "Mimi 8 codebooks", "Codec2 3200", "Opus 12 kbps"]
    # The speech clip has pauses shorter than the gap between paths: split only at longer silences.
    spans = bursts(recording, 24_000, min_gap_s=0.8 * GAP_S)
    long_enough = [s for s in spans if s[1] - s[0] > 0.5]
    assert len(long_enough) == 4, spans
