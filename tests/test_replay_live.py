"""The instant replay through a real audio server, streaming and after Stop (tests/live_driver.py
runs the real engine on real PortAudio, as the window does; PulseAudio and PipeWire).

Speech is played into the `mic` sink while the engine streams; a replay is asked for while it
streams (it plays in place of the monitor: the stream must not drop out) and again after Stop (it
plays on an output stream of its own: every path must be heard, one after another).
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time

import pytest

from app.audio.replay import GAP_S
from conftest import model_dir
from test_compare_play import SPEECH, bursts
from test_live_pulse import REPO, server_name

pytestmark = [pytest.mark.pulse, pytest.mark.flaky(reruns=1, reruns_delay=2)]

REPLAY_SECONDS = 2.0
CLIPS = 5  # original, Mimi 8, Mimi 4, Codec2 1200, Opus 6k
TIMEOUT_S = 120


def talk(server, talking: threading.Event) -> None:
    """Speech into the microphone, over and over, while `talking` is set: the tape always holds some."""
    while talking.is_set():
        server.play_into_mic(SPEECH).wait(timeout=30)


def replay_messages(lines: list[str]) -> list[str]:
    return [line.removeprefix("replay: ") for line in lines if line.startswith("replay: ")]


def test_a_replay_streaming_and_after_stop_plays_every_path_without_a_dropout(audio_server) -> None:
    command = [sys.executable, str(REPO / "tests" / "live_driver.py"), str(model_dir("tiny-8cb")),
               "--seconds", "4", "--replay-at", "3", "--replay-seconds", str(REPLAY_SECONDS), "--replay-after-stop"]
    app = subprocess.Popen(command, env=audio_server.env, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           text=True)
    assert app.stderr is not None
    lines: list[str] = []
    recorder = None
    talking = threading.Event()
    talking.set()
    talker = threading.Thread(target=talk, args=(audio_server, talking), daemon=True)
    talker.start()
    deadline = time.monotonic() + TIMEOUT_S
    for line in app.stderr:  # until the driver ends (closes stderr) or the deadline
        lines.append(line.rstrip("\n"))
        if line.startswith("stopped streaming"):  # only the replay after Stop plays from here on
            talking.clear()
            recorder = audio_server.start_recording_speaker()
        assert time.monotonic() < deadline, lines[-20:]
    out, _ = app.communicate(timeout=TIMEOUT_S)
    talker.join(timeout=10)
    assert app.returncode == 0, "\n".join(lines[-30:])
    assert recorder is not None, lines
    recording = recorder.stop()
    summary = json.loads(out.strip().splitlines()[-1])
    messages = replay_messages(lines)
    streaming, after_stop = messages[: CLIPS + 1], messages[CLIPS + 1 :]
    print(f"\n[{server_name(audio_server)}] replay while streaming: underruns {summary['underruns']}, "
          f"xruns {summary['xruns']}; announced {streaming}; after Stop {after_stop}")
    steps = [f"Replay {i}/{CLIPS}" for i in range(1, CLIPS + 1)]
    assert [m.split(":")[0] for m in streaming] == [*steps, "Replay done"]
    assert streaming[-1] == "Replay done: live again"
    assert [m.split(":")[0] for m in after_stop] == [m.split(":")[0] for m in streaming[:-1]] + ["Replay done"]
    assert not [line for line in lines if line.startswith("error: ")], lines
    assert summary["underruns"] == 0 and summary["callback_errors"] == 0
    # After Stop, every path is heard in turn: one burst of sound each, split at the gaps.
    spans = [s for s in bursts(recording, 24_000, min_gap_s=0.8 * GAP_S) if s[1] - s[0] > 0.5 * REPLAY_SECONDS]
    assert len(spans) == CLIPS, spans
