"""Minutes of codec mode through a private PulseAudio, minute by minute (a measurement, not a test)

    python tests/soak.py MODEL [--minutes M] [--tree TREE] [--keep-metrics F] [ARGS ...]

Starts a private PulseAudio (tests/pulse.py), loops the speech fixture into `mic`, and runs
`mimi-live run --model MODEL --json --metrics-out ...` from TREE (default: this checkout) for M
minutes plus a few seconds, with any further ARGS (e.g. `--lowest-latency`). Prints one JSON line
per minute (new underruns, new device xruns and how many of them were the microphone's, dropped
frames, compute p50 / p99, the app's latency estimate p50, RSS at the minute's end) and then the
session summary's totals; --keep-metrics copies the per-chunk metrics to F (for
tests/soak_trace.py). This is the "10 minutes of codec mode" of the latency issue: the
codec's output through random weights is noise, so the true delay is measured in bypass
(tests/delay_ab.py), not here.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

TESTS = Path(__file__).resolve().parent
sys.path.insert(0, str(TESTS))

from pulse import start_pulse_server  # noqa: E402 - after the path above

SPEECH = TESTS / "fixtures" / "speech-espeak.wav"
EXTRA_S = 6.0  # beyond the minutes: the app's start-up, so the last minute is whole


def per_minute(rows: list[dict]) -> list[dict]:
    """The metrics rows (one per chunk) summed up per minute of audio time."""
    minutes: dict[int, list[dict]] = {}
    for row in rows:
        minutes.setdefault(int(row["session_s"] // 60), []).append(row)
    out, before = [], {"underruns": 0, "xruns": 0, "input_xruns": 0, "dropped_frames": 0}
    for minute, chunk in sorted(minutes.items()):
        compute = np.array([r["encode_ms"] + r["decode_ms"] for r in chunk])
        last = chunk[-1]
        out.append({"minute": minute + 1, "chunks": len(chunk),
                    **{key: last[key] - before[key] for key in before},
                    "compute_ms_p50": round(float(np.median(compute)), 1),
                    "compute_ms_p99": round(float(np.percentile(compute, 99)), 1),
                    "latency_ms_p50": round(float(np.median([r["latency_ms"] for r in chunk])), 1),
                    "rss_mb": round(last["rss_mb"], 1)})
        before = {key: last[key] for key in before}
    return out


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("model")
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--tree", default=str(TESTS.parent))
    parser.add_argument("--keep-metrics", type=Path, metavar="F")
    args, extra = parser.parse_known_args()
    server = start_pulse_server()
    speech = None
    try:
        with tempfile.TemporaryDirectory(prefix="mimi-soak-") as tmp:
            metrics = Path(tmp) / "metrics.jsonl"
            command = [sys.executable, "-m", "app", "run", "--model", args.model, "--json",
                       "--metrics-out", str(metrics), "--duration", str(args.minutes * 60 + EXTRA_S), *extra]
            speech = subprocess.Popen(["bash", "-c", f'while paplay --device=mic "{SPEECH}"; do :; done'],
                                      env=server.env, start_new_session=True)
            started = time.monotonic()
            app = subprocess.run(command, env={**server.env, "PYTHONPATH": args.tree}, cwd=args.tree,
                                 capture_output=True, text=True, timeout=args.minutes * 60 + 180)
            if app.returncode != 0:
                raise SystemExit(f"mimi-live run exited with {app.returncode}: {app.stderr.strip()[-400:]}")
            rows = [json.loads(line) for line in metrics.read_text().splitlines() if line.strip()]
            if args.keep_metrics is not None:
                shutil.copyfile(metrics, args.keep_metrics)
        for row in per_minute(rows):
            print(json.dumps(row))
        summary = json.loads(app.stdout)
        keys = ("underruns", "xruns", "xruns_by_device", "dropped_frames", "skipped_ms", "compute_ms_per_frame",
                "latency_ms", "latency_budget_ms", "preset")
        print(json.dumps({"wall_s": round(time.monotonic() - started, 1),
                          **{key: summary.get(key) for key in keys}}))
    finally:
        if speech is not None:
            os.killpg(speech.pid, signal.SIGKILL)  # the loop and its paplay
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
