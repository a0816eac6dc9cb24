"""A private PipeWire server with two null sinks, for tests that need real audio (test thread).

    server = start_pipewire_server()   # or the `audio_server` fixture's "pipewire" param
    subprocess.Popen([...app...], env=server.env)   # exactly as with tests/pulse.py

The same surface as tests/pulse.py's PulseServer (it is a subclass: `env`, `pactl`,
`play_into_mic`, `start_recording_speaker`, `record_speaker`, `stop`), so a test runs unchanged on
either server. What runs: a session bus (`dbus-daemon`, private, no service activation),
`pipewire`, `wireplumber` (the session manager: links streams to sinks) and `pipewire-pulse`
(the PulseAudio protocol), all children of this process, under their own XDG_RUNTIME_DIR.

How the app reaches it: PortAudio has no PipeWire host API, so it goes through ALSA's `pulse`
device (libasound2-plugins) into pipewire-pulse, and PULSE_SOURCE / PULSE_SINK pick the null
sinks exactly as with PulseAudio. Debian's ALSA `pipewire` plugin (pipewire-alsa) Conflicts with
the `pulseaudio` package, so one machine cannot test both servers that way.

Found on Debian 12 (PipeWire 0.3.65, WirePlumber 0.4.13): all three run headless as root without
complaint (no PIPEWIRE_RUNTIME_DIR needed, it is set anyway so an outer one cannot leak in), and
their data threads get SCHED_FIFO (module-rt, as root) where PulseAudio only gets nice -11, so
under CPU load PipeWire keeps its deadlines and a late client underruns instead of the whole
server slowing down. wireplumber runs without a session bus too but logs errors, so it gets one.
The graph runs at 48 kHz with a 256-sample quantum (set by the keep-alive streams); PortAudio's
callbacks come in bursts per quantum (60, 60, 8 frames at 24 kHz) where PulseAudio gives a steady
60 every 2.5 ms.
The daemons get their own XDG_CONFIG_HOME / XDG_STATE_HOME: a user's pipewire or wireplumber
overrides must not change the test's quantum, and wireplumber saves stream state there.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import time
from pathlib import Path

from app.errors import one_line
from pulse import PulseServer, PulseUnavailable, start_server

__all__ = ["PipeWireServer", "PipeWireUnavailable", "start_pipewire_server"]

TOOLS = ("dbus-daemon", "pipewire", "wireplumber", "pipewire-pulse", "pactl", "paplay", "parec", "pacat")
PACKAGES = "pipewire wireplumber pipewire-pulse dbus pulseaudio-utils"
START_TIMEOUT_S = 10.0
STOP_TIMEOUT_S = 3.0
# One driver for both sinks. Apart, each null sink drives itself, and a stream that reaches both
# (the latency test's combine sink) makes PipeWire move one under the other's driver when it
# starts and back when it ends; the app's streams underran at each move (1-3 per run).
NODE_GROUP = "mimi-live-test"

# A session bus that only this server uses: no service activation, so nothing else gets spawned
# (module-portal and wireplumber ask for names that would otherwise activate portals or dconf).
DBUS_CONFIG = """<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:dir={dir}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>
"""


class PipeWireUnavailable(PulseUnavailable):
    """The private server cannot be started here; the message says why."""


class PipeWireServer(PulseServer):
    """A running private PipeWire; stop() ends every process it started."""

    def __init__(self, runtime_dir: Path) -> None:
        super().__init__(runtime_dir)
        # Point every client at this server only, whatever the outer session runs.
        for name in ("PIPEWIRE_REMOTE", "PULSE_RUNTIME_PATH", "DBUS_SESSION_BUS_ADDRESS"):
            self.env.pop(name, None)
        self.env["PIPEWIRE_RUNTIME_DIR"] = str(runtime_dir)
        self.version = ""
        self._daemons: list[subprocess.Popen[bytes]] = []

    # -- lifecycle ------------------------------------------------------------------------------

    def _spawn(self, name: str, *args: str, env: dict[str, str]) -> subprocess.Popen[bytes]:
        # Appended to: after a restart the log still shows how the first run ended.
        with open(self.runtime_dir / f"{name}.log", "ab") as log:
            try:
                proc = subprocess.Popen([name, *args], env=env, stdin=subprocess.DEVNULL, stdout=log,
                                        stderr=subprocess.STDOUT)
            except OSError as exc:
                raise PipeWireUnavailable(f"{name} did not start ({exc})") from exc
        self._daemons.append(proc)
        return proc

    def _log_tail(self, name: str) -> str:
        try:
            text = (self.runtime_dir / f"{name}.log").read_text(errors="replace")
        except OSError:
            return ""
        return one_line(text)[-300:]

    def _wait_for(self, what: str, ready, proc: subprocess.Popen[bytes], name: str) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        while not ready():
            if proc.poll() is not None:
                raise PipeWireUnavailable(f"{name} exited with {proc.returncode}: {self._log_tail(name)}")
            if time.monotonic() > deadline:
                raise PipeWireUnavailable(f"{what} not ready after {START_TIMEOUT_S:.0f} s: {self._log_tail(name)}")
            time.sleep(0.05)

    def _start_bus(self) -> str:
        bus_dir = self.runtime_dir / "bus"
        bus_dir.mkdir()
        config = self.runtime_dir / "dbus.conf"
        config.write_text(DBUS_CONFIG.format(dir=bus_dir))
        address_file = self.runtime_dir / "dbus.address"
        with open(address_file, "wb") as out:
            proc = subprocess.Popen(
                ["dbus-daemon", "--nofork", "--nopidfile", f"--config-file={config}", "--print-address=1"],
                env=self.env, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.DEVNULL)
        self._daemons.append(proc)
        self._wait_for("session bus", lambda: address_file.read_text().strip() != "", proc, "dbus-daemon")
        return address_file.read_text().strip().splitlines()[0]

    def _start(self) -> None:
        self.env["DBUS_SESSION_BUS_ADDRESS"] = self._start_bus()
        self._start_daemons()

    def _start_daemons(self) -> None:
        """pipewire, wireplumber and pipewire-pulse on the running bus, then the null sinks."""
        daemon_env = {**self.env,
                      "XDG_CONFIG_HOME": str(self.runtime_dir / "config"),
                      "XDG_STATE_HOME": str(self.runtime_dir / "state")}
        pipewire = self._spawn("pipewire", env=daemon_env)
        socket = self.runtime_dir / "pipewire-0"
        self._wait_for("pipewire socket", socket.exists, pipewire, "pipewire")
        self._spawn("wireplumber", env=daemon_env)
        pulse = self._spawn("pipewire-pulse", env=daemon_env)

        def answers() -> bool:
            try:
                info = self.pactl("info", timeout=2)
            except subprocess.TimeoutExpired:
                return False
            found = re.search(r"on PipeWire ([\w.]+)", info.stdout)
            if found:
                self.version = found.group(1)
            return info.returncode == 0

        self._wait_for("pipewire-pulse (`pactl info`)", answers, pulse, "pipewire-pulse")
        for name in ("mic", "speaker"):
            loaded = self.pactl("load-module", "module-null-sink", f"sink_name={name}",
                                f"sink_properties=node.group={NODE_GROUP}")
            if loaded.returncode != 0:
                raise PipeWireUnavailable(f"null sink {name!r} not created: {loaded.stderr.strip()}")
        # The sinks appear a moment after load-module returns (wireplumber has to see them).
        self._wait_for("null sinks", self._sinks_ready, pulse, "pipewire-pulse")
        # Same reason as PulseAudio: wireplumber suspends idle nodes, and a stream opened on a
        # suspended one waits for it to wake; the silent streams also fix a small graph quantum.
        self._keep_sinks_awake()

    def _sinks_ready(self) -> bool:
        sinks = self.pactl("list", "short", "sinks").stdout
        sources = self.pactl("list", "short", "sources").stdout
        return all(re.search(rf"^\d+\s+{re.escape(name)}\s", text, re.M)
                   for name, text in (("mic", sinks), ("speaker", sinks),
                                      ("mic.monitor", sources), ("speaker.monitor", sources)))

    def restart(self, down_s: float = 1.0) -> None:
        """Kills pipewire-pulse, wireplumber and pipewire (SIGKILL, as a crash would: clients lose
        their streams), waits `down_s`, and starts the three again in the same runtime folder on
        the same session bus, with the same sinks (PulseServer.restart's contract).

        The bus stays: it is the session's, not the audio server's. pipewire's socket file stays
        behind a SIGKILL, so it is removed first: the start waits for it to appear again."""
        for name in ("pipewire-pulse", "wireplumber", "pipewire"):
            for proc in self._daemon_procs(name):
                proc.kill()
                try:
                    proc.wait(timeout=5)
                except subprocess.TimeoutExpired as exc:
                    raise PipeWireUnavailable(f"{name} (pid {proc.pid}) survived SIGKILL for 5 s") from exc
                self._daemons.remove(proc)
        for proc in self._helpers:  # the keep-alive streams lost their server: gone with it
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        self._helpers.clear()
        for stale in ("pipewire-0", "pipewire-0.lock", "pipewire-0-manager", "pipewire-0-manager.lock"):
            (self.runtime_dir / stale).unlink(missing_ok=True)
        time.sleep(down_s)
        self._start_daemons()

    def _daemon_procs(self, name: str) -> list[subprocess.Popen[bytes]]:
        return [proc for proc in self._daemons if isinstance(proc.args, list) and proc.args[0] == name]

    def stop(self) -> None:
        # Clients first (players, recorders, keep-alive), then the daemons in reverse order.
        for proc in [*self._helpers, *reversed(self._daemons)]:
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=STOP_TIMEOUT_S)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
        self._helpers.clear()
        self._daemons.clear()
        shutil.rmtree(self.runtime_dir, ignore_errors=True)

    @property
    def pids(self) -> list[int]:
        """The daemons' process ids (tests check that stop() leaves none behind)."""
        return [proc.pid for proc in self._daemons]


def start_pipewire_server() -> PipeWireServer:
    """Start a private PipeWire, or raise PipeWireUnavailable saying why not."""
    return start_server(PipeWireServer, TOOLS, PipeWireUnavailable, f"the Debian packages {PACKAGES}",
                        "mimi-pipewire-")
