"""Changing how much audio is in flight without a click (worker thread; numpy only).

The timing controller (timing.py) decides how many samples a chunk should gain or lose; this
module does it to the audio:

- a few samples (clock drift): the chunk is resampled by linear interpolation, far too little to
  hear (at most a couple of thousand ppm);
- many samples (delay won back after a disturbance, or room made after an underrun): one splice.
  The chunk jumps forward (or back) inside itself, at the place where the audio on both sides of
  the jump is most alike, and the two sides are crossfaded over a few milliseconds. Speech and
  noise pass through such a splice without an audible click; the chunk's first and last samples
  stay where they were, so neighbouring chunks still join seamlessly.
- whole frames dropped from the input (the worker fell far behind): the audio after the gap is
  crossfaded from the audio that would have followed, so the codec and the bypass path hear no
  step either.
"""

from __future__ import annotations

import numpy as np

# Candidate splice points tried per chunk: enough to find a quiet or similar spot, cheap enough
# for the worker (a few dot products of crossfade length each).
SPLICE_CANDIDATES = 24


def resample_to(chunk: np.ndarray, length: int) -> np.ndarray:
    """The chunk stretched or shrunk to `length` samples by linear interpolation (for a few samples)."""
    n = len(chunk)
    if length == n:
        return chunk
    positions = np.linspace(0, n - 1, length)
    return np.interp(positions, np.arange(n), chunk).astype(np.float32)


def _ramp(length: int) -> np.ndarray:
    # Equal-gain raised cosine: sums to one, so correlated audio keeps its level through the fade.
    return (0.5 - 0.5 * np.cos(np.linspace(0.0, np.pi, length, dtype=np.float32))).astype(np.float32)


def splice(chunk: np.ndarray, change: int, crossfade: int) -> np.ndarray:
    """Returns the chunk lengthened (change > 0) or shortened (change < 0) by |change| samples.

    One jump inside the chunk, crossfaded over `crossfade` samples. The jump is by |change|: back
    (repeating a stretch of audio) to lengthen, forward (skipping one) to shorten. |change| must
    leave room for the crossfade on both sides: at most len(chunk) - 2 * crossfade.
    """
    n = len(chunk)
    jump = -int(change)  # where the read position moves at the splice
    if jump == 0:
        return chunk
    fade = int(crossfade)
    if fade < 1 or abs(jump) > n - 2 * fade:
        raise ValueError(f"cannot splice {change} samples into a chunk of {n} with a {fade}-sample crossfade")
    # Splice at p: out = chunk[:p] + fade(chunk[p:p+F] -> chunk[p+jump:p+jump+F]) + chunk[p+jump+F:]
    low = max(0, -jump)
    high = min(n - fade, n - fade - jump)
    candidates = np.unique(np.linspace(low, high, SPLICE_CANDIDATES).astype(np.int64))
    best, best_cost = int(candidates[0]), np.inf
    for p in candidates:
        a = chunk[p : p + fade]
        b = chunk[p + jump : p + jump + fade]
        cost = float(np.dot(a - b, a - b))
        if cost < best_cost:
            best, best_cost = int(p), cost
    p = best
    ramp = _ramp(fade)
    joined = chunk[p : p + fade] * (1 - ramp) + chunk[p + jump : p + jump + fade] * ramp
    return np.concatenate([chunk[:p], joined, chunk[p + jump + fade :]]).astype(np.float32, copy=False)


def crossfade_into(continuation: np.ndarray, after_gap: np.ndarray) -> None:
    """Blends the start of `after_gap` (in place) from `continuation`, the audio the gap removed.

    Both are the same length: the first samples of the dropped audio and the first samples kept.
    """
    ramp = _ramp(len(after_gap))
    after_gap *= ramp
    after_gap += continuation * (1 - ramp)
