"""One timing controller for the live path: how much audio is in flight, and how much should be.

Pure arithmetic on numbers the worker measures (no audio, no devices, no clock of its own), so it
is tested on its own against simulated disturbances. The worker thread owns it.

What it controls. For every chunk the worker measures, in 24 kHz samples:
- `wait`: how long the chunk's last sample had waited when the chunk was written to the speaker
  queue (the input that had piled up behind it when it was read, plus the compute time);
- `level`: the speaker queue just before the write.
Their sum, the audio in flight, is the whole delay of the path apart from the fixed device
latencies and the chunk itself: end to end = input device + chunk + in flight + output device.
In steady state it stays put; a stall, an underrun or clock drift moves it.

The target. The speaker queue must never run dry, so in flight must cover the longest wait a
chunk will have, plus one output device block and a small margin. The cover is measured, not
guessed, from the waits of calm chunks over the last minutes and of any chunk over the last few
seconds; how, and what counts as calm, is timing_cover.py's job. The constants are in
timing_policy.py.

Getting back to the target:
- input that piled up beyond one chunk while the worker was stalled is dropped in whole frames
  before the next read (`frames_to_drop`; the audio source crossfades over the gap);
- a lasting excess is spliced out of the chunks about to play, at most `max_shrink_share` of
  each (crossfaded, see splice.py); a lasting shortfall is spliced in, more gently. In steady
  state the band around the target is a device block wide, so a queue that moves in blocks is
  not spliced back and forth; while winning back a disturbance it is `tolerance_s` alone (and
  the chunks that waited for a pile-up do not raise the cover): after a freeze the delay is back
  within a second or two, not after a long resampling;
- an offset that the band hides is spliced away once the smoothed reading shows it;
- small, slow departures (clock drift between microphone and speaker) are resampled away a
  sample or two per chunk.
Everything removed or added is counted, and the worker tells the user when the delay rose and
when it was won back (`events`).
"""

from __future__ import annotations

import collections
import math
from dataclasses import dataclass

from app.audio.timing_cover import CoverMemory
from app.audio.timing_policy import TimingPolicy
from app.config import FRAME_SIZE, SAMPLE_RATE_HZ

__all__ = ["Correction", "TimingController", "TimingPolicy"]


@dataclass
class Correction:
    """What to do to the chunk about to be written: change its length by `samples` (+ longer)."""

    samples: int = 0
    splice: bool = False  # False: resample (a few samples); True: one crossfaded splice


