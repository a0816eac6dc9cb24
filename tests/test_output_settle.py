"""OutputSettle on its own: when has a freshly started output stream stopped rushing?"""

from __future__ import annotations

from app.audio.output_settle import SETTLE_S, SETTLE_TIMEOUT_S, OutputSettle

RATE = 48_000
CLEAN = round(SETTLE_S * RATE)


def test_a_quiet_start_settles_once_the_stream_has_played_a_little() -> None:
    settle = OutputSettle(RATE)
    assert not settle.settled(0.0, flagged=0, frames=0)  # nothing played yet
    assert not settle.settled(0.01, flagged=0, frames=CLEAN - 1)
    assert settle.settled(0.03, flagged=0, frames=CLEAN)
    assert settle.settled_after_s == 0.03


def test_a_rush_is_waited_out_and_each_new_flag_starts_the_count_again() -> None:
    settle = OutputSettle(RATE)
    frames = 0
    for flagged in range(1, 200):  # ~1 ms apart, 5 ms of audio each, every one flagged
        frames += 240
        assert not settle.settled(flagged * 0.001, flagged, frames)
    assert not settle.settled(0.25, 199, frames + CLEAN - 1)
    assert not settle.settled(0.26, 200, frames + CLEAN)  # one more flag: counted from here
    assert settle.settled(0.29, 200, frames + 2 * CLEAN)
    assert settle.flags_seen == 200


def test_a_device_that_never_stops_flagging_starts_anyway_after_the_timeout() -> None:
    settle = OutputSettle(RATE)
    assert not settle.settled(5.0, flagged=1, frames=100)
    assert not settle.settled(5.0 + SETTLE_TIMEOUT_S - 0.01, flagged=500, frames=10**6)
    assert settle.settled(5.0 + SETTLE_TIMEOUT_S, flagged=501, frames=10**6 + 100)
    assert settle.settled(9.0, flagged=900, frames=0)  # settled once: it stays settled
