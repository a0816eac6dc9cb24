"""argparse types for `mimi-live`: every number the command line takes, with its bounds (main thread).

A value out of range is refused by argparse itself (exit code 2, one `error: argument ...` line),
before anything is loaded: a number that parses but makes no sense (a negative duration, a tone
above Nyquist, a chunk of hours) would otherwise do nothing, run forever or run out of memory.
No heavy imports here: the parser is built for `--help` too.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable

from app.config import CHUNK_CHOICES_MS, FRAME_MS, SAMPLE_RATE_HZ

__all__ = [
    "bench_frames",
    "bounded_float",
    "bounded_int",
    "chunk_ms",
    "device",
    "device_latency_ms",
    "duration_s",
    "kv_window",
    "positive_int",
    "seed",
    "threads",
    "tone_hz",
]

DURATION_MAX_S = 7 * 24 * 3600.0  # a week: longer is a typo, and still ends
TONE_MAX_HZ = SAMPLE_RATE_HZ / 2  # Nyquist of the codec's 24 kHz audio (exclusive)
ROUNDTRIP_CHUNK_MS_MAX = 10_000  # 125 frames per call; 8000 s asked for ~320 GB and died in bad_alloc
RUN_CHUNK_MS_MAX = max(CHUNK_CHOICES_MS)
DEVICE_LATENCY_MS_MAX = 500  # more only delays Stop (PortAudio drains what it asked for)
THREADS_MAX = 256  # ONNX Runtime intra-op threads; each is a real OS thread
BENCH_FRAMES_MAX = 15_000  # 20 minutes: the input is built up front (~80 bytes per sample)
KV_WINDOW_MAX = 1_000_000  # tokens (~22 h); `none` is the way to say "never cut"
KV_WINDOW_MIN = 2  # the engine's own minimum
SEED_MAX = 2**32 - 1  # numpy and torch both take any seed in 0..2**32-1

# Every command's --model takes a folder or a variant name (main resolves it before the handler runs).
MODEL_HELP = "model folder, or a downloaded published variant (see `mimi-live models`)"


def _parse_int(text: str, what: str = "a whole number") -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not {what}") from None


def bounded_int(low: int, high: int, unit: str = "") -> Callable[[str], int]:
    """argparse type: a whole number in low..high (inclusive)."""
    suffix = f" {unit}" if unit else ""

    def parse(text: str) -> int:
        value = _parse_int(text)
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"{value}{suffix} is out of range: use {low}..{high}{suffix}")
        return value

    return parse


def bounded_float(low: float, high: float, unit: str, high_inclusive: bool = True,
                  why: str = "") -> Callable[[str], float]:
    """argparse type: a finite number with low < value <= high (or < high); `why` explains the bound."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        if not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"{text} is not a finite number of {unit}")
        too_high = value > high if high_inclusive else value >= high
        if value <= low or too_high:
            upper = f"at most {high:g}" if high_inclusive else f"below {high:g}"
            note = f" ({why})" if why else ""
            raise argparse.ArgumentTypeError(
                f"{value:g} {unit} is out of range: use more than {low:g} and {upper}{note}"
            )
        return value

    return parse


def positive_int(text: str) -> int:
    """argparse type: a whole number > 0 (checked further by whatever uses it, e.g. a model's K)."""
    value = _parse_int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{value} is not positive")
    return value


def chunk_ms(high: int) -> Callable[[str], int]:
    """argparse type: a positive multiple of one code frame (80 ms), at most `high`."""

    def parse(text: str) -> int:
        value = _parse_int(text, "a whole number of milliseconds")
        if value <= 0 or value % FRAME_MS:
            raise argparse.ArgumentTypeError(
                f"{value} ms is not a positive multiple of {FRAME_MS} ms (one code frame)"
            )
        if value > high:
            raise argparse.ArgumentTypeError(
                f"{value} ms is too long: use {FRAME_MS}..{high} ms, a multiple of {FRAME_MS}"
            )
        return value

    return parse


def kv_window(text: str) -> int | None:
    """argparse type: tokens in KV_WINDOW_MIN..KV_WINDOW_MAX, or `none` (the cache grows)."""
    if text.lower() == "none":
        return None
    value = _parse_int(text, "a whole number of tokens or none")
    if not KV_WINDOW_MIN <= value <= KV_WINDOW_MAX:
        raise argparse.ArgumentTypeError(
            f"{value} tokens is out of range: use {KV_WINDOW_MIN}..{KV_WINDOW_MAX}, or none"
        )
    return value


def device(text: str) -> int | str:
    """argparse type: a device index (digits) or part of a device name."""
    return int(text) if text.isdigit() else text


duration_s = bounded_float(0.0, DURATION_MAX_S, "seconds", why="a week at most")
tone_hz = bounded_float(0.0, TONE_MAX_HZ, "Hz", high_inclusive=False,
                        why=f"the Nyquist frequency of {SAMPLE_RATE_HZ // 1000} kHz audio")
threads = bounded_int(1, THREADS_MAX)
device_latency_ms = bounded_int(1, DEVICE_LATENCY_MS_MAX, "ms")
bench_frames = bounded_int(1, BENCH_FRAMES_MAX, "frames")
seed = bounded_int(0, SEED_MAX)
