"""The live quality figure (app/quality/live.py): what it scores, when it says why not, its thread."""

from __future__ import annotations

import time

import numpy as np
import soundfile as sf

from app.config import SAMPLE_RATE_HZ
from app.quality.live import LiveQuality, Stretch, score_stretch
from conftest import model_dir

SPEECH = model_dir("tiny-8cb").parent / "speech-espeak.wav"


def speech() -> np.ndarray:
    pcm, rate = sf.read(SPEECH, dtype="float32")
    assert rate == SAMPLE_RATE_HZ
    return pcm


def test_the_input_itself_scores_one_and_noise_less() -> None:
    pcm = speech()
    assert score_stretch((pcm, pcm, "bypass", SAMPLE_RATE_HZ)).stoi == 1.0
    noisy = pcm + 0.1 * np.random.default_rng(0).standard_normal(len(pcm)).astype(np.float32)
    reading = score_stretch((pcm, noisy, "codec", SAMPLE_RATE_HZ))
    assert reading.stoi is not None and 0.3 < reading.stoi < 0.95 and reading.path == "codec"


def test_quiet_input_and_too_little_audio_say_why_instead_of_a_number() -> None:
    quiet = np.full(2 * SAMPLE_RATE_HZ, 1e-4, np.float32)
    reading = score_stretch((quiet, quiet, "codec", SAMPLE_RATE_HZ))
    assert reading.stoi is None and reading.why == "input quiet"
    short = speech()[: SAMPLE_RATE_HZ // 2]
    reading = score_stretch((short, short, "codec", SAMPLE_RATE_HZ))
    assert reading.stoi is None and reading.why == "too short yet"


def test_the_thread_scores_what_it_reads_and_forgets_it_when_nothing_plays() -> None:
    pcm = speech()
    stretch: list[Stretch | None] = [(pcm, pcm, "bypass", SAMPLE_RATE_HZ)]
    quality = LiveQuality(lambda seconds: stretch[0], interval_s=0.05)
    quality.start()
    deadline = time.monotonic() + 10
    while quality.latest is None and time.monotonic() < deadline:
        time.sleep(0.02)
    assert quality.latest is not None and quality.latest.stoi == 1.0
    stretch[0] = None  # nothing plays now
    while quality.latest is not None and time.monotonic() < deadline:
        time.sleep(0.02)
    assert quality.latest is None
    quality.stop()
    assert not quality.running
