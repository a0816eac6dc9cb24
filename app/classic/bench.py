"""What each classic path costs per 80 ms frame of `process` (caller's thread).

The app runs these beside the real-time Mimi path, so the figure that matters is the wall time
of one `process(1920 samples)` call: median and p95 over the run, repeated to show how noisy
the machine is, and the CPU time per frame (what is left for everything else).
"""

from __future__ import annotations

import time

import numpy as np

from app.config import FRAME_RATE_HZ, FRAME_SIZE, SAMPLE_RATE_HZ

from .paths import CLASSIC_PATHS, open_codec

__all__ = ["speechlike", "time_paths"]


def speechlike(seconds: float, seed: int = 0) -> np.ndarray:
    """A voiced buzz with a gliding pitch, a syllable-rate envelope and a little noise (24 kHz)."""
    n = int(seconds * SAMPLE_RATE_HZ)
    t = np.arange(n) / SAMPLE_RATE_HZ
    phase = 2 * np.pi * np.cumsum(140 + 40 * np.sin(2 * np.pi * 0.5 * t)) / SAMPLE_RATE_HZ
    buzz = sum(np.sin(h * phase) / h for h in range(1, 20))
    envelope = (0.5 + 0.5 * np.sin(2 * np.pi * 4 * t)) ** 2
    noise = np.random.default_rng(seed).standard_normal(n)
    return (0.2 * envelope * buzz + 0.01 * noise).astype(np.float32)


def _run(codec, audio: np.ndarray) -> tuple[np.ndarray, float]:
    codec.reset()
    frames = len(audio) // FRAME_SIZE
    wall_ms = np.zeros(frames)
    cpu_start = time.process_time()
    for i in range(frames):
        chunk = audio[i * FRAME_SIZE : (i + 1) * FRAME_SIZE]
        started = time.perf_counter()
        codec.process(chunk)
        wall_ms[i] = (time.perf_counter() - started) * 1000
    return wall_ms, (time.process_time() - cpu_start) * 1000 / max(frames, 1)


def time_paths(seconds: float = 16.0, repeats: int = 3, keys: tuple[str, ...] | None = None) -> dict[str, dict]:
    """Per-frame cost of each path over `seconds` of speech-like input (16 s: 200 frames), `repeats` times.

    For each key: the median and p95 wall ms of each repeat, their spread (max - min over the
    repeats), CPU ms per frame, and the frame budget they are a share of (80 ms).
    """
    audio = speechlike(seconds)
    frames = len(audio) // FRAME_SIZE
    report: dict[str, dict] = {}
    for key in keys or tuple(CLASSIC_PATHS):
        codec = open_codec(key)
        _run(codec, audio[: 10 * FRAME_SIZE])  # warm up: first calls allocate and fault pages in
        medians, p95s, cpus = [], [], []
        for _ in range(repeats):
            wall_ms, cpu_ms = _run(codec, audio)
            medians.append(round(float(np.median(wall_ms)), 3))
            p95s.append(round(float(np.percentile(wall_ms, 95)), 3))
            cpus.append(round(cpu_ms, 3))
        report[key] = {
            "frames": frames,
            "median_ms": medians,
            "p95_ms": p95s,
            "median_spread_ms": round(max(medians) - min(medians), 3),
            "p95_spread_ms": round(max(p95s) - min(p95s), 3),
            "cpu_ms_per_frame": cpus,
            "budget_ms": 1000 / FRAME_RATE_HZ,
            "delay_samples": codec.delay_samples,
        }
    return report
