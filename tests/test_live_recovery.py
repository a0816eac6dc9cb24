"""After a disturbance the delay comes back: measured by chirps through a real audio server.

`mimi-live run --bypass` streams through a private PulseAudio daemon while a chirp every second
is played into a combine sink feeding the app's microphone and the speaker at once; one
recording of speaker.monitor gives the TRUE delay at each chirp (tests/chirps.py), independent of
the app's own estimate. Each test disturbs the running app and checks that, within 10 s of the
disturbance ending, the delay is back within 25 ms of where it was before (after a freeze:
within 5 s and 10 ms), and that the app said what happened.

The model is the tiny fixture unless MIMI_LIVE_TEST_MODEL names another (the full-size stand-in
for the numbers in the README).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from app.audio.classic_paths import CLASSIC_MARGIN_S
from chirp_session import ChirpSession, settled
from chirps import RATE
from conftest import model_dir

pytestmark = [pytest.mark.pulse, pytest.mark.slow, pytest.mark.flaky(reruns=1, reruns_delay=2)]

REPO = Path(__file__).resolve().parents[1]
RECOVERY_S = 10.0
TOLERANCE_MS = 25.0
# The timing trusts its warm-up estimate for its first 10 s of calm chunks: steady state after that.
STEADY_S = (11.0, 16.0)
DISTURB_AT_S = 17.0
SERVER_STALL_S = 0.5
DRIVER_LEAD_S = 3.3  # the driver starts streaming this long before the first chirp is recorded


def _model() -> str:
    return os.environ.get("MIMI_LIVE_TEST_MODEL") or str(model_dir("tiny-8cb"))


def _second_model() -> str:
    return os.environ.get("MIMI_LIVE_TEST_MODEL_B") or str(model_dir("tiny-16cb"))


def _assert_back(delays, disturbance_ended_s: float, within_s: float = RECOVERY_S,
                 tolerance_ms: float = TOLERANCE_MS) -> None:
    """Within `within_s` of the disturbance's end, the delay has settled where it was before."""
    steady = settled(delays, *STEADY_S)
    end = disturbance_ended_s + within_s
    after = settled(delays, end - 3, end + 1)
    assert abs(after - steady) < tolerance_ms, (steady, after, delays)


def _report(name: str, delays, summary: dict, metrics: Path | None = None) -> None:
    print(f"\n{name}: true delay per chirp (s, ms): {[(round(t, 1), d and round(d, 1)) for t, d in delays]}")
    keys = ('latency_ms', 'underruns', 'xruns', 'dropped_frames', 'skipped_ms', 'stretched_ms', 'timing')
    print(f"{name}: summary {json.dumps({k: summary.get(k) for k in keys})}")
    if metrics is not None and metrics.exists():  # the app's own view, a line a second: what a failure needs
        rows = [json.loads(line) for line in metrics.read_text().splitlines()][::12]
        timeline = [(round(r["session_s"]), round(r["target_ms"]),
                     round(r["queue_ms"] + r["encode_ms"] + r["decode_ms"] + r["output_buffer_ms"])) for r in rows]
        print(f"{name}: app (session s, target ms, in flight ms): {timeline}")


def test_delay_comes_back_after_the_process_is_frozen(pulse_server, tmp_path) -> None:
    session = ChirpSession(pulse_server, tmp_path, DISTURB_AT_S + 1.5 + RECOVERY_S + 3, _model())
    session.wait_until(DISTURB_AT_S)
    os.kill(session.app.pid, signal.SIGSTOP)  # the whole app, callbacks included, for 1.5 s
    time.sleep(1.5)
    os.kill(session.app.pid, signal.SIGCONT)
    delays, summary, err = session.finish()
    _report("freeze", delays, summary, session.metrics)
    # A freeze leaves nothing to cover: what is left of the pile-up is spliced away, and neither
    # the chunks that waited for it nor the callbacks catching up raise the target (a 16-27 ms
    # ratchet before). Measured: back within 3 ms of steady 2 s after.
    _assert_back(delays, DISTURB_AT_S + 1.5, within_s=5.0, tolerance_ms=10.0)
    assert summary["skipped_ms"] > 500  # the input the server kept during the freeze was dropped
    assert "dropped out" in err or summary["xruns"] > 0  # and the app said so


