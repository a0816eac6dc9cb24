"""The app streaming in bypass through a private audio server while chirps play: the true delay
per chirp (tests/chirps.py), for the tests that disturb or reconfigure a live session.

`ChirpSession` runs `mimi-live run --bypass` (or a given command) with a chirp every second
played into a combine sink feeding the app's microphone and the speaker at once; one recording of
speaker.monitor gives the true delay at each chirp, independent of the app's own estimate.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import soundfile as sf

from chirps import RATE, chirp_train, delays_ms

REPO = Path(__file__).resolve().parents[1]
SPACING_S = 1.0


class ChirpSession:
    """The app streaming in bypass (`model`, `extra` arguments; or `command`), a chirp train playing,
    speaker.monitor recorded."""

    def __init__(self, server, tmp_path: Path, seconds: float, model: str | None = None, *extra: str,
                 command: list[str] | None = None, env: dict | None = None, until_exit: bool = False) -> None:
        self.until_exit = until_exit  # stop the chirps when the app exits (it decides when)
        loaded = server.pactl("load-module", "module-combine-sink", "sink_name=both", "slaves=mic,speaker")
        assert loaded.returncode == 0, loaded.stderr
        self.server, self.seconds = server, seconds
        signal_, _ = chirp_train(seconds, SPACING_S)
        self.wav = tmp_path / "chirps.wav"
        sf.write(str(self.wav), signal_, RATE)
        self.metrics = tmp_path / "metrics.jsonl"
        command = command or [sys.executable, "-m", "app", "run", "--model", str(model), "--bypass", "--json",
                              "--duration", str(seconds + 8), "--metrics-out", str(self.metrics), *extra]
        self.app = subprocess.Popen(command, env=env or server.env, cwd=REPO, stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE, text=True)
        self.stderr: list[str] = []
        pipe = self.app.stderr
        assert pipe is not None  # stderr=PIPE
        self._reader = threading.Thread(target=lambda: self.stderr.extend(pipe), daemon=True)
        self._reader.start()
        deadline = time.monotonic() + 60
        while not any("streaming" in line for line in self.stderr):  # the app says so once it streams
            assert self.app.poll() is None and time.monotonic() < deadline, "".join(self.stderr)
            time.sleep(0.1)
        time.sleep(3.0)  # past the first seconds, where the timing still trusts its warm-up estimate
        self.recorder = server.start_recording_speaker()
        time.sleep(0.3)
        self.started = time.monotonic()
        self.player = subprocess.Popen(["paplay", "--device=both", str(self.wav)], env=server.env)

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def wait_until(self, t: float) -> None:
        time.sleep(max(0.0, t - self.elapsed()))

    def finish(self) -> tuple[list[tuple[float, float | None]], dict, str]:
        if self.until_exit:
            self.app.wait(timeout=self.seconds + 30)
            self.player.terminate()
        self.player.wait(timeout=self.seconds + 30)
        assert self.app.stdout is not None  # stdout=PIPE
        out = self.app.stdout.read()
        self.app.wait(timeout=60)
        self._reader.join(timeout=10)
        recording = self.recorder.stop()
        err = "".join(self.stderr)
        assert self.app.returncode == 0, err
        return delays_ms(recording, SPACING_S), json.loads(out), err


def settled(delays, start: float, end: float) -> float:
    """The delay the path has settled at between `start` and `end` s: the lower quartile of the
    chirps' delays, so a passing spike of a noisy machine does not count, but a delay that stays
    up (a ratchet) does."""
    values = [d for t, d in delays if start <= t < end and d is not None]
    assert len(values) >= 0.6 * (end - start) / SPACING_S, (
        f"too few chirps came back between {start} and {end} s: {delays}")
    return float(np.percentile(values, 25))
