"""A/B: does an instant replay while streaming make the live stream drop out? (a measurement, not a test)

    python tests/replay_ab.py MODEL [--runs N] [--seconds S]

Starts a private PulseAudio (tests/pulse.py), plays speech into its `mic` over and over, and runs
tests/live_driver.py N times each way, alternating: "replay" asks for the replay 10 s in (it plays
10 s x 5 clips, the stream running underneath), "none" streams as long without one. Prints each
run's dropout moments (seconds since streaming began) and the session's underruns and xruns. The
machine's own noise shows in the "none" runs.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import threading
import time
from pathlib import Path

TESTS = Path(__file__).resolve().parent
sys.path.insert(0, str(TESTS))

from pulse import start_pulse_server  # noqa: E402 - after the path above

SPEECH = TESTS / "fixtures" / "speech-espeak.wav"
REPLAY_AT_S = 10.0
REPLAY_LENGTH_S = 5 * (10.0 + 0.4)  # five clips of the 10 s tape, and their gaps


def one_run(server, model: str, seconds: float, replay: bool) -> dict:
    command = [sys.executable, str(TESTS / "live_driver.py"), model, "--seconds", str(seconds)]
    if replay:
        command += ["--replay-at", str(REPLAY_AT_S)]
    app = subprocess.Popen(command, env=server.env, cwd=TESTS.parent, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True)
    assert app.stderr is not None
    began, dropouts = None, []
    for line in app.stderr:
        now = time.monotonic()
        if line.startswith("streaming"):
            began = now
        elif line.startswith("warning: audio dropped out") and began is not None:
            dropouts.append(round(now - began, 1))
    out, _ = app.communicate(timeout=120)
    summary = json.loads(out.strip().splitlines()[-1])
    return {"replay": replay, "dropouts_at_s": dropouts, "underruns": summary["underruns"], "xruns": summary["xruns"]}


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("model")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=REPLAY_AT_S + REPLAY_LENGTH_S + 4)
    parser.add_argument("--replay-only", action="store_true", help="no runs without a replay")
    args = parser.parse_args()
    server = start_pulse_server()
    talking = threading.Event()
    talking.set()

    def talk() -> None:
        while talking.is_set():
            server.play_into_mic(SPEECH).wait(timeout=30)

    threading.Thread(target=talk, daemon=True).start()
    try:
        for _ in range(args.runs):
            for replay in (True,) if args.replay_only else (True, False):
                # With a replay the driver streams until it is done: the same length either way.
                seconds = REPLAY_AT_S + 6 if replay else args.seconds
                print(json.dumps(one_run(server, args.model, seconds, replay)), flush=True)
    finally:
        talking.clear()
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
