"""True end-to-end delay through the audio server, from chirps (test thread; numpy only).

A train of short chirps is played into a combine sink that feeds the app's microphone and the
speaker at once, so one recording of speaker.monitor holds every chirp twice: straight away (the
reference) and after the app's whole path. The gap is the true delay at that moment, on one
clock. `delays_ms` finds each reference chirp and the first strong copy after it (not the
strongest: the app's copy may be weaker, or cut by a splice), so the delay can be followed
through a disturbance.
"""

from __future__ import annotations

import numpy as np

from app.config import SAMPLE_RATE_HZ

RATE = SAMPLE_RATE_HZ
CHIRP_S = 0.05


def chirp() -> np.ndarray:
    t = np.arange(int(CHIRP_S * RATE)) / RATE
    sweep = 500 * t + (4000 - 500) / (2 * CHIRP_S) * t * t
    return (0.5 * np.sin(2 * np.pi * sweep) * np.hanning(len(t))).astype(np.float32)


def chirp_train(seconds: float, spacing_s: float, start_s: float = 0.5) -> tuple[np.ndarray, list[float]]:
    """A signal with a chirp every `spacing_s` from `start_s`, and the chirps' start times (s)."""
    template = chirp()
    signal = np.zeros(int(seconds * RATE), np.float32)
    times = []
    t = start_s
    while int(t * RATE) + len(template) < len(signal):
        i = int(t * RATE)
        signal[i : i + len(template)] = template
        times.append(t)
        t += spacing_s
    return signal, times


def _score(recording: np.ndarray, template: np.ndarray) -> np.ndarray:
    """Normalised cross-correlation of the template at every position (0..1)."""
    n = len(template)
    raw = np.abs(np.correlate(recording, template, mode="valid"))
    energy = np.convolve(recording.astype(np.float64) ** 2, np.ones(n), mode="valid")
    return raw / (np.sqrt(np.maximum(energy, 1e-12)) * np.linalg.norm(template))


def delays_ms(recording: np.ndarray, spacing_s: float, threshold: float = 0.6,
              min_delay_s: float = 0.03) -> list[tuple[float, float | None]]:
    """(time of the reference chirp in the recording, delay of the app's copy or None) per chirp.

    The first strong match is the first reference; the others follow it every `spacing_s` (one
    clock: the combine sink feeds both copies). Delays are looked for up to `spacing_s` - 30 ms.
    """
    template = chirp()
    score = _score(recording, template)
    strong = np.flatnonzero(score > threshold)
    if not len(strong):
        return []
    first = int(strong[0])
    first = first + int(np.argmax(score[first : first + int(0.01 * RATE)]))
    spacing = int(round(spacing_s * RATE))
    out: list[tuple[float, float | None]] = []
    reference = first
    while reference + spacing < len(score):
        # Re-centre on the reference copy (the combine sink's clock is the recording's clock).
        window = score[max(0, reference - 48) : reference + 48]
        reference = max(0, reference - 48) + int(np.argmax(window))
        lo, hi = reference + int(min_delay_s * RATE), reference + spacing - int(0.03 * RATE)
        found = np.flatnonzero(score[lo:hi] > threshold)
        delay = None
        if len(found):
            j = lo + int(found[0])
            j += int(np.argmax(score[j : j + int(0.01 * RATE)]))
            delay = (j - reference) * 1000 / RATE
        out.append((reference / RATE, delay))
        reference += spacing
    return out
