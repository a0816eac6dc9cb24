"""STOI / ESTOI and ViSQOL (speech mode) of a degraded signal against its reference (any thread).

Both signals must be time-aligned and at the same rate: the callers know each path's delay
exactly, so nothing is searched for here. pystoi resamples to its own 10 kHz internally;
ViSQOL's speech mode wants 16 kHz, done here with soxr.
"""

from __future__ import annotations

import threading
import warnings

import numpy as np

__all__ = ["VISQOL_MISSING", "VISQOL_RATE_HZ", "intelligibility", "stoi_only", "visqol_available", "visqol_speech"]

VISQOL_RATE_HZ = 16_000  # ViSQOL's speech mode
VISQOL_MISSING = "ViSQOL not computed: install the quality extra (pip install -e \".[quality]\")"
# pystoi needs this much audio (its 30-frame analysis window at 10 kHz, 384 ms) to say anything.
MIN_STOI_S = 0.4
MIN_VISQOL_S = 1.0  # ViSQOL's speech mode refuses less than ~0.08 s; under a second says little


def _checked(reference: np.ndarray, degraded: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    reference = np.asarray(reference, dtype=np.float64).reshape(-1)
    degraded = np.asarray(degraded, dtype=np.float64).reshape(-1)
    if reference.shape != degraded.shape:
        raise ValueError(f"reference and degraded differ in length: {reference.size} vs {degraded.size} samples")
    return reference, degraded


def _pystoi(reference: np.ndarray, degraded: np.ndarray, rate_hz: int,
            variants: tuple[bool, ...]) -> list[float] | None:
    """pystoi's score for each of `variants` (extended or not), or None for a clip under 0.4 s."""
    from pystoi import stoi

    reference, degraded = _checked(reference, degraded)
    if reference.size < MIN_STOI_S * rate_hz:
        return None
    with warnings.catch_warnings():  # pystoi warns (and returns ~1e-5) on all-silent input: a score, not a crash
        warnings.simplefilter("ignore")
        return [float(stoi(reference, degraded, rate_hz, extended=extended)) for extended in variants]


def intelligibility(reference: np.ndarray, degraded: np.ndarray, rate_hz: int) -> dict[str, float] | None:
    """{"stoi": .., "estoi": ..} in [0, 1] (1: the same), or None for a clip under 0.4 s."""
    scores = _pystoi(reference, degraded, rate_hz, (False, True))
    return None if scores is None else {"stoi": scores[0], "estoi": scores[1]}


def stoi_only(reference: np.ndarray, degraded: np.ndarray, rate_hz: int) -> float | None:
    """STOI alone (half the cost of `intelligibility`), or None for a clip under 0.4 s."""
    scores = _pystoi(reference, degraded, rate_hz, (False,))
    return None if scores is None else scores[0]


_visqol_lock = threading.Lock()
_visqol_api = None


def _visqol():
    """One ViSQOL speech-mode instance per process (its set-up loads a model), or None if missing."""
    global _visqol_api
    with _visqol_lock:
        if _visqol_api is None:
            try:
                from visqol import VisqolApi
            except ImportError:
                return None
            api = VisqolApi()
            api.create(mode="speech")
            _visqol_api = api
        return _visqol_api


def visqol_available() -> bool:
    return _visqol() is not None


def visqol_speech(reference: np.ndarray, degraded: np.ndarray, rate_hz: int) -> float | None:
    """ViSQOL's MOS-LQO (1..5) in speech mode, or None without the quality extra or for a clip
    under `MIN_VISQOL_S` (its analysis needs that much).

    Costs about half a second per second of audio here: callers run it off any real-time thread.
    """
    import soxr

    api = _visqol()
    if api is None:
        return None
    reference, degraded = _checked(reference, degraded)
    if reference.size < MIN_VISQOL_S * rate_hz:
        return None
    if rate_hz != VISQOL_RATE_HZ:
        reference = soxr.resample(reference, rate_hz, VISQOL_RATE_HZ, quality="HQ")
        degraded = soxr.resample(degraded, rate_hz, VISQOL_RATE_HZ, quality="HQ")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return float(api.measure_from_arrays(reference, degraded, VISQOL_RATE_HZ).moslqo)
