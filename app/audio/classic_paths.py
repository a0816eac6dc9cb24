"""The classic monitor paths (Codec2 1200/3200, Opus 6/12 kbps), run live beside Mimi (worker thread).

Why a bank, and why a look-ahead. A classic path's output lags its input by a constant
d = `delay_samples` (80 ms for Codec2 1200), while Mimi's output for a chunk is aligned with
that chunk. To play a classic path in step with Mimi, the worker needs its output for the
chunk's input, i.e. raw output up to the chunk's end + d: input that arrives d after the
chunk. So, while a classic path is heard, the worker reads a chunk only once d more input is
in (`source.read(chunk, ahead=d)`, see `lookahead_needed`), and the timing covers d on top of
the waits it measures (`TimingController.set_cover_extra`, the same for every path: the
delay does not depend on which path is heard; switching is instant and in sync).

Every codec is fed every input sample exactly once, in order, whether it is heard or not:
the heard one before its chunk is mixed (up to chunk end + d), the others after the speaker
write with whatever input is already there (never waiting). So a switch finds the path's
stream running, and each path's bit rate is measured from the bytes it really produced.

Positions are those of the source's stream (the samples it hands out). When the timing drops
input frames, the source crossfades over the gap and the stream goes on: the bank feeds on as
if it were continuous. Input a path was already fed from the look-ahead that the drop then
removed is not fed again, so that path hears one step at that point, once per drop (a drop
follows a stall that was already audible); resetting instead would cost a codec open
(20-110 ms) on the worker.
"""

from __future__ import annotations

import logging

import numpy as np

from app.classic import ClassicError, StreamingCodec, open_codec
from app.config import CLASSIC_PATH_KEYS, SAMPLE_RATE_HZ

__all__ = ["CLASSIC_MARGIN_S", "ClassicBank", "lookahead_needed"]

log = logging.getLogger(__name__)

# Beyond the longest look-ahead, the cover's extra holds this: the worker polls for the input
# every 2 ms and a classic path's own compute is 1-2 ms per chunk.
CLASSIC_MARGIN_S = 0.005
HISTORY_S = 2.0  # aligned output kept per path: far more than a chunk plus the longest look-ahead


class _History:
    """The newest `capacity` samples of a stream, addressed by absolute position (fixed memory)."""

    def __init__(self, capacity: int, start: int = 0) -> None:
        self._buf = np.zeros(capacity, np.float32)
        self.start = start  # nothing before it was ever written
        self.end = start  # absolute position after the newest sample

    def write(self, samples: np.ndarray) -> None:
        cap = len(self._buf)
        self.end += max(0, len(samples) - cap)  # only the newest `cap` are kept
        samples = samples[-cap:]
        start = self.end % cap
        first = min(len(samples), cap - start)
        self._buf[start : start + first] = samples[:first]
        self._buf[: len(samples) - first] = samples[first:]
        self.end += len(samples)

    def read(self, pos: int, n: int) -> tuple[np.ndarray, int]:
        """Samples [pos, pos + n) (zeros where not held) and how many of them were held."""
        out = np.zeros(n, np.float32)
        cap = len(self._buf)
        lo, hi = max(pos, self.end - cap, self.start), min(pos + n, self.end)
        if hi <= lo:
            return out, 0
        idx = np.arange(lo, hi) % cap
        out[lo - pos : hi - pos] = self._buf[idx]
        return out, hi - lo


class ClassicBank:
    """The four classic codecs, each fed the same input once, their output kept aligned to it.

    `feed(key, pcm, start)` gives path `key` the input [start, start + len(pcm)) (what it already
    had is skipped); `aligned(key, start, n)` is its output for input [start, start + n): raw
    output shifted back by the path's delay. Open it off the worker (`open`: 20-110 ms a codec).
    """

    def __init__(self, codecs: dict[str, StreamingCodec], start: int = 0) -> None:
        self.codecs = codecs
        self.short_samples = 0  # aligned samples asked for but not there (played as zeros)
        self.gap_samples = 0  # input positions a path never got (fed as zeros)
        self.begin(start)

    def begin(self, start: int) -> None:
        """Starts every path at stream position `start`, before it is fed (a bank opened on a
        loader thread begins where the running session's stream is when it is put in)."""
        self.start = start
        self.fed = dict.fromkeys(self.codecs, start)  # input position each path has been fed up to
        self._out = {key: _History(int(HISTORY_S * SAMPLE_RATE_HZ), start) for key in self.codecs}

    @classmethod
    def open(cls) -> tuple[ClassicBank | None, str | None]:
        """(the bank, None), or (None, one line saying why the classic paths are off)."""
        codecs: dict[str, StreamingCodec] = {}
        try:
            for key in CLASSIC_PATH_KEYS:
                codecs[key] = open_codec(key)
        except ClassicError as error:
            log.warning("classic monitor paths off: %s", error)
            return None, f"the classic monitor paths are off: {error}"
        return cls(codecs), None

    def delay(self, key: str) -> int:
        return self.codecs[key].delay_samples

    @property
    def max_delay(self) -> int:
        return max(codec.delay_samples for codec in self.codecs.values())

    @property
    def cover_extra_s(self) -> float:
        """What the timing covers on top of the measured waits while the bank runs: the longest
        look-ahead and the margin (TimingController.set_cover_extra)."""
        return self.max_delay / SAMPLE_RATE_HZ + CLASSIC_MARGIN_S

    def feed(self, key: str, pcm: np.ndarray, start: int) -> None:
        fed = self.fed[key]
        if fed < start:  # never expected: positions come from one stream; keep it in step anyway
            self.gap_samples += start - fed
            self._push(key, np.zeros(start - fed, np.float32))
            fed = start
        new = pcm[fed - start :]
        if len(new):
            self._push(key, new)

    def _push(self, key: str, pcm: np.ndarray) -> None:
        self._out[key].write(self.codecs[key].process(pcm))
        self.fed[key] += len(pcm)

    def aligned(self, key: str, start: int, n: int) -> np.ndarray:
        """The path's output for input [start, start + n); zeros (counted) for what is not in yet."""
        out, held = self._out[key].read(start + self.delay(key), n)
        self.short_samples += n - held
        return out

    def bps(self) -> dict[str, float]:
        """Each path's measured payload bit rate (bits per second of audio encoded)."""
        return {key: round(codec.measured_bps, 1) for key, codec in self.codecs.items()}


def lookahead_needed(bank: ClassicBank | None, monitor: str, previous: str | None, chunk: int,
                     fade: int) -> int:
    """Input a chunk must be read with (beyond it) so the path heard, and the one faded out of
    over its first `fade` samples, have their aligned output for it."""
    if bank is None:
        return 0
    need = bank.delay(monitor) if monitor in bank.codecs else 0
    if previous in bank.codecs:
        need = max(need, bank.delay(previous) + fade - chunk)
    return max(0, need)
