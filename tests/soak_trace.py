"""What a live session's metrics say about its waits (a measurement, not a test)

    python tests/soak_trace.py METRICS.jsonl [--floors-ms 20,25,30,35,40]

Reads the per-chunk lines of `mimi-live run --metrics-out` (or `tests/soak.py --keep-metrics`)
and prints one JSON line each for:
- the chunks' waits (input behind the chunk + compute: what the timing's cover must cover):
  percentiles, and how many waited past 30 / 35 / 40 ms;
- compute (encode + decode) of the chunks that made a KV cut due (their encoder cache reads
  shorter than the chunk's before: cut back to the window) against the others;
- the waits replayed through the timing's cover memory (app/audio/timing_cover.py) with the
  cover's floor (`TimingPolicy.min_cover_s`) at each of --floors-ms: the median cover, and the
  chunks that waited past the cover plus the margin (each a possible underrun).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.audio.timing_cover import CoverMemory  # noqa: E402 - after the path above
from app.audio.timing_policy import TimingPolicy  # noqa: E402
from app.config import FRAME_SIZE, SAMPLE_RATE_HZ  # noqa: E402

WARM_S = 12.0  # the controller trusts its warm-up estimate until it has 10 s of calm history
INITIAL_COVER_S = 0.060


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("metrics")
    parser.add_argument("--floors-ms", default="20,25,30,35,40")
    args = parser.parse_args()
    rows = [json.loads(line) for line in Path(args.metrics).read_text().splitlines() if line.strip()]
    waits = np.array([r["queue_ms"] + r["encode_ms"] + r["decode_ms"] for r in rows]) / 1000
    times = np.array([r["session_s"] for r in rows])
    print(json.dumps({"chunks": len(rows), **{f"wait_ms_p{q}": round(float(np.percentile(waits, q)) * 1000, 1)
                                                for q in (50, 99, 99.9, 100)},
                      **{f"waits_over_{ms}_ms": int((waits > ms / 1000).sum()) for ms in (30, 35, 40)}}))
    compute = np.array([r["encode_ms"] + r["decode_ms"] for r in rows])
    kv = np.array([r["kv_encoder"] for r in rows])
    cut = np.concatenate([[False], kv[1:] < kv[:-1]])  # whatever the window: the cache fell back to it
    if cut.any():
        print(json.dumps({"cut_frames": int(cut.sum()),
                          "compute_ms_p50_cut_frames": round(float(np.median(compute[cut])), 1),
                          "compute_ms_p50_others": round(float(np.median(compute[~cut])), 1)}))
    for floor_ms in (float(f) for f in args.floors_ms.split(",")):
        policy = TimingPolicy(min_cover_s=floor_ms / 1000)
        memory = CoverMemory(FRAME_SIZE, INITIAL_COVER_S, policy, SAMPLE_RATE_HZ)
        covers, past = [], 0
        for now, wait in zip(times, waits, strict=True):
            if now > WARM_S:
                covers.append(memory.cover_s)
                past += wait > memory.cover_s + policy.margin_s
            memory.observe(now, wait)
        print(json.dumps({"floor_ms": floor_ms, "cover_ms_p50": round(float(np.median(covers)) * 1000, 1),
                          "waits_past_the_cover": int(past)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
