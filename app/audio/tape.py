"""The last seconds of a session, kept for whoever looks back: spectrograms, the live quality
readout and the instant replay (the worker writes; any thread reads).

Per 24 kHz sample, in step: what went into the codec (dry), what came out (wet) and what the live
monitor played (heard, before the timing's corrections); per 80 ms frame, the codes sent. Fixed
size, so nothing grows however long the session runs; it outlives its session, so the replay
works after Stop. A reader asking for up to `seconds` never sees a sample being overwritten: the
buffers hold a second more than that.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from app.config import FRAME_SIZE, REPLAY_S, SAMPLE_RATE_HZ

__all__ = ["AudioTap", "TapSnapshot"]

MARGIN_S = 1.0  # what the worker may write while a reader copies, with room to spare
MAX_CODEBOOKS = 32  # Mimi's largest model; rows a chunk did not send hold -1
NO_CODE = -1


@dataclass(frozen=True)
class TapSnapshot:
    """Copies of the newest stretch of the tape, all aligned and of one length (whole frames)."""

    dry: np.ndarray
    wet: np.ndarray
    heard: np.ndarray
    codes: np.ndarray  # int16 [MAX_CODEBOOKS, frames], NO_CODE where a row was not sent
    codec: Any  # the codec that made the codes and `wet` (a StreamingCodec), or None
    codebooks: int  # how many codebooks the newest frame sent
    heard_path: str  # the monitor path the newest chunk played
    heard_for: int  # samples at the end of `heard` that are all that path

    @property
    def seconds(self) -> float:
        return len(self.dry) / SAMPLE_RATE_HZ


class AudioTap:
    """Rings of dry, wet and heard audio and of the codes, appended a chunk at a time by the worker."""

    def __init__(self, seconds: float = REPLAY_S, rate: int = SAMPLE_RATE_HZ):
        self.seconds = seconds
        self.readable = math.ceil(seconds * rate / FRAME_SIZE) * FRAME_SIZE  # what a reader may ask for
        self.capacity = self.readable + math.ceil(MARGIN_S * rate / FRAME_SIZE) * FRAME_SIZE
        self._dry = np.zeros(self.capacity, np.float32)
        self._wet = np.zeros(self.capacity, np.float32)
        self._heard = np.zeros(self.capacity, np.float32)
        self._codes = np.full((MAX_CODEBOOKS, self.capacity // FRAME_SIZE), NO_CODE, np.int16)
        self.written = 0  # total samples ever appended; advanced after the copy
        self._codec: Any = None
        self._codec_since = 0  # where the current codec's codes begin
        self._codebooks = 0
        self._heard_path = ""
        self._heard_since = 0

    # -- worker ------------------------------------------------------------------------------

    def append(self, dry: np.ndarray, wet: np.ndarray, heard: np.ndarray | None = None,
               codes: np.ndarray | None = None, heard_path: str = "", codec: Any = None) -> None:
        """One chunk (whole frames when `codes` are given: ``[k, len(dry) // FRAME_SIZE]``)."""
        n, start = len(dry), self.written % self.capacity
        for ring, data in ((self._dry, dry), (self._wet, wet), (self._heard, wet if heard is None else heard)):
            first = min(n, self.capacity - start)
            ring[start : start + first] = data[:first]
            ring[: n - first] = data[first:]
        if codec is not None and codec is not self._codec:
            self._codec, self._codec_since = codec, self.written
        if heard_path != self._heard_path:
            self._heard_path, self._heard_since = heard_path, self.written
        if codes is not None:
            frames = np.arange(self.written // FRAME_SIZE, (self.written + n) // FRAME_SIZE) % self._codes.shape[1]
            self._codes[:, frames] = NO_CODE
            self._codes[: codes.shape[0], frames] = codes
            self._codebooks = int(codes.shape[0])
        self.written += n

    # -- readers -----------------------------------------------------------------------------

    def latest(self, n: int) -> tuple[np.ndarray, np.ndarray, int]:
        """Copies of the newest min(n, available) dry and wet samples, and the total written so far."""
        end = self.written
        index = self._index(end, n)
        return self._dry[index], self._wet[index], end

    def snapshot(self, seconds: float | None = None) -> TapSnapshot:
        """The newest `seconds` (default: all the tape promises) in whole frames, no further back
        than the current codec's first frame (older codes are another model's)."""
        end = self.written
        n = int((self.seconds if seconds is None else min(seconds, self.seconds)) * SAMPLE_RATE_HZ)
        n = min(n, end - self._codec_since if self._codec is not None else end) // FRAME_SIZE * FRAME_SIZE
        index = self._index(end, n)
        frames = (np.arange(end - n, end, FRAME_SIZE) // FRAME_SIZE) % self._codes.shape[1]
        return TapSnapshot(self._dry[index], self._wet[index], self._heard[index], self._codes[:, frames],
                           self._codec, self._codebooks, self._heard_path, min(n, end - self._heard_since))

    def heard_stretch(self, seconds: float) -> tuple[np.ndarray, np.ndarray, str, int] | None:
        """(input, heard, path, rate) over the newest `seconds` the current path played, for a
        quality figure; None before anything played."""
        snap = self.snapshot(seconds)
        n = snap.heard_for
        if n <= 0 or not snap.heard_path:
            return None
        return snap.dry[-n:], snap.heard[-n:], snap.heard_path, SAMPLE_RATE_HZ

    def _index(self, end: int, n: int) -> np.ndarray:
        n = max(0, min(n, end, self.readable))
        return (np.arange(end - n, end) % self.capacity) if n else np.zeros(0, np.int64)
