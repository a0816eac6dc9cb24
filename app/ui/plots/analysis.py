"""The numbers behind the plots, without Qt: history rings, a streaming STFT, codebook usage (any thread).

Kept free of Qt and pyqtgraph so that it runs, and is tested, headless.
"""

from __future__ import annotations

import numpy as np

SILENCE_FLOOR = 1e-10  # magnitude below which a bin reads as this, not log(0)


class HistoryRing:
    """The last `capacity` rows of `width` values, newest last; every view is contiguous.

    Each row is written twice, `capacity` rows apart, so that the newest `capacity` rows always
    sit side by side in memory. This is the one scrolling strategy of the plots: line plots show
    `view()`, images show `view(full=True)` (the rows not written yet hold `fill`).
    """

    def __init__(self, capacity: int, width: int = 1, dtype=np.float64, fill: float = 0):
        self.capacity = capacity
        self.fill = fill
        self._buf = np.full((2 * capacity, width), fill, dtype)
        self._next = 0
        self.count = 0  # rows ever appended since the last reset

    def append(self, row) -> None:
        self._buf[self._next] = row
        self._buf[self._next + self.capacity] = row
        self._next = (self._next + 1) % self.capacity
        self.count += 1

    def extend(self, rows: np.ndarray) -> None:
        """Appends rows [n, width], oldest first (only the newest `capacity` of them can stay)."""
        kept = rows[-self.capacity:]
        at = (self._next + np.arange(len(kept))) % self.capacity
        self._buf[at] = kept
        self._buf[at + self.capacity] = kept
        self._next = (self._next + len(kept)) % self.capacity
        self.count += len(rows)

    def view(self, full: bool = False) -> np.ndarray:
        """The rows written, oldest first; `full`: always `capacity` rows, the unwritten ones first."""
        if self.count < self.capacity and not full:
            return self._buf[: self.count]
        return self._buf[self._next : self._next + self.capacity]

    def reset(self) -> None:
        self._buf.fill(self.fill)
        self._next = self.count = 0


def usage_entropy_bits(codes: np.ndarray, codebook_size: int) -> np.ndarray:
    """Empirical entropy (bits) of each row of `codes` [k, n]: what each codebook actually carries."""
    out = np.zeros(codes.shape[0])
    if codes.shape[1] == 0:
        return out
    for row, values in enumerate(codes):
        counts = np.bincount(values[values >= 0], minlength=codebook_size)
        p = counts[counts > 0] / values.size
        out[row] = float(-(p * np.log2(p)).sum())
    return out


def code_buckets(codes: np.ndarray, codebook_size: int) -> np.ndarray:
    """Code indices as colour buckets 1..255 (uint8); bucket 0 stays free for "not sent"."""
    scale = 255.0 / codebook_size
    return 1 + (codes * scale).astype(np.uint8) % 255


class StreamingSTFT:
    """Streaming magnitude STFT: feed samples, get dB columns (uint8 mapped to fixed levels)."""

    def __init__(self, n_fft: int, hop: int, floor_db: float, top_db: float):
        self.n_fft, self.hop = n_fft, hop
        self.window = np.hanning(n_fft).astype(np.float32)
        self.scale = 2.0 / self.window.sum()  # a full-scale sine reads 0 dB
        self.floor_db, self.top_db = floor_db, top_db
        self._pending = np.zeros(0, np.float32)

    @property
    def bins(self) -> int:
        return self.n_fft // 2 + 1

    def reset(self) -> None:
        self._pending = np.zeros(0, np.float32)

    def feed(self, pcm: np.ndarray) -> np.ndarray:
        """uint8 columns [bins, m] for the whole hops now available."""
        pending = np.concatenate([self._pending, pcm]) if len(self._pending) else pcm
        if len(pending) < self.n_fft:
            self._pending = pending
            return np.zeros((self.bins, 0), np.uint8)
        frames = np.lib.stride_tricks.sliding_window_view(pending, self.n_fft)[:: self.hop]
        self._pending = pending[len(frames) * self.hop :]
        mag = np.abs(np.fft.rfft(frames * self.window, axis=1)) * self.scale
        db = 20.0 * np.log10(np.maximum(mag, SILENCE_FLOOR))
        span = self.top_db - self.floor_db
        return np.clip((db - self.floor_db) * (255.0 / span), 0, 255).astype(np.uint8).T