def test_delay_comes_back_after_the_audio_server_stalls(pulse_server, tmp_path) -> None:
    session = ChirpSession(pulse_server, tmp_path, DISTURB_AT_S + SERVER_STALL_S + RECOVERY_S + 3, _model())
    session.wait_until(DISTURB_AT_S)
    pulse_server.freeze(SERVER_STALL_S)  # both devices stall: no callbacks, no input, then a rush
    delays, summary, _ = session.finish()
    _report("server stall", delays, summary, session.metrics)
    # The callbacks that rush in afterwards are a burst, not the device's block size: covering
    # them, or the chunks that waited for the stall, would keep the delay up for good.
    _assert_back(delays, DISTURB_AT_S + SERVER_STALL_S)
    assert summary["dropouts"] > 0  # the gap was heard, and counted


def test_delay_comes_back_after_other_programs_take_both_cores(pulse_server, tmp_path) -> None:
    session = ChirpSession(pulse_server, tmp_path, DISTURB_AT_S + 15 + RECOVERY_S + 3, _model())
    session.wait_until(DISTURB_AT_S)
    busy = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(2)]
    try:
        time.sleep(15.0)
    finally:
        for process in busy:
            process.kill()
            process.wait()
    delays, summary, _ = session.finish()
    _report("cpu load", delays, summary, session.metrics)
    _assert_back(delays, DISTURB_AT_S + 15)


def test_delay_holds_through_a_switch_to_an_unprepared_model_and_a_codebook_switch(pulse_server, tmp_path) -> None:
    """The real engine (tests/live_driver.py, the window's API) switches to another model, never
    prepared in this data folder, then to 4 codebooks, while it streams. Each is judged from the
    moment it landed (the driver prints when), however long the preparation took."""
    env = {**pulse_server.env, "MIMI_LIVE_DATA_DIR": str(tmp_path / "fresh-data")}
    model_at = DISTURB_AT_S + DRIVER_LEAD_S
    command = [sys.executable, str(REPO / "tests" / "live_driver.py"), _model(), "--bypass", "--seconds", "300",
               "--model-at", str(model_at), _second_model(), "--codebooks-after-model", "4",
               "--settle", str(RECOVERY_S)]
    session = ChirpSession(pulse_server, tmp_path, seconds=300, command=command, env=env, until_exit=True)
    delays, summary, err = session.finish()
    _report("switches", delays, summary)
    landed = [float(line.split()[1]) - DRIVER_LEAD_S for line in err.splitlines() if line.startswith("landed ")]
    assert len(landed) == 2 and summary["codebooks"] == 4, err  # the model, then the codebooks
    steady = settled(delays, *STEADY_S)
    for when in landed:
        after = settled(delays, when + 2, when + RECOVERY_S)
        assert abs(after - steady) < TOLERANCE_MS, (steady, after, when, delays)


def test_the_classic_paths_turned_on_and_off_while_streaming_move_the_delay_by_their_look_ahead(
        pulse_server, tmp_path) -> None:
    """Codec2 and Opus turned on while streaming (Opus 12k asked for at once, then bypass again),
    then off: the delay grows by the paths' look-ahead and falls back, with no dropout. The engine
    is ready to replay, as the window's is, so the codecs' libraries were loaded at Start."""
    on, off = DISTURB_AT_S + DRIVER_LEAD_S, DISTURB_AT_S + 8 + DRIVER_LEAD_S
    command = [sys.executable, str(REPO / "tests" / "live_driver.py"), _model(), "--bypass", "--seconds",
               str(off + 12), "--classic-at", str(on), "--monitor-at", str(on), "opus-12k",
               "--monitor-at", str(on + 4), "bypass", "--classic-off-at", str(off)]
    session = ChirpSession(pulse_server, tmp_path, seconds=off + 12 - DRIVER_LEAD_S, command=command,
                           until_exit=True)
    delays, summary, err = session.finish()
    _report("classic on/off", delays, summary)
    extra_ms = (max(summary["classic_delay_samples"].values()) / RATE + CLASSIC_MARGIN_S) * 1000
    steady = settled(delays, *STEADY_S)
    grown = settled(delays, DISTURB_AT_S + 3, DISTURB_AT_S + 8)
    back = settled(delays, DISTURB_AT_S + 11, DISTURB_AT_S + 17)
    print(f"classic on/off: steady {steady:.1f} ms, with the paths {grown:.1f} ms "
          f"(look-ahead {extra_ms:.1f} ms), after {back:.1f} ms")
    assert abs(grown - steady - extra_ms) < TOLERANCE_MS, (steady, grown, delays)
    assert abs(back - steady) < TOLERANCE_MS, (steady, back, delays)
    assert summary["underruns"] == 0, err
