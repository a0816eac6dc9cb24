"""Regenerates tests/fixtures/speech-espeak.wav: ~3.2 s of synthetic English for the classic codecs' tests.

    python -m tests.make_speech_fixture

which runs (espeak-ng 1.51 writes 22050 Hz mono 16-bit)

    espeak-ng -v en-us -s 150 -w OUT.wav "The quick brown fox jumps over the lazy dog."

then resamples it with soxr (HQ) to 24 kHz mono, cuts espeak's trailing silence to 0.1 s,
peak-normalises to 0.7 and stores 16-bit PCM: 3.2 s, ~150 KB. (The silence would be 10% of
the clip, and Opus's VBR spends next to nothing on it: its rate on the clip would say more
about the pause than about the codec.)

A synthetic voice, not a recording: it has pitch, formants, fricatives and pauses, which is what
Codec2 and Opus are built for, and anyone can make it again without a microphone.
"""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path

import numpy as np
import soundfile
import soxr

from app.config import SAMPLE_RATE_HZ

FIXTURE = Path(__file__).parent / "fixtures" / "speech-espeak.wav"
TEXT = "The quick brown fox jumps over the lazy dog."
PEAK = 0.7
TAIL_S = 0.1  # silence kept after the last sound


def main() -> None:
    with tempfile.TemporaryDirectory() as scratch:
        raw = Path(scratch) / "espeak.wav"
        subprocess.run(["espeak-ng", "-v", "en-us", "-s", "150", "-w", str(raw), TEXT], check=True)
        audio, rate = soundfile.read(raw, dtype="float32", always_2d=True)
    mono = audio.mean(axis=1)
    resampled = soxr.resample(mono, rate, SAMPLE_RATE_HZ, quality="HQ").astype(np.float32)
    resampled *= PEAK / float(np.max(np.abs(resampled)))
    last_sound = int(np.nonzero(np.abs(resampled) > 1e-3)[0][-1])
    resampled = resampled[: last_sound + int(TAIL_S * SAMPLE_RATE_HZ)]
    soundfile.write(FIXTURE, resampled, SAMPLE_RATE_HZ, subtype="PCM_16")
    print(f"{FIXTURE}: {len(resampled) / SAMPLE_RATE_HZ:.2f} s, {FIXTURE.stat().st_size:,} B")


if __name__ == "__main__":
    main()
