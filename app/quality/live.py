"""A live quality figure: STOI of the path being heard against the input, over the last seconds.

A thread of its own at the lowest CPU priority reads the newest stretch (input and what was
heard, already time-aligned: every path's delay is known and taken out where it is made) once a
second and scores it; a display reads `latest` at its own pace. Nothing here touches the audio
worker, and a slow score only makes the figure older.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from app.threads import lower_thread_priority

from .scores import MIN_STOI_S, stoi_only

__all__ = ["LiveQuality", "QualityReading", "Stretch"]

log = logging.getLogger(__name__)

WINDOW_S = 4.0  # what each figure covers: several words, and a change of path shows within seconds
INTERVAL_S = 1.0
QUIET_DB = -50.0  # input below this (RMS over the window) has no speech to score
# (input, what was heard, the path heard, sample rate), or None when nothing plays
Stretch = tuple[np.ndarray, np.ndarray, str, int]


@dataclass(frozen=True)
class QualityReading:
    path: str  # the monitor path scored ("codec", "opus-6k", ...)
    stoi: float | None  # 0..1; None with `why`
    seconds: float  # how much audio the figure covers
    at: float  # time.monotonic() when it was made
    why: str | None = None  # e.g. "input quiet"
    stale: bool = False  # kept from before a pause (the replay), not of what plays now


def score_stretch(stretch: Stretch) -> QualityReading:
    """One reading of an aligned (input, heard) stretch (any thread)."""
    reference, heard, path, rate = stretch
    seconds = len(reference) / rate
    now = time.monotonic()
    if seconds < max(MIN_STOI_S, 1.0):
        return QualityReading(path, None, seconds, now, "too short yet")
    rms = float(np.sqrt(np.mean(np.square(reference, dtype=np.float64))))
    if rms <= 0 or 20 * np.log10(rms) < QUIET_DB:
        return QualityReading(path, None, seconds, now, "input quiet")
    return QualityReading(path, stoi_only(reference, heard, rate), seconds, now)


class LiveQuality:
    """Scores `read()` every `interval_s` on a background thread; `latest` is the newest reading."""

    def __init__(self, read: Callable[[float], Stretch | None], window_s: float = WINDOW_S,
                 interval_s: float = INTERVAL_S):
        self._read = read
        self.window_s = window_s
        self.interval_s = interval_s
        self.latest: QualityReading | None = None
        self.cost_s = 0.0  # what the last reading took, for the log
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        if self.running:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="mimi-quality", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2.0)
        self._thread = None
        self.latest = None

    def _run(self) -> None:
        lower_thread_priority()
        while not self._stop.wait(self.interval_s):
            try:
                stretch = self._read(self.window_s)
                if stretch is None:
                    self.latest = None
                    continue
                started = time.perf_counter()
                self.latest = score_stretch(stretch)
                self.cost_s = time.perf_counter() - started
            except Exception:  # noqa: BLE001 - a figure that cannot be made is not shown; the audio goes on
                log.warning("live quality reading failed", exc_info=True)
                self.latest = None
