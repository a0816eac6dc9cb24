"""The private audio servers themselves (tests/pulse.py, tests/pipewire.py): what they offer and
that stop() leaves nothing running.

Each test starts its own server rather than using the session's `audio_server`, since it stops
it. Leftovers are looked for by environment, not by name: every process a server starts, and
anything those start in turn, carries the server's private XDG_RUNTIME_DIR.
"""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from app.config import SAMPLE_RATE_HZ
from conftest import AUDIO_SERVERS, REQUIRE_SERVERS_ENV

pytestmark = pytest.mark.pulse

RATE = SAMPLE_RATE_HZ


def start(kind: str):
    from pulse import PulseUnavailable, start_pulse_server

    try:
        if kind == "pulseaudio":
            return start_pulse_server()
        from pipewire import start_pipewire_server

        return start_pipewire_server()
    except PulseUnavailable as exc:
        if os.environ.get(REQUIRE_SERVERS_ENV) == "1":
            pytest.fail(f"no {kind} ({REQUIRE_SERVERS_ENV}=1): {exc}")
        pytest.skip(f"no {kind}: {exc}")


def processes_in(runtime_dir: Path) -> list[str]:
    """Command lines of live processes whose environment names this runtime dir."""
    marker = f"XDG_RUNTIME_DIR={runtime_dir}\0".encode()
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            if marker in (proc / "environ").read_bytes() and (proc / "stat").read_text().split()[2] != "Z":
                found.append((proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace"))
        except OSError:  # gone meanwhile, or not ours to read
            continue
    return found


@pytest.mark.parametrize("kind", AUDIO_SERVERS)
def test_server_offers_the_sinks_carries_audio_and_stops_clean(kind: str, tmp_path: Path) -> None:
    server = start(kind)
    runtime_dir = server.runtime_dir
    try:
        sources = server.pactl("list", "short", "sources").stdout
        for name in ("mic.monitor", "speaker.monitor"):
            assert f"\t{name}\t" in sources, sources
        info = server.pactl("info").stdout
        assert ("on PipeWire" in info) == (kind == "pipewire"), info
        assert processes_in(runtime_dir), "the server's processes should be visible while it runs"

        tone = 0.5 * np.sin(2 * np.pi * 440 * np.arange(RATE) / RATE).astype(np.float32)
        wav = tmp_path / "tone.wav"
        sf.write(wav, tone, RATE, subtype="FLOAT")
        recorder = server.start_recording_speaker()
        time.sleep(0.2)
        player = subprocess.Popen(["paplay", "--device=speaker", str(wav)], env=server.env)
        player.wait(timeout=10)
        time.sleep(0.3)
        recorded = recorder.stop()
        assert np.abs(recorded).max() > 0.3, "the tone played into `speaker` reaches speaker.monitor"
    finally:
        server.stop()
    deadline = time.monotonic() + 3  # a daemon that forked (pulseaudio -D) exits on its own time
    while (left := processes_in(runtime_dir)) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert left == [], f"left running after stop(): {left}"
    assert not runtime_dir.exists()
