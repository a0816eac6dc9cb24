"""How many intra-op threads run a model fastest on this machine: measured once, remembered.

ONNX Runtime's default (one thread per physical core) is not always the fastest for
Mimi's small per-frame matrices, and every extra thread is taken from the GUI and the
audio callbacks. So the first load of a model on a machine times a short stream with
1, 2, 4, ... threads and keeps the smallest count within 5% of the fastest. The answer
is stored in ``<data dir>/threads.json`` keyed by the model files, the core count and
the onnxruntime version. ``MIMI_LIVE_THREADS=N`` overrides it.

Runs on a loader thread. Measuring takes both cores flat out for seconds, so a caller
that loads while a stream runs passes ``may_measure=False``: it gets the stored count,
or ``default_threads()`` untimed and unsaved (a timing taken under load would be wrong).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from ..config import FRAME_SIZE, data_dir, write_atomically
from .contract import model_files
from .derived import source_key
from .errors import InputError
from .measure import stream

__all__ = [
    "THREADS_ENV", "TUNING_FILE", "thread_candidates", "default_threads", "tuned_threads", "tuning_record",
    "measure_threads",
]

THREADS_ENV = "MIMI_LIVE_THREADS"
TUNING_FILE = "threads.json"
WARMUP_FRAMES, TIMED_FRAMES = 4, 20
NEAR_BEST = 1.05  # fewer threads win unless they are more than 5% slower


def physical_cores() -> int:
    import psutil

    return psutil.cpu_count(logical=False) or os.cpu_count() or 1


def thread_candidates(cores: int | None = None) -> list[int]:
    cores = cores or physical_cores()
    return sorted({n for n in (1, 2, 4, 8, cores) if n <= cores})


def default_threads(cores: int | None = None) -> int:
    """The count to use before one is measured: one per physical core (onnxruntime's own
    default), at most 2, since Mimi's per-frame matrices rarely gain from more and each extra
    thread is taken from the GUI and the audio."""
    return min(2, cores or physical_cores())  # 1 and 2 are always among thread_candidates


def measure_threads(folder: Path, threads: int) -> float:
    """Median encode + decode ms per 80 ms frame over a short stream with `threads` threads."""
    from .streaming import StreamingCodec

    codec = StreamingCodec(folder, threads=threads)
    samples = (WARMUP_FRAMES + TIMED_FRAMES) * FRAME_SIZE
    pcm = (0.1 * np.random.default_rng(0).standard_normal(samples)).astype(np.float32)
    times = [step.wall_s for step in stream(codec, pcm, FRAME_SIZE)]
    return float(np.median(times[WARMUP_FRAMES:])) * 1000


def _override() -> int | None:
    text = os.environ.get(THREADS_ENV, "").strip()
    if not text:
        return None
    if not text.isdigit() or int(text) < 1:
        raise InputError(f"{THREADS_ENV}={text!r}: use a positive number of threads, or unset it")
    return int(text)


def _tuning_key(folder: Path, cores: int) -> str:
    import onnxruntime as ort

    encoder, decoder, _ = model_files(Path(folder))
    return source_key([encoder, decoder], f"threads|{cores}|{ort.__version__}")


def _read(path: Path) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def tuning_record(folder: Path | str, cache_dir: Path | None = None) -> dict | None:
    """What was measured for `folder` on this machine ({"threads", "ms_per_frame", ...}), or None."""
    cores = physical_cores()
    known = _read(Path(cache_dir or data_dir()) / TUNING_FILE).get(_tuning_key(Path(folder), cores))
    if (isinstance(known, dict) and isinstance(known.get("threads"), int)
            and known["threads"] in thread_candidates(cores)):
        return known
    return None


def tuned_threads(
    folder: Path | str, cache_dir: Path | None = None, again: bool = False,
    measure: Callable[[Path, int], float] = measure_threads, status: Callable[[str], None] | None = None,
    may_measure: bool = True,
) -> int:
    """The thread count to run `folder` with here (measured on first use or with `again`, then read back).

    With `may_measure` False nothing is timed or written: the stored count, else default_threads().
    """
    if again and not may_measure:
        raise InputError("tuned_threads: again=True needs may_measure=True (it measures)")
    forced = _override()
    if forced is not None:
        return forced
    cores = physical_cores()
    candidates = thread_candidates(cores)
    if len(candidates) == 1:
        return candidates[0]
    known = None if again else tuning_record(folder, cache_dir)
    if known is not None:
        return known["threads"]
    if not may_measure:
        return default_threads(cores)
    path = Path(cache_dir or data_dir()) / TUNING_FILE
    key = _tuning_key(Path(folder), cores)
    if status is not None:
        status(f"finding the fastest thread count for this machine ({', '.join(map(str, candidates))}); once per model")
    ms = {n: measure(Path(folder), n) for n in candidates}
    best = min(ms.values())
    threads = min(n for n, t in ms.items() if t <= best * NEAR_BEST)
    record = {"threads": threads, "ms_per_frame": {str(n): round(t, 2) for n, t in ms.items()},
              "model": str(Path(folder).resolve()), "measured": time.strftime("%Y-%m-%d %H:%M:%S")}
    _store(path, key, record)
    return threads


def _store(path: Path, key: str, record: dict) -> None:
    """Adds one record to the tuning file (rename into place; a failure to write only costs a re-measure)."""
    data = _read(path)
    data[key] = record
    try:
        write_atomically(path, lambda tmp: tmp.write_text(json.dumps(data, indent=1), encoding="utf-8"))
    except OSError:
        pass
