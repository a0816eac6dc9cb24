"""Are a session's streams still alive? (worker thread; pure bookkeeping on the callbacks' counters)

A device that is unplugged, or an audio server that dies, does not always end PortAudio's streams:
some stop calling back, some keep calling back and fail every time. The worker asks `dead` once
per chunk and reconnects (see reconnect.py) when it says why.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

STALL_S = 2.0  # no output callback for this long while streaming: the stream is dead
# A window of STALL_S in which at least this share of at least this many output callbacks came
# flagged: the device is failing, not late (under CPU load a few in ten are flagged, not all).
FAILING_SHARE = 0.95
FAILING_MIN_CALLS = 20
class OutputCounters(Protocol):
    """The callbacks' counters the watch reads (app.audio.io_base.IOCounters has them)."""

    output_frames: int
    output_callbacks: int
    output_xruns: int


RUNAWAY_PACE = 1.5  # output frames asked for, against the device's rate, over a window (a healthy one: 1.0)


@dataclass
class StreamWatch:
    """Are the session's streams still alive? Three signs of streams a dead device or server left
    behind, each looked at over STALL_S (the worker calls `dead` once per chunk):
    - the output device stopped calling back (a server that died without closing the stream);
    - it calls back, but every call comes flagged (ALSA's pulse plugin failing over and over
      against a server that is gone: PortAudio keeps "recovering" it without ever finishing);
    - it asks for audio much faster than its rate (a broken device that returns at once).
    """

    moved_at: float = 0.0  # when the output frames last moved
    frames: int = -1  # output frames at the last look (-1: new streams, nothing seen yet)
    window_at: float = 0.0  # start of the current window
    window_frames: int = 0
    window_callbacks: int = 0
    window_xruns: int = 0

    def restart(self) -> None:
        """New streams count from zero."""
        self.frames = -1

    def dead(self, counters: OutputCounters, rate: float, now: float) -> str | None:
        frames, callbacks, xruns = counters.output_frames, counters.output_callbacks, counters.output_xruns
        if self.frames < 0 or frames < self.frames:
            self.frames, self.moved_at = frames, now
            self._open_window(frames, callbacks, xruns, now)
            return None
        if frames != self.frames:
            self.frames, self.moved_at = frames, now
        elif now - self.moved_at > STALL_S:
            return f"the output device stopped asking for audio {STALL_S:.0f} s ago"
        elapsed = now - self.window_at
        if elapsed < STALL_S:
            return None
        calls, flagged = callbacks - self.window_callbacks, xruns - self.window_xruns
        pace = (frames - self.window_frames) / (rate * elapsed)
        self._open_window(frames, callbacks, xruns, now)
        if calls >= FAILING_MIN_CALLS and flagged >= FAILING_SHARE * calls:
            return f"the output device failed every call for {elapsed:.0f} s"
        if pace > RUNAWAY_PACE:
            return f"the output device asked for audio {pace:.0f}x faster than it plays"
        return None

    def _open_window(self, frames: int, callbacks: int, xruns: int, now: float) -> None:
        self.window_at, self.window_frames, self.window_callbacks, self.window_xruns = now, frames, callbacks, xruns
