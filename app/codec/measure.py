"""Timed round trips through a codec, and the test signal the measurements stream (caller's thread).

Warm-up, thread tuning, the benchmark, the int8 quality check and the self-test all stream
audio through encode then decode and time each call; they do it here, the same way.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from app.config import FRAME_SIZE, SAMPLE_RATE_HZ

__all__ = ["Codec", "Roundtrip", "bench_input", "roundtrip", "stream"]


class Codec(Protocol):
    """What a measurement needs of a codec: StreamingCodec, or the benchmark's naive loop."""

    last_encode_ms: float
    last_decode_ms: float

    def encode(self, pcm: np.ndarray) -> np.ndarray: ...

    def decode(self, codes: np.ndarray) -> np.ndarray: ...


@dataclass(frozen=True, slots=True)
class Roundtrip:
    """One chunk through encode then decode."""

    codes: np.ndarray
    audio: np.ndarray
    wall_s: float  # both calls, as the caller waited for them
    encode_ms: float  # each call as the codec timed it (without the caller's overhead)
    decode_ms: float

    @property
    def compute_ms(self) -> float:
        return self.encode_ms + self.decode_ms


def roundtrip(codec: Codec, pcm: np.ndarray) -> Roundtrip:
    """Encodes `pcm`, decodes its codes, and times both."""
    started = time.perf_counter()
    codes = codec.encode(pcm)
    audio = codec.decode(codes)
    wall_s = time.perf_counter() - started
    return Roundtrip(codes, audio, wall_s, codec.last_encode_ms, codec.last_decode_ms)


def stream(codec: Codec, pcm: np.ndarray, chunk_samples: int = FRAME_SIZE) -> Iterator[Roundtrip]:
    """`pcm` through the codec chunk by chunk, in order (a shorter last chunk as it is)."""
    for offset in range(0, len(pcm), chunk_samples):
        yield roundtrip(codec, pcm[offset : offset + chunk_samples])


def bench_input(frames: int, seed: int = 0) -> np.ndarray:
    """A speech-band chirp with noise and a syllable-rate envelope: moves every code."""
    n = frames * FRAME_SIZE
    t = np.arange(n) / SAMPLE_RATE_HZ
    pitch = 150 + 100 * np.sin(2 * np.pi * 0.3 * t)
    envelope = (0.5 + 0.5 * np.sin(2 * np.pi * 3 * t)) ** 2
    noise = np.random.default_rng(seed).standard_normal(n)
    return (0.3 * envelope * np.sin(2 * np.pi * np.cumsum(pitch) / SAMPLE_RATE_HZ) + 0.02 * noise).astype(np.float32)
