"""Waiting for a freshly started output stream to settle before the first chunk is placed.

Measured through PulseAudio's ALSA plugin (raw PortAudio, no app, 20 ms latency): in about half
the starts a new output stream first rushes, its callbacks ~1 ms apart and every one flagged as an
underflow, for 10 to 220 ms, taking up to ~0.4 s of audio that is never heard. A first chunk
placed during the rush is eaten with the silence before it, and the speaker queue runs dry behind
it: dozens of underruns in the first half second of a session that nothing disturbed. So the
worker places the first chunk (and takes the session's baseline counters) only once the output has
played a little audio without a flag, or after a timeout for a device that never stops flagging
(its dropouts are counted then, as any others).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["SETTLE_S", "SETTLE_TIMEOUT_S", "OutputSettle"]

SETTLE_S = 0.03  # output played since the last flagged callback: the stream runs at its own pace
SETTLE_TIMEOUT_S = 1.0  # longer than any rush seen: a device that keeps flagging starts anyway


@dataclass
class OutputSettle:
    """Has the output stream stopped rushing? One per opened stream (worker thread)."""

    rate: int  # the output device's sample rate
    flags_seen: int = 0  # flagged output callbacks at the last look
    frames_at_flag: int = 0  # output frames when a new flag was last seen (0: none yet)
    first_look: float | None = None
    settled_after_s: float | None = None  # how long it took (None: not yet)

    def settled(self, now: float, flagged: int, frames: int) -> bool:
        """Whether the stream played SETTLE_S without a flag (or SETTLE_TIMEOUT_S went by), from
        the output counters now: `flagged` callbacks so far and `frames` played so far."""
        if self.settled_after_s is not None:
            return True
        if self.first_look is None:
            self.first_look = now
        if flagged != self.flags_seen:
            self.flags_seen, self.frames_at_flag = flagged, frames
        clean = frames - self.frames_at_flag
        if clean >= SETTLE_S * self.rate or now - self.first_look >= SETTLE_TIMEOUT_S:
            self.settled_after_s = now - self.first_look
            return True
        return False