class TimingController:
    """See the module docstring. All sample counts are at 24 kHz; `now` is the worker's clock (s)."""

    def __init__(self, chunk_samples: int, initial_cover_s: float, policy: TimingPolicy | None = None,
                 rate: int = SAMPLE_RATE_HZ) -> None:
        self.policy = policy or TimingPolicy()
        self.rate = rate
        self.chunk_samples = int(chunk_samples)
        self._cover = CoverMemory(self.chunk_samples, float(initial_cover_s), self.policy, rate)
        self.cover_extra_s = 0.0  # always covered on top of the measured waits (set_cover_extra)
        self.output_block = 0  # samples the output device takes at once (set once known)
        self.input_block = 0  # samples the input device delivers at once (set once known)
        self._errors: collections.deque[float] = collections.deque(maxlen=self.policy.patience_chunks)
        self._ema: float | None = None
        self._ema_count = 0  # readings in the smoothed reading since it last started
        self._drift_rate = 0.0  # samples per chunk the integral term adds
        self._splicing = 0  # -1 splicing out, +1 splicing in, 0 not
        self._winning_back = False  # after a dropout, a pile-up or a disturbance, until back on target
        self.in_flight = 0.0  # the latest reading, samples
        # Counters (samples unless named otherwise), cumulative since start.
        self.spliced_out = 0
        self.spliced_in = 0
        self.dropped_frames = 0
        self.events: collections.deque[tuple[str, str]] = collections.deque(maxlen=16)
        self._behind_since: float | None = None
        self._behind_cause = ""
        self._on_target_since: float | None = None
        self._last_behind_event = -math.inf
        self._removed_at_behind = 0

    # -- the target ---------------------------------------------------------------------------

    @property
    def cover_s(self) -> float:
        """The longest wait the target covers now (plus the constant extra, see set_cover_extra)."""
        return self._cover.cover_s + self.cover_extra_s

    @property
    def initial_cover_s(self) -> float:
        """The warm-up's estimate of the cover, kept until calm history is trusted (`trust_s`)."""
        return self._cover.initial_cover_s

    @initial_cover_s.setter
    def initial_cover_s(self, seconds: float) -> None:
        # The worker raises it by one input block once the device's block is known.
        self._cover.initial_cover_s = seconds

    @property
    def episodes(self) -> int:
        """Disturbances seen since start."""
        return self._cover.episodes

    @property
    def target(self) -> int:
        """Audio to keep in flight (samples): the cover, one output block, the margin."""
        return math.ceil((self.cover_s + self.policy.margin_s) * self.rate) + self.device_block

    @property
    def device_block(self) -> int:
        """The output granularity covered (samples): the largest block seen, or the floor."""
        return max(self.output_block, round(self.policy.min_device_block_s * self.rate))

    @property
    def recovering(self) -> bool:
        """Winning back a dropout, a pile-up or a disturbance (until back on target)."""
        return self._winning_back

    @property
    def drift_ppm(self) -> float:
        """The clock drift the correction has settled on (+: the speaker is fed extra samples)."""
        return self._drift_rate / self.chunk_samples * 1e6

    # -- what the worker asks -----------------------------------------------------------------

    def frames_to_drop(self, level: int, backlog: int) -> int:
        """Whole input frames to drop before reading the next chunk, to win back a pile-up.

        `backlog` includes the chunk about to be read. Only input beyond that chunk can go, and
        only as much as the audio in flight exceeds the target by.
        """
        waiting = backlog - self.chunk_samples
        excess = level + waiting - self.target
        if waiting < FRAME_SIZE or excess < FRAME_SIZE:
            return 0
        return int(min(excess, waiting) // FRAME_SIZE)

    def note_dropped(self, frames: int) -> None:
        self.dropped_frames += frames
        if frames > 0:
            # Input piled up: the worker was stalled, and what is left of it is won back now.
            self._winning_back = True
            self._cover.note_pile_up()

    def first_chunk_silence(self, level: int, backlog: int, compute_s: float) -> int:
        """Silence to add before the first chunk so it lands behind a full target (samples)."""
        return max(0, self.target - round(level + backlog + compute_s * self.rate))

    def correct(self, now: float, level: int, backlog: int, compute_s: float, adjust_level: bool = True,
                lookahead: int = 0) -> Correction:
        """Records one chunk and says how to change its length before it is written.

        level: speaker queue now (samples); backlog: input waiting behind this chunk when it was
        read (samples); compute_s: its encode + decode. With adjust_level False (sources paced by
        the speaker) only the wait is recorded. lookahead: of the backlog, the input the chunk was
        read with on purpose (a classic path's look-ahead): in flight, but covered by the cover's
        extra, so not part of the wait recorded.
        """
        own = max(0, backlog - lookahead)
        wait_s = own / self.rate + compute_s
        # A worker that keeps up reads a chunk as soon as its last input block is in, so less than
        # a block waits behind it. More means it is catching up after a stall: the chunk's wait
        # shows that stall, not the machine's jitter.
        catching_up = own > self.input_block + self.policy.catch_up_slack_s * self.rate
        if self._cover.observe(now, wait_s, catching_up):
            self._winning_back = True  # a disturbance: won back once it has passed
        self.in_flight = level + backlog + compute_s * self.rate
        if not adjust_level:
            return Correction()
        correction = self._plan(self.in_flight)
        self._follow_recovery(now)
        return correction

    def note_underrun(self, now: float, missing: int, cause: str) -> None:
        """The listener heard a gap: the speaker queue ran dry for `missing` samples, or (with
        missing 0) the device itself reported one. Said once per disturbance; the delay a dry
        queue adds is in the next readings, so the target needs no push from here."""
        self._winning_back = True
        if self._behind_since is None:
            self._behind_since = now
            self._removed_at_behind = self.spliced_out + self.dropped_frames * FRAME_SIZE
        self._on_target_since = None
        self._behind_cause = cause
        if now - self._last_behind_event >= self.policy.event_interval_s:
            self._last_behind_event = now
            self.events.append(("behind", f"audio dropped out ({cause}): the delay rises to cover it and comes "
                                          "back down once this passes"))

    def hold_disturbed(self, held: bool, now: float) -> None:
        """The worker knows a disturbance is under way (a model or codebook switch loading, and a
        few seconds after it lands): none of its chunks is remembered as calm."""
        self._winning_back = self._winning_back or held
        self._cover.hold(held, now)

    def set_cover_extra(self, seconds: float) -> None:
        """A wait some chunks have by design, covered always on top of the measured ones: the
        classic paths' look-ahead (a path heard waits that long for input beyond its chunk). Added,
        not a floor: the waits recorded exclude it (`correct`'s lookahead), so the target, and so
        the delay, is the same whichever path is heard. Changed mid-session (the paths turned on
        or off), the difference is spliced in or out at once, in the narrow band."""
        seconds = max(0.0, float(seconds))
        if seconds != self.cover_extra_s and self._errors:  # streaming already
            self._winning_back = True
        self.cover_extra_s = seconds

    def set_output_block(self, samples: int) -> None:
        self.output_block = max(self.output_block, int(samples))

    def set_input_block(self, samples: int) -> None:
        self.input_block = max(self.input_block, int(samples))

    # -- inside -------------------------------------------------------------------------------

    def _plan(self, in_flight: float) -> Correction:
        p, n = self.policy, self.chunk_samples
        target = self.target
        self._errors.append(in_flight - target)
        # Splicing starts once the error has lasted beyond the tolerance and goes on until the
        # error is a quarter of that: a band, so readings that jitter around the tolerance do not
        # start and stop it chunk by chunk.
        tolerance = self._tolerance()
        release = tolerance / 4
        fade = round(p.crossfade_s * self.rate)
        full = len(self._errors) == p.patience_chunks
        low, high = min(self._errors), max(self._errors)
        if self._splicing < 0 and low <= release or self._splicing > 0 and high >= -release:
            self._splicing = 0
        if self._splicing == 0 and full:
            self._splicing = -1 if low > tolerance else 1 if high < -tolerance else 0
        if self._splicing < 0:
            amount = int(min(low, p.max_shrink_share * n, n - 2 * fade))
            self._after_splice(in_flight, -amount)
            self.spliced_out += amount
            return Correction(-amount, splice=True)
        if self._splicing > 0:
            amount = int(min(-high, p.max_grow_share * n, n - 2 * fade))
            self._after_splice(in_flight, amount)
            self.spliced_in += amount
            return Correction(amount, splice=True)
        # The smoothed reading: the mean since the last step change, then an EMA (~4 s).
        self._ema_count += 1
        weight = max(p.drift_smoothing, 1 / self._ema_count)
        self._ema = in_flight if self._ema is None else self._ema + weight * (in_flight - self._ema)
        # A lasting offset inside the band (a large device block's band can hide 40 ms): once the
        # mean has settled it is spliced away, so resampling only ever sees a few milliseconds.
        offset = self._ema - target
        if self._ema_count >= p.smoothed_min_chunks and abs(offset) > p.smoothed_tolerance_s * self.rate:
            amount = int(max(-p.max_shrink_share * n, min(p.max_grow_share * n, -offset)))
            self._ema += amount
            self._shift_readings(amount)
            self.spliced_out += max(0, -amount)
            self.spliced_in += max(0, amount)
            return Correction(amount, splice=True)
        # Clock drift: steer the smoothed reading back to the target, a sample or two at a time.
        limit = max(1, round(n * p.drift_max_ppm / 1e6))
        error = target - self._ema
        self._drift_rate = max(-limit, min(limit, self._drift_rate + error * p.drift_integral_gain))
        adjust = int(max(-limit, min(limit, round(self._drift_rate + error * p.drift_gain))))
        return Correction(adjust, splice=False)

    @property
    def tolerance(self) -> float:
        """How far in flight may sit off target now before a splice (samples)."""
        return self._tolerance()

    def _tolerance(self) -> float:
        """How far in flight may sit off target before a splice (samples).

        The readings move in device blocks, so in steady state the band is a block wider: a
        queue that is on target is not spliced back and forth. While winning back a dropout or a
        pile-up it is not: what is left after whole frames were dropped is spliced away now, not
        resampled away over tens of seconds (a 40 ms block would otherwise leave up to 45 ms).
        The patience window's lowest (highest) reading must clear the band, so jitter alone does
        not start a splice either way.
        """
        band = self.policy.tolerance_s * self.rate
        return band if self._winning_back else band + self.device_block

    def _after_splice(self, in_flight: float, change: int) -> None:
        # The readings so far were taken before this change: shift them, so a lasting excess
        # keeps being spliced out chunk after chunk instead of waiting out the patience again.
        # The level just stepped: the smoothed reading starts again from the readings after it.
        self._shift_readings(change)
        self._ema = None
        self._ema_count = 0

    def _shift_readings(self, change: int) -> None:
        self._errors = collections.deque((e + change for e in self._errors), maxlen=self.policy.patience_chunks)

    def _follow_recovery(self, now: float) -> None:
        """After a disturbance: once on target for `settle_s`, the delay is back (and said so if
        the listener heard a gap). On target: the recent readings (shifted by any splice since)
        straddle the target within the narrow band, and the disturbance has passed."""
        if not self._winning_back:
            return
        band = self._tolerance()
        # The cover must be down to what calm chunks need too, or the excess left when it falls
        # would be met by the wide band.
        on_target = min(self._errors) <= band and max(self._errors) >= -band and self._cover.settled(now)
        if not on_target:
            self._on_target_since = None
            return
        if self._on_target_since is None:
            self._on_target_since = now
        if now - self._on_target_since < self.policy.settle_s:
            return
        if self._behind_since is not None:
            removed = self.spliced_out + self.dropped_frames * FRAME_SIZE - self._removed_at_behind
            self.events.append(("recovered", f"delay back to normal after {self._behind_cause} "
                                             f"({removed * 1000 / self.rate:.0f} ms of audio skipped to win it back)"))
        self._behind_since = None
        self._on_target_since = None
        self._winning_back = False
