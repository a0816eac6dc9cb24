"""The window keeps streaming when the audio server is killed and started again (issue 11).

The real MainWindow with the real Engine on real PortAudio, in a subprocess (tests/window_driver.py)
under a private audio server's environment, offscreen: PortAudio takes PULSE_SOURCE / PULSE_SINK
when it initialises, hence the subprocess. Once it streams the tone, the server is killed and
started again (PulseAudio, and PipeWire with pipewire-pulse); the window's stream reconnects by
itself, the banner says so and then that audio is back, the engine counts it, and the speaker plays
the tone again.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from app.audio.stream_watch import STALL_S
from app.config import FRAME_RATE_HZ
from conftest import model_dir

pytestmark = [pytest.mark.pulse, pytest.mark.slow, pytest.mark.flaky(reruns=1, reruns_delay=2)]

REPO = Path(__file__).resolve().parents[1]
DRIVER = Path(__file__).resolve().parent / "window_driver.py"
STREAM_S = 18.0  # how long the window streams: the restart, the reconnect and 3 s of the tone fit
START_TIMEOUT_S = 60.0
BACK_TIMEOUT_S = 20.0


class Driver:
    """tests/window_driver.py as a subprocess; its stderr lines are collected as they come."""

    def __init__(self, env: dict[str, str], settings: Path, seconds: float) -> None:
        command = [sys.executable, str(DRIVER), str(model_dir("tiny-8cb")), "--settings", str(settings),
                   "--seconds", str(seconds), "--source", "tone"]
        self.proc = subprocess.Popen(command, env={**env, "QT_QPA_PLATFORM": "offscreen"}, cwd=REPO,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.lines: list[str] = []
        self._changed = threading.Condition()
        self._reader = threading.Thread(target=self._read, name="driver-stderr", daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            with self._changed:
                self.lines.append(line.rstrip("\n"))
                self._changed.notify_all()

    @property
    def err(self) -> str:
        with self._changed:
            return "\n".join(self.lines)

    def wait_for(self, text: str, timeout_s: float) -> bool:
        """Whether a stderr line containing `text` came within `timeout_s` (False if the driver ended)."""
        deadline = time.monotonic() + timeout_s
        with self._changed:
            while not any(text in line for line in self.lines):
                left = deadline - time.monotonic()
                if left <= 0 or (self.proc.poll() is not None and not self._reader.is_alive()):
                    return False
                self._changed.wait(min(left, 0.2))
            return True

    def result(self, timeout_s: float) -> dict:
        assert self.proc.stdout is not None
        out = self.proc.stdout.read()
        self.proc.wait(timeout=timeout_s)
        self._reader.join(timeout=5)
        assert self.proc.returncode == 0, self.err
        return json.loads(out.strip().splitlines()[-1])

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def _rms(samples: np.ndarray) -> float:
    return float(np.sqrt(np.mean(samples ** 2))) if len(samples) else 0.0


def test_the_window_keeps_streaming_when_the_audio_server_restarts(own_audio_server, tmp_path) -> None:
    server = own_audio_server
    driver = Driver(server.env, tmp_path / "mimi-live.ini", STREAM_S)
    try:
        assert driver.wait_for("streaming", START_TIMEOUT_S), driver.err
        time.sleep(3)  # streaming for a while: the stream has settled
        assert driver.proc.poll() is None, driver.err
        server.restart(down_s=1.0)
        # The banner's info line comes after the engine's event, at the next pump (~20 ms).
        assert driver.wait_for("banner info: audio is back", BACK_TIMEOUT_S), driver.err
        time.sleep(1)
        played = server.record_speaker(3.0)
        result = driver.result(timeout_s=60)
    finally:
        driver.kill()
    err = driver.err
    banners = [tuple(item) for item in result["banners"]]
    summary = result["summary"]
    back = next((re.search(r"audio is back, after ([0-9.]+) s", text) for kind, text in banners
                 if kind == "info" and "audio is back" in text), None)
    gap_s = float(back.group(1)) if back else None
    print(f"\nthe window, after a {type(server).__name__} restart: gap {gap_s} s, reconnects "
          f"{result['reconnects']}, frames {summary.get('frames')}, rms {_rms(played):.3f}, "
          f"running {result['running']}\nbanners: {banners}")
    assert result["running"], err  # still streaming after the restart
    assert result["reconnects"] >= 1, err
    assert any(kind == "warning" and "reconnecting" in text for kind, text in banners), banners
    assert back is not None and gap_s is not None, banners  # ... and that audio is back
    assert "event info: audio is back" in err
    assert _rms(played) > 0.05  # the tone plays again after the restart
    # As in test_live_devices: up to STALL_S to see the stream is dead, then the gap; the rest streamed.
    assert summary["frames"] >= (STREAM_S - STALL_S - gap_s - 1.5) * FRAME_RATE_HZ, summary
