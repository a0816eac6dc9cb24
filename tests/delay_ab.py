"""A/B: the true delay of two source trees, one run after the other (a measurement, not a test)

    python tests/delay_ab.py MODEL TREE [TREE ...] [--rounds N] [--seconds S] [--variant=ARGS ...]

Starts a private PulseAudio (tests/pulse.py) with a combine sink feeding `mic` and `speaker`, and
for each round runs `mimi-live run --bypass --threads 2` from each TREE in turn (a checkout or a
git worktree, on PYTHONPATH) while a chirp a second plays into the combine sink; speaker.monitor
is recorded and the true delay read from the chirps (tests/chirps.py) from 10 s on. Prints one
JSON line per run: the delay's median and quartiles, the session's underruns, device xruns and
compute per frame, and the latency budget. `--variant=ARGS` (repeated) runs each tree once per
set of extra `run` arguments, "" for none: e.g. `--variant= --variant=--lowest-latency` (the `=`
lets ARGS start with a dash). They come last, so they win: `--variant="--threads 1"` replaces the
`--threads 2` above. Alternating the trees in one session is how a change is judged on a machine
whose noise moves by the minute.
"""

from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import soundfile as sf

TESTS = Path(__file__).resolve().parent
sys.path.insert(0, str(TESTS))

from chirps import RATE, chirp_train, delays_ms  # noqa: E402 - after the path above
from pulse import start_pulse_server  # noqa: E402

SETTLED_FROM_S = 10.0  # the timing trusts its warm-up estimate for its first 10 s of calm chunks
LEAD_S = 4.0  # the app streams this long before the chirps start


def one_run(server, tree: str, model: str, seconds: float, wav: Path, extra: str = "") -> dict:
    command = [sys.executable, "-m", "app", "run", "--model", model, "--bypass", "--json", "--threads", "2",
               "--duration", str(seconds + LEAD_S + 2), *shlex.split(extra)]
    app = subprocess.Popen(command, env={**server.env, "PYTHONPATH": tree}, cwd=tree, stdout=subprocess.PIPE,
                           stderr=subprocess.DEVNULL, text=True)
    time.sleep(LEAD_S)
    recorder = server.start_recording_speaker()
    time.sleep(0.3)
    subprocess.run(["paplay", "--device=both", str(wav)], env=server.env, timeout=seconds + 30, check=True)
    out, _ = app.communicate(timeout=60)
    delays = [d for t, d in delays_ms(recorder.stop(), 1.0) if t >= SETTLED_FROM_S and d is not None]
    summary = json.loads(out)
    return {"tree": tree, "args": extra, "delay_ms_p50": round(float(np.median(delays)), 1) if delays else None,
            "delay_ms_p25_p75": [round(float(np.percentile(delays, q)), 1) for q in (25, 75)] if delays else None,
            "chirps": len(delays), "underruns": summary["underruns"], "xruns": summary["xruns"],
            "compute_ms_per_frame": summary.get("compute_ms_per_frame"),
            "latency_budget_ms": summary.get("latency_budget_ms")}


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("model")
    parser.add_argument("trees", nargs="+")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--variant", action="append", dest="variants", metavar="ARGS")
    args = parser.parse_args()
    server = start_pulse_server()
    try:
        loaded = server.pactl("load-module", "module-combine-sink", "sink_name=both", "slaves=mic,speaker")
        if loaded.returncode != 0:
            raise SystemExit(f"could not make the combine sink: {loaded.stderr.strip()}")
        wav = server.runtime_dir / "chirps.wav"
        sf.write(str(wav), chirp_train(args.seconds, 1.0)[0], RATE)
        for round_ in range(args.rounds):
            for tree in args.trees:
                for extra in args.variants or [""]:
                    run = one_run(server, tree, args.model, args.seconds, wav, extra)
                    print(json.dumps({"round": round_, **run}), flush=True)
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
