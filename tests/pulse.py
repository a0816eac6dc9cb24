"""A private PulseAudio daemon with two null sinks, for tests that need real audio (test thread).

    server = start_pulse_server()   # or the `pulse_server` fixture in conftest.py
    subprocess.Popen([...app...], env=server.env)   # the app records `mic`, plays into `speaker`
    player = server.play_into_mic("tone.wav")       # what the app's microphone hears
    recorder = server.start_recording_speaker()     # what the app plays
    ...
    played = recorder.stop()                        # float32 mono at 24 kHz

Sinks: `mic` (its monitor `mic.monitor` is the app's input) and `speaker` (the app's output; the
test listens on `speaker.monitor`). `env` is a full environment for subprocesses with
XDG_RUNTIME_DIR, PULSE_SOURCE and PULSE_SINK set: PulseAudio picks the source and sink per process
from these, so they must be in place before PortAudio initialises, hence a subprocess.

Why the keep-alive streams: an idle null sink sleeps with a 2 s latency, and a client that connects
then waits up to 2 s for its first callback (seen here with parec and with PortAudio alike). Two
silent low-latency `pacat` streams keep both sinks awake, so streams start in ~0.1 s; they add
zeros, so they do not change what is recorded.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np

from app.config import SAMPLE_RATE_HZ
from app.errors import one_line

__all__ = [
    "PulseServer",
    "PulseUnavailable",
    "SpeakerRecorder",
    "RECORD_RATE_HZ",
    "start_pulse_server",
]

RECORD_RATE_HZ = SAMPLE_RATE_HZ
TOOLS = ("pulseaudio", "pactl", "paplay", "parec", "pacat")
KEEPALIVE_LATENCY_MS = 30
START_TIMEOUT_S = 10.0
SETTLE_TIMEOUT_S = 5.0


class PulseUnavailable(RuntimeError):
    """The private daemon cannot be started here; the message says why."""


class SpeakerRecorder:
    """`parec` on speaker.monitor, raw float32 mono to a file; stop() returns the samples."""

    def __init__(self, server: PulseServer, path: Path, rate_hz: int = RECORD_RATE_HZ) -> None:
        self.path = path
        self.rate_hz = rate_hz
        self._file = open(path, "wb")  # noqa: SIM115 - parec writes it until stop() closes it
        self._proc = subprocess.Popen(
            ["parec", "--device=speaker.monitor", "--format=float32le", f"--rate={rate_hz}",
             "--channels=1", "--raw", "--latency-msec=20"],
            stdout=self._file, stderr=subprocess.DEVNULL, env=server.env,
        )

    def stop(self) -> np.ndarray:
        if self._proc.poll() is None:
            self._proc.send_signal(signal.SIGINT)
            try:
                self._proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        self._file.close()
        raw = self.path.read_bytes()
        return np.frombuffer(raw[: len(raw) // 4 * 4], dtype="<f4").astype(np.float32)


class PulseServer:
    """A running private daemon; stop() kills it. See the module docstring."""

    def __init__(self, runtime_dir: Path) -> None:
        self.runtime_dir = runtime_dir
        self.env: dict[str, str] = {
            **os.environ,
            "XDG_RUNTIME_DIR": str(runtime_dir),
            "PULSE_SOURCE": "mic.monitor",
            "PULSE_SINK": "speaker",
        }
        # PULSE_SERVER from the outer environment would point clients at another daemon.
        self.env.pop("PULSE_SERVER", None)
        # No autospawn: a client that finds the daemon gone (a test killed it) would otherwise start
        # a default one of its own, without our sinks, racing the test's restart.
        client_conf = runtime_dir / "client.conf"
        client_conf.write_text("autospawn = no\n")
        self.env["PULSE_CLIENTCONFIG"] = str(client_conf)
        self._helpers: list[subprocess.Popen[bytes]] = []
        self._recorders = 0

    # -- helpers for tests ----------------------------------------------------------------------

    def pactl(self, *args: str, timeout: float = 5.0) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["pactl", *args], env=self.env, capture_output=True, text=True,
                              timeout=timeout)

    def play_into_mic(self, wav_path: str | os.PathLike[str]) -> subprocess.Popen[bytes]:
        """Start `paplay --device=mic` (async); wait() on the result to know it finished."""
        proc = subprocess.Popen(["paplay", "--device=mic", str(wav_path)], env=self.env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        self._helpers.append(proc)
        return proc

    def start_recording_speaker(self, path: str | os.PathLike[str] | None = None,
                                rate_hz: int = RECORD_RATE_HZ) -> SpeakerRecorder:
        if path is None:
            self._recorders += 1
            path = self.runtime_dir / f"speaker-{self._recorders}.f32"
        return SpeakerRecorder(self, Path(path), rate_hz)

    def record_speaker(self, seconds: float, rate_hz: int = RECORD_RATE_HZ) -> np.ndarray:
        """Record speaker.monitor for `seconds` (blocking)."""
        recorder = self.start_recording_speaker(rate_hz=rate_hz)
        time.sleep(seconds)
        return recorder.stop()

    # -- lifecycle ------------------------------------------------------------------------------

    def _start(self) -> None:
        try:
            result = subprocess.run(
                ["pulseaudio", "-D", "--system=false", "--exit-idle-time=-1", "--disallow-exit",
                 "-n", "--load=module-native-protocol-unix",
                 "--load=module-null-sink sink_name=mic",
                 "--load=module-null-sink sink_name=speaker"],
                env=self.env, capture_output=True, text=True, timeout=START_TIMEOUT_S,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise PulseUnavailable(f"pulseaudio did not start ({exc})") from exc
        if result.returncode != 0:
            detail = one_line(result.stderr or result.stdout)[-300:]
            raise PulseUnavailable(f"pulseaudio exited with {result.returncode}: {detail}")
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            try:
                if self.pactl("info", timeout=2).returncode == 0:
                    break
            except subprocess.TimeoutExpired:
                pass
            if time.monotonic() > deadline:
                raise PulseUnavailable("pulseaudio started but `pactl info` never answered")
            time.sleep(0.05)
        sinks = self.pactl("list", "short", "sinks").stdout
        for name in ("mic", "speaker"):
            if not re.search(rf"\b{name}\b", sinks):
                raise PulseUnavailable(f"null sink {name!r} missing: {one_line(sinks)}")
        self._keep_sinks_awake()

    def _keep_sinks_awake(self) -> None:
        for sink in ("mic", "speaker"):
            self._helpers.append(subprocess.Popen(
                ["pacat", "--playback", "--raw", "--format=float32le", f"--rate={SAMPLE_RATE_HZ}",
                 "--channels=1", f"--latency-msec={KEEPALIVE_LATENCY_MS}", f"--device={sink}",
                 "/dev/zero"],
                env=self.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            ))
        # Wait for the sinks' pending 2 s idle sleep to end (their latency drops to a few ms).
        deadline = time.monotonic() + SETTLE_TIMEOUT_S
        while time.monotonic() < deadline:
            latencies = [int(v) for v in re.findall(r"^\s*Latency: (\d+) usec",
                                                    self.pactl("list", "sinks").stdout, re.M)]
            if len(latencies) >= 2 and max(latencies) < 200_000:
                return
            time.sleep(0.1)

    @property
    def _pid_file(self) -> Path:
        return self.runtime_dir / "pulse" / "pid"

    @property
    def daemon_pid(self) -> int:
        """The daemon we started, by its own pid file."""
        return int(self._pid_file.read_text().split()[0])

    def freeze(self, seconds: float) -> None:
        """Stops the daemon for `seconds` (SIGSTOP, then SIGCONT): every device stalls at once, as
        when the audio server is starved or stuck; clients keep their streams."""
        pid = self.daemon_pid
        os.kill(pid, signal.SIGSTOP)
        try:
            time.sleep(seconds)
        finally:
            os.kill(pid, signal.SIGCONT)

    def restart(self, down_s: float = 1.0) -> None:
        """Kills the daemon (SIGKILL, as a crash would: clients lose their streams), waits
        `down_s`, and starts it again with the same sinks in the same runtime folder.

        `pulseaudio --kill` only asks: on a loaded machine the daemon may still be serving
        seconds later, and a test would then see no restart at all."""
        pid = self.daemon_pid
        os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 5
        while _alive(pid):
            if time.monotonic() > deadline:
                raise PulseUnavailable(f"pulseaudio (pid {pid}) survived SIGKILL for 5 s")
            time.sleep(0.02)
        self._pid_file.unlink(missing_ok=True)
        time.sleep(down_s)
        self._start()

    def stop(self) -> None:
        for proc in self._helpers:
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=3)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
        self._helpers.clear()
        pid = None
        try:
            pid = self.daemon_pid
        except (OSError, ValueError, IndexError):
            pass
        try:
            subprocess.run(["pulseaudio", "--kill"], env=self.env, capture_output=True, timeout=5)
        except (OSError, subprocess.TimeoutExpired):
            pass
        if pid is not None:  # the daemon we started, by its own pid file
            deadline = time.monotonic() + 3
            while _alive(pid) and time.monotonic() < deadline:
                time.sleep(0.05)
            if _alive(pid):
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass
        shutil.rmtree(self.runtime_dir, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    return True


def start_server(server_class: type, tools: tuple[str, ...], unavailable: type[Exception], install_hint: str,
                 prefix: str):
    """Starts a private server of `server_class` in a fresh runtime folder, or raises `unavailable`."""
    missing = [tool for tool in tools if shutil.which(tool) is None]
    if missing:
        raise unavailable(f"{', '.join(missing)} not found; install {install_hint}")
    runtime_dir = Path(tempfile.mkdtemp(prefix=prefix))
    os.chmod(runtime_dir, 0o700)
    server = server_class(runtime_dir)
    try:
        server._start()
    except BaseException:
        server.stop()
        raise
    return server


def start_pulse_server() -> PulseServer:
    """Start a private daemon, or raise PulseUnavailable saying why not."""
    return start_server(PulseServer, TOOLS, PulseUnavailable, "the Debian package `pulseaudio`", "mimi-pulse-")
