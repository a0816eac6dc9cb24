"""The timing controller's constants, in one frozen dataclass (see timing.py and timing_cover.py).

Apart from the controller so that its parts (the cover memory, timing_cover.py) read the same
constants without importing the controller back. Plain data: made by whoever starts the engine
(tests pass their own), read by the worker thread.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class TimingPolicy:
    """The controller's constants (seconds unless named otherwise)."""

    margin_s: float = 0.004  # beyond the longest wait: the worker's poll and scheduling slop
    # The device block the target covers is at least this long: servers such as PipeWire run in
    # quanta (256-1024 samples at 48 kHz) and call the app in bursts of small blocks within one.
    min_device_block_s: float = 0.010
    calm_memory_s: float = 120.0  # how long a calm chunk's wait stays covered
    calm_block_s: float = 2.0  # granularity of that memory (one maximum per block)
    single_memory_s: float = 20.0  # ... but a wait seen in one block only stays covered this long
    recent_memory_s: float = 3.0  # how long any chunk's wait stays covered (the hysteresis)
    trust_s: float = 10.0  # calm history needed before the warm-up estimate is let go
    # The cover never goes below this: a light model's waits are tiny, but the machine still
    # stalls a process for a few tens of ms now and then (scheduling, page faults, the server).
    min_cover_s: float = 0.040
    # The most a disturbance may raise the cover, in chunks: a chunk that waits longer than this
    # means the worker cannot keep up at all, and more delay would only add to what is dropped.
    cover_cap_chunks: float = 1.5
    median_chunks: int = 750  # calm waits the usual wait is the median of (~60 s of 80 ms chunks)
    elevated_ratio: float = 0.5  # elevated: wait > usual * (1 + ratio) + elevated_min_s
    elevated_min_s: float = 0.010
    # A stall, not jitter: a wait longer than this many chunks (the worker was far slower than
    # real time). Shorter spikes are jitter this machine has, and covered for calm_memory_s.
    stall_chunks: float = 2.0
    catch_up_slack_s: float = 0.010  # input beyond one block behind a chunk: it is catching up
    episode_window: int = 6  # chunks looked at together ...
    episode_elevated: int = 3  # ... and how many of them elevated make a disturbance
    tolerance_s: float = 0.005  # in flight may sit this far (plus an output block) off target before a splice
    patience_chunks: int = 3  # ... for this many chunks in a row
    max_shrink_share: float = 0.25  # of a chunk spliced out at once (20 ms of an 80 ms chunk)
    max_grow_share: float = 0.125  # of a chunk spliced in at once
    crossfade_s: float = 0.005
    drift_max_ppm: float = 2000.0  # resampling never goes further: far below anything audible
    drift_gain: float = 1 / 125  # fraction of the smoothed error corrected per chunk...
    drift_integral_gain: float = 1 / 40_000  # ...plus its running sum, so a steady drift leaves no offset
    drift_smoothing: float = 0.02  # EMA weight of the newest in-flight reading (~4 s at 80 ms)
    smoothed_tolerance_s: float = 0.008  # the smoothed reading may sit this far off target before a splice
    smoothed_min_chunks: int = 25  # ... once it averages this many readings (2 s)
    settle_s: float = 1.0  # on target this long after a disturbance: the delay is back
    event_interval_s: float = 5.0  # at most one "fell behind" message per this long
