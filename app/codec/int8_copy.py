"""Making a local int8 copy of a model pair (quantize.py) and measuring how far its audio is
from the original's, on this machine (caller's thread; ~30 s at full size).

Apart from quantize.py because the measurement streams through a StreamingCodec, which loads
models through the code that checks (and repairs) int8 copies: the load path never measures.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from ..config import FRAME_SIZE, INT8_PARTS
from .measure import bench_input, roundtrip
from .quantize import QUALITY_FILE, QUALITY_FRAMES, Int8Quality, copy_folder, copy_problem, make_copy, read_quality
from .streaming import StreamingCodec

__all__ = ["make_int8", "measure_quality"]


def make_int8(
    folder: Path, parts: str = INT8_PARTS[0], cache_dir: Path | None = None, frames: int = QUALITY_FRAMES,
    status: Callable[[str], None] | None = None,
) -> tuple[Path, Int8Quality]:
    """The int8 copy of the model in `folder` and its measured quality, made once and then reused.

    `parts` "decoder" keeps the encoder in float: the codes stay exactly the original's. A copy
    whose files no longer match their checksums is made again (never returned as it is).
    """
    if parts not in INT8_PARTS:
        raise ValueError(f"parts must be one of {INT8_PARTS}, got {parts!r}")
    say = status or (lambda text: None)
    target = copy_folder(Path(folder), parts, cache_dir)
    damaged = None
    if target.exists():
        damaged = copy_problem(target)
        quality = read_quality(target)
        if damaged is None and quality is not None:
            return target, quality
        damaged = damaged or (target / QUALITY_FILE, "unreadable")
        say(f"the int8 copy in {target} is damaged ({damaged[0].name}: {damaged[1]}): making it again…")
    return make_copy(Path(folder), parts, target, frames, say, damaged, measure_quality)


def _snr_db(reference: np.ndarray, other: np.ndarray) -> float:
    noise = float(np.sum((reference.astype(np.float64) - other) ** 2))
    signal = float(np.sum(reference.astype(np.float64) ** 2))
    return round(float(10 * np.log10(signal / noise)), 1) if noise > 0 else float("inf")


def measure_quality(
    original: Path, int8: Path, parts: str, frames: int = QUALITY_FRAMES, threads: int | None = None
) -> Int8Quality:
    """Streams the same input through both pairs, frame by frame, alternating between them."""
    pcm = bench_input(frames, seed=1)
    reference = StreamingCodec(original, threads=threads)
    # The copy was made from the rewritten graphs: nothing left to rewrite (and no note to keep for
    # a folder that is about to be renamed).
    quantized, decoder_only = (StreamingCodec(int8, threads=threads, optimize=False) for _ in range(2))
    audio: dict[str, list[np.ndarray]] = {"reference": [], "quantized": [], "same_codes": []}
    agree: list[float] = []
    times: dict[str, list[float]] = {"reference": [], "quantized": []}
    for i in range(frames):
        chunk = pcm[i * FRAME_SIZE : (i + 1) * FRAME_SIZE]
        ref, own = roundtrip(reference, chunk), roundtrip(quantized, chunk)
        audio["reference"].append(ref.audio)
        times["reference"].append(ref.compute_ms)
        audio["quantized"].append(own.audio)
        times["quantized"].append(own.compute_ms)
        agree.append(float(np.mean(own.codes == ref.codes)))
        audio["same_codes"].append(decoder_only.decode(ref.codes))
    reference_audio = np.concatenate(audio["reference"])
    warm = min(25, frames // 2)  # leave out the first 2 s of timings: sessions warming up
    return Int8Quality(
        source=str(Path(original).resolve()),
        parts=parts,
        snr_same_codes_db=_snr_db(reference_audio, np.concatenate(audio["same_codes"])),
        snr_end_to_end_db=_snr_db(reference_audio, np.concatenate(audio["quantized"])),
        codes_agreement=round(float(np.mean(agree)), 4),
        ms_per_frame=round(float(np.median(times["quantized"][warm:])), 2),
        original_ms_per_frame=round(float(np.median(times["reference"][warm:])), 2),
        frames=frames,
    )
