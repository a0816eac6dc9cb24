"""What the engine feeds the codec: the microphone, a looped file, or a test tone (worker thread).

Every source hands out 24 kHz mono float32 chunks, and shows the input after the last chunk
without consuming it (`lookahead`): the classic paths need it to be played in step with Mimi.
The microphone is paced by its device (a chunk is ready when enough input has arrived); the file
and the tone are paced by the speaker (the worker asks for a chunk when the output runs low).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Literal

import numpy as np
import soxr

from app.audio.files import read_audio_24k_mono
from app.audio.ring import RingBuffer
from app.audio.splice import crossfade_into
from app.config import FRAME_SIZE, SAMPLE_RATE_HZ

# soxr's streaming resampler holds samples back in bursts; medium quality keeps that short.
RESAMPLE_QUALITY = "MQ"
SLACK_PROBE_BLOCKS = 32
DROP_CROSSFADE_SAMPLES = 120  # 5 ms over a gap left by dropped input


def _resampler(in_rate: int, out_rate: int) -> soxr.ResampleStream | None:
    if in_rate == out_rate:
        return None
    return soxr.ResampleStream(in_rate, out_rate, 1, dtype="float32", quality=RESAMPLE_QUALITY)


def resampler_slack(in_rate: int, out_rate: int, block: int) -> int:
    """Most samples a streaming resampler holds back when fed `block`-sized blocks, in 24 kHz samples.

    Measured on a scratch resampler, so the pre-roll covers it instead of a guess.
    """
    probe = _resampler(in_rate, out_rate)
    if probe is None:
        return 0
    fed = produced = 0
    worst = 0.0
    silence = np.zeros(block, np.float32)
    for _ in range(SLACK_PROBE_BLOCKS):
        fed += block
        produced += len(probe.resample_chunk(silence))
        worst = max(worst, fed * out_rate / in_rate - produced)
    return int(np.ceil(worst * SAMPLE_RATE_HZ / out_rate))


class MicSource:
    """Input ring at the device rate -> 24 kHz pending buffer, read in whole chunks."""

    live: Literal[True] = True  # Literal: `if source.live` narrows a Source to MicSource

    def __init__(self, ring: RingBuffer, device_rate: int, block: int = 512, max_block: int = 1 << 16):
        self._ring = ring
        self._ratio = SAMPLE_RATE_HZ / device_rate
        self._resampler = _resampler(device_rate, SAMPLE_RATE_HZ)
        self.slack = resampler_slack(device_rate, SAMPLE_RATE_HZ, block)
        self._scratch = np.zeros(max_block, np.float32)
        self._pending = np.zeros(0, np.float32)

    def _pull(self) -> None:
        count = self._ring.read(self._scratch)
        if count == 0:
            return
        block = self._scratch[:count]
        if self._resampler is not None:
            block = self._resampler.resample_chunk(block)
        self._pending = np.concatenate([self._pending, block])

    def backlog(self) -> int:
        """24 kHz samples waiting (pending + not yet pulled from the ring)."""
        return len(self._pending) + int(self._ring.readable() * self._ratio)

    def read(self, out: np.ndarray, ahead: int = 0) -> bool:
        """Fills `out` once `ahead` more samples beyond it have arrived too (a classic path's
        look-ahead, see classic_paths.py); returns whether it did."""
        self._pull()
        if len(self._pending) < len(out) + ahead:
            return False
        out[:] = self._pending[: len(out)]
        self._pending = self._pending[len(out) :]
        return True

    def lookahead(self, n: int) -> np.ndarray:
        """Up to `n` samples of the input after the last read, not consumed (fewer if not yet in)."""
        self._pull()
        return self._pending[:n].copy()

    def drop_frames(self, frames: int) -> int:
        """Drops the oldest whole 80 ms frames (to catch up after falling behind); returns how many.

        The audio after the gap fades in from the audio that would have come next, so neither
        the codec nor the bypass path hears a step.
        """
        self._pull()
        frames = min(frames, len(self._pending) // FRAME_SIZE)
        if frames == 0:
            return 0
        cut = frames * FRAME_SIZE
        fade = min(DROP_CROSSFADE_SAMPLES, len(self._pending) - cut)
        continuation = self._pending[:fade].copy()
        self._pending = self._pending[cut:].copy()
        crossfade_into(continuation, self._pending[:fade])
        return frames


class FileSource:
    """A file converted to 24 kHz mono, played in a loop."""

    live: Literal[False] = False

    def __init__(self, path: Path):
        self.path = Path(path)
        self._pcm = read_audio_24k_mono(self.path)
        self._pos = 0

    def read(self, out: np.ndarray, ahead: int = 0) -> bool:
        self._pos = self._copy_from(self._pos, out)
        return True

    def lookahead(self, n: int) -> np.ndarray:
        """The next `n` samples the file would give, not consumed."""
        out = np.zeros(n, np.float32)
        self._copy_from(self._pos, out)
        return out

    def _copy_from(self, pos: int, out: np.ndarray) -> int:
        """Fills `out` from `pos` on, looping; returns the position after it."""
        filled = 0
        while filled < len(out):
            take = min(len(out) - filled, len(self._pcm) - pos)
            out[filled : filled + take] = self._pcm[pos : pos + take]
            filled += take
            pos = (pos + take) % len(self._pcm)
        return pos


class ToneSource:
    """A continuous-phase sine at a fixed level (default 440 Hz, -12 dBFS)."""

    live: Literal[False] = False

    def __init__(self, frequency_hz: float = 440.0, level_db: float = -12.0):
        self._step = 2 * math.pi * frequency_hz / SAMPLE_RATE_HZ
        self._amplitude = 10 ** (level_db / 20) * math.sqrt(2)
        self._phase = 0.0

    def read(self, out: np.ndarray, ahead: int = 0) -> bool:
        self._fill(out)
        self._phase = float((self._phase + self._step * len(out)) % (2 * math.pi))
        return True

    def lookahead(self, n: int) -> np.ndarray:
        """The next `n` samples of the tone, not consumed."""
        out = np.zeros(n, np.float32)
        self._fill(out)
        return out

    def _fill(self, out: np.ndarray) -> None:
        phases = self._phase + self._step * np.arange(len(out))
        np.sin(phases, out=out)
        out *= self._amplitude


Source = MicSource | FileSource | ToneSource  # what the worker reads its chunks from


class OutputSink:
    """24 kHz chunks -> device rate -> output ring."""

    def __init__(self, ring: RingBuffer, device_rate: int, chunk: int = FRAME_SIZE):
        self._ring = ring
        self._ratio = device_rate / SAMPLE_RATE_HZ
        self._resampler = _resampler(SAMPLE_RATE_HZ, device_rate)
        self.slack = resampler_slack(SAMPLE_RATE_HZ, device_rate, chunk)

    def level(self) -> int:
        """Audio queued for the device, in 24 kHz samples."""
        return int(self._ring.readable() / self._ratio)

    def write(self, pcm: np.ndarray) -> int:
        """Writes a chunk; returns the 24 kHz samples that did not fit (0 normally)."""
        block = self._resampler.resample_chunk(pcm) if self._resampler is not None else pcm
        written = self._ring.write(block)
        return int((len(block) - written) / self._ratio)

    def write_silence(self, samples_24k: int) -> None:
        self._ring.write_silence(int(samples_24k * self._ratio))
