"""The stream watch: which streams are dead (no callbacks, every call failing, a runaway pace) and
which are only having a hard time (CPU load flags some calls, a stall delays them)."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from app.audio.stream_watch import STALL_S, StreamWatch

RATE = 48_000
BLOCK = 480  # 10 ms callbacks


@dataclass
class Counters:
    output_frames: int = 0
    output_callbacks: int = 0
    output_xruns: int = 0


def play(watch: StreamWatch, counters: Counters, now: float, seconds: float, flagged_share: float = 0.0,
         pace: float = 1.0, step_s: float = 0.08) -> tuple[float, str | None]:
    """Advances the device `seconds` (callbacks at `pace` times the rate), asking the watch every
    `step_s` as the worker does per chunk; returns the time and the first reason given."""
    calls_per_step = round(step_s * RATE / BLOCK * pace)
    debt = 0.0
    for _ in range(round(seconds / step_s)):
        for _ in range(calls_per_step):
            counters.output_frames += BLOCK
            counters.output_callbacks += 1
            debt += flagged_share
            if debt >= 1:
                counters.output_xruns += 1
                debt -= 1
        now += step_s
        reason = watch.dead(counters, RATE, now)
        if reason:
            return now, reason
    return now, None


def test_a_healthy_stream_and_one_under_load_are_alive() -> None:
    watch, counters = StreamWatch(), Counters()
    now, reason = play(watch, counters, 0.0, 20.0)
    assert reason is None
    _, reason = play(watch, counters, now, 20.0, flagged_share=0.5)  # half the calls late: CPU load
    assert reason is None


def test_no_callbacks_for_two_seconds_is_dead() -> None:
    watch, counters = StreamWatch(), Counters()
    now, _ = play(watch, counters, 0.0, 5.0)
    assert watch.dead(counters, RATE, now + STALL_S * 0.9) is None
    assert "stopped asking" in (watch.dead(counters, RATE, now + STALL_S * 1.1) or "")


def test_every_call_failing_is_dead_within_two_windows() -> None:
    watch, counters = StreamWatch(), Counters()
    now, _ = play(watch, counters, 0.0, 5.0)
    then, reason = play(watch, counters, now, 10.0, flagged_share=1.0)
    assert reason is not None and "failed every call" in reason
    assert then - now <= 2 * STALL_S + 0.1


@pytest.mark.parametrize(("pace", "dead"), [(1.2, False), (2.0, True)])
def test_a_runaway_pace_is_dead_a_fast_one_is_not(pace: float, dead: bool) -> None:
    watch, counters = StreamWatch(), Counters()
    now, _ = play(watch, counters, 0.0, 3.0)
    _, reason = play(watch, counters, now, 10.0, pace=pace)
    assert (reason is not None and "faster" in reason) == dead


def test_new_streams_start_a_fresh_watch() -> None:
    watch, counters = StreamWatch(), Counters()
    now, _ = play(watch, counters, 0.0, 3.0, flagged_share=1.0)
    watch.restart()
    fresh = Counters()  # the reopened streams count from zero
    _, reason = play(watch, fresh, now, 10.0)
    assert reason is None
