"""Encode + decode paced like the live stream, one frame every 80 ms (a measurement, not a test)

    python tests/paced_compute.py MODEL [--seconds S] [--threads N] [--period-ms MS] [--cut-in-call]
                                        [--spin-within-run] [--fifo PRIO]

Back to back (`mimi-live bench`) a frame finds its caches and ONNX Runtime's threads warm; live,
a frame comes every 80 ms and the threads sleep in between. This times frames the live way and
prints one JSON line: p50 / p90 / p99 / max ms, the process CPU time per frame, and the p50 of
the frames that came right after a KV cut was due against the others.
--period-ms paces the frames closer together (or further apart) than 80 ms: how the time a frame
takes depends on how long the process slept before it. Like the live worker, the loop makes a
due KV cut between frames, untimed (StreamingCodec.cut_kv_caches); --cut-in-call leaves it to
the next call, as the engine did before (stop 24). --spin-within-run lets the intra-op threads
spin between the ops of a run and stop as it returns (`session.force_spinning_stop`), instead of
the app's no spinning: the A/B behind the README's note on it. --fifo PRIO runs this thread and
the threads onnxruntime started for the sessions at SCHED_FIFO PRIO (Linux, root or an rtprio
limit): the paced half of the README's real-time priority A/B.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import app.codec.sessions as sessions  # noqa: E402 - after the path above
import app.codec.streaming as streaming  # noqa: E402
from app.codec.measure import bench_input  # noqa: E402
from app.config import FRAME_MS, FRAME_SIZE  # noqa: E402

WARM_FRAMES = 10


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("model")
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--period-ms", type=float, default=FRAME_MS)
    parser.add_argument("--cut-in-call", action="store_true")
    parser.add_argument("--spin-within-run", action="store_true")
    parser.add_argument("--fifo", type=int, metavar="PRIO")
    args = parser.parse_args()
    if args.spin_within_run:
        plain = sessions.session_options

        def spinning(threads: int | None):  # noqa: ANN202 - onnxruntime's SessionOptions
            options = plain(threads)
            options.add_session_config_entry("session.intra_op.allow_spinning", "1")
            options.add_session_config_entry("session.force_spinning_stop", "1")
            return options

        streaming.session_options = spinning
    before = set(os.listdir("/proc/self/task"))
    codec = streaming.StreamingCodec(args.model, threads=args.threads)
    if args.fifo is not None:  # the caller's thread and the sessions' intra-op pools
        for tid in {0, *map(int, set(os.listdir("/proc/self/task")) - before)}:
            os.sched_setscheduler(tid, os.SCHED_FIFO, os.sched_param(args.fifo))
    frames = int(args.seconds * 1000 / FRAME_MS)
    pcm = bench_input(WARM_FRAMES + frames).reshape(-1, FRAME_SIZE)
    for frame in pcm[:WARM_FRAMES]:
        codec.decode(codec.encode(frame))
    times, after_cut, due, cpu = [], [], time.perf_counter(), time.process_time()
    cut_due = False
    for frame in pcm[WARM_FRAMES:]:
        due += args.period_ms / 1000
        started = time.perf_counter()
        codec.decode(codec.encode(frame))
        times.append((time.perf_counter() - started) * 1000)
        after_cut.append(cut_due)
        cut_due = codec.kv_cut_due
        if not args.cut_in_call:
            codec.cut_kv_caches()
        time.sleep(max(0.0, due - time.perf_counter()))
    cpu_ms = (time.process_time() - cpu) / frames * 1000
    ms, cut = np.array(times), np.array(after_cut)
    print(json.dumps({"spin_within_run": args.spin_within_run, "fifo": args.fifo, "period_ms": args.period_ms,
                      "cut_in_call": args.cut_in_call, "frames": frames,
                      **{f"p{q}": round(float(np.percentile(ms, q)), 1) for q in (50, 90, 99)},
                      "max": round(float(ms.max()), 1), "cpu_ms_per_frame": round(cpu_ms, 1),
                      "p50_after_a_cut": round(float(np.median(ms[cut])), 1) if cut.any() else None,
                      "p50_others": round(float(np.median(ms[~cut])), 1)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
