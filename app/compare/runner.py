"""A clip through Mimi at several codebook counts and through the classic codecs (caller's thread).

Every output comes back time-aligned with the input and as long as it, so that scores compare
sample for sample and the WAVs play in sync. Mimi's streaming decoder is frame-aligned with its
encoder (no lag to remove); each classic codec reports its exact lag, which is cut off.
Mimi encodes the clip once with all its codebooks; each count then decodes the first K rows of
those codes from a fresh decoder state, as a live switch to K would from the start.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from app.audio.files import pad_to_frames
from app.config import FRAME_SIZE

if TYPE_CHECKING:
    from app.codec import StreamingCodec

__all__ = ["PathResult", "original", "run_classic", "run_mimi"]

Progress = Callable[[int], None]  # called with the number of 80 ms frames just processed


@dataclass(frozen=True)
class PathResult:
    key: str  # file stem and report key: "original", "mimi-8", "codec2-1200", ...
    label: str  # for people: "Mimi 8 codebooks", "Codec2 1200"
    family: str  # "original", "mimi", "codec2" or "opus"
    audio: np.ndarray  # float32, aligned with the input and as long as it
    bitrate_bps: float | None  # measured from what the encoder produced (None: the original)
    compute_s: float  # wall time this path took (Mimi: its decode plus its share of the encode)


def original(pcm: np.ndarray) -> PathResult:
    return PathResult("original", "Original", "original", pcm, None, 0.0)


def run_mimi(codec: StreamingCodec, pcm: np.ndarray, codebooks: list[int],
             progress: Progress = lambda frames: None) -> list[PathResult]:
    """One PathResult per codebook count in `codebooks` (each 1..the model's maximum)."""
    padded, _ = pad_to_frames(pcm, FRAME_SIZE)
    n_frames = len(padded) // FRAME_SIZE
    codec.set_codebooks(codec.max_codebooks)
    codec.reset()
    started = time.perf_counter()
    codes = []
    for i in range(n_frames):
        codes.append(codec.encode(padded[i * FRAME_SIZE:(i + 1) * FRAME_SIZE]))
        progress(1)
    encode_s = (time.perf_counter() - started) / max(1, len(codebooks))
    results = []
    for k in codebooks:
        codec.set_codebooks(k)
        codec.reset()
        started = time.perf_counter()
        out = np.empty_like(padded)
        for i, frame_codes in enumerate(codes):
            out[i * FRAME_SIZE:(i + 1) * FRAME_SIZE] = codec.decode(frame_codes[:k])
            progress(1)
        bps = codec.bitrate_bps
        results.append(PathResult(f"mimi-{k}", f"Mimi {k} codebook{'s' if k > 1 else ''}", "mimi",
                                  out[: len(pcm)], None if bps is None else float(bps),
                                  encode_s + time.perf_counter() - started))
    return results


def run_classic(keys: list[str], pcm: np.ndarray, progress: Progress = lambda frames: None) -> list[PathResult]:
    """One PathResult per classic path key (see app.classic.paths.CLASSIC_PATHS)."""
    from app.classic.base import run_file
    from app.classic.paths import CLASSIC_PATHS, open_codec

    n_frames = -(-len(pcm) // FRAME_SIZE)
    results = []
    for key in keys:
        path = CLASSIC_PATHS[key]
        codec = open_codec(key)
        started = time.perf_counter()
        out = run_file(codec, pcm)
        compute_s = time.perf_counter() - started
        progress(n_frames)
        results.append(PathResult(key, path.label, path.family, np.asarray(out, np.float32),
                                  float(codec.measured_bps), compute_s))
    return results

