"""Devices that come and go while `mimi-live run` streams through a real audio server.

The audio server (PulseAudio, and PipeWire with pipewire-pulse) is killed and started again
mid-run (as a crash or an update does), and the sink the app plays into is removed mid-run
(PulseAudio): the app reconnects by itself, says so, counts it, and the speaker plays again.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from app.audio.stream_watch import STALL_S
from app.config import FRAME_RATE_HZ, SAMPLE_RATE_HZ
from conftest import model_dir

pytestmark = [pytest.mark.pulse, pytest.mark.slow, pytest.mark.flaky(reruns=1, reruns_delay=2)]

REPO = Path(__file__).resolve().parents[1]


def _run(env: dict, seconds: float, *extra: str) -> subprocess.Popen:
    command = [sys.executable, "-m", "app", "run", "--model", str(model_dir("tiny-8cb")), "--tone", "440",
               "--duration", str(seconds), "--json", *extra]
    return subprocess.Popen(command, env=env, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _rms(samples: np.ndarray) -> float:
    return float(np.sqrt(np.mean(samples ** 2))) if len(samples) else 0.0


def test_streaming_survives_the_audio_server_restarting(own_audio_server) -> None:
    pulse_server = own_audio_server
    app = _run(pulse_server.env, 16)
    time.sleep(5)
    assert app.poll() is None, app.communicate()
    pulse_server.restart(down_s=1.0)
    time.sleep(4)  # reconnected by now
    played = pulse_server.record_speaker(3.0)
    out, err = app.communicate(timeout=60)
    assert app.returncode == 0, err
    summary = json.loads(out)
    shown = {k: summary.get(k) for k in ('reconnects', 'frames', 'stop_reason')}
    print(f"\nafter a {type(pulse_server).__name__} restart: {err.strip()[-600:]}\n{shown}")
    assert summary["reconnects"] >= 1 and summary["stop_reason"] == "duration reached"
    assert "reconnecting" in err and "audio is back" in err
    assert _rms(played) > 0.05  # the tone plays again after the restart
    # The gap: up to STALL_S to see the stream is dead, then the server's downtime and start (what
    # "audio is back, after X s" says); plus 1.5 s for the start of the run. The rest streamed.
    back = re.search(r"audio is back, after ([0-9.]+) s", err)
    assert back is not None, err
    gap_s = float(back.group(1))
    assert summary["frames"] >= (16 - STALL_S - gap_s - 1.5) * FRAME_RATE_HZ


def test_a_sink_removed_mid_run_moves_the_output_to_the_default(own_pulse_server) -> None:
    pulse_server = own_pulse_server
    # The app follows the server's default sink (no PULSE_SINK), which is `speaker` until it goes.
    env = {k: v for k, v in pulse_server.env.items() if k != "PULSE_SINK"}
    assert pulse_server.pactl("set-default-sink", "speaker").returncode == 0
    assert pulse_server.pactl("load-module", "module-null-sink", "sink_name=other").returncode == 0
    app = _run(env, 12)
    time.sleep(4)
    assert app.poll() is None, app.communicate()
    speaker = [line.split()[0] for line in pulse_server.pactl("list", "short", "modules").stdout.splitlines()
               if "sink_name=speaker" in line]
    assert pulse_server.pactl("set-default-sink", "other").returncode == 0
    assert pulse_server.pactl("unload-module", speaker[0]).returncode == 0  # the app's sink is gone
    time.sleep(3)
    played = _record(pulse_server, "other.monitor", 2.0)
    out, err = app.communicate(timeout=60)
    assert app.returncode == 0, err
    summary = json.loads(out)
    shown = {k: summary.get(k) for k in ('reconnects', 'frames')}
    print(f"\nafter the sink went: {err.strip()[-600:]}\n{shown} rms {_rms(played)}")
    # PulseAudio moves the stream to the new default itself (the app reconnects if it cannot).
    assert summary["stop_reason"] == "duration reached" and summary["frames"] >= 0.9 * 12 * 12.5
    assert _rms(played) > 0.05  # the tone now plays on the default sink


def _record(server, source: str, seconds: float) -> np.ndarray:
    proc = subprocess.Popen(["parec", f"--device={source}", "--format=float32le", f"--rate={SAMPLE_RATE_HZ}",
                             "--channels=1", "--raw", "--latency-msec=20"], env=server.env, stdout=subprocess.PIPE)
    time.sleep(seconds)
    proc.terminate()
    raw = proc.communicate(timeout=5)[0]
    return np.frombuffer(raw[: len(raw) // 4 * 4], dtype="<f4")
