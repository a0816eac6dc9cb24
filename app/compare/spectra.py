"""Log-magnitude spectrograms for the report's figure (numpy only, any thread)."""

from __future__ import annotations

import numpy as np

__all__ = ["log_spectrogram"]

FLOOR_DB = -90.0


def log_spectrogram(audio: np.ndarray, n_fft: int = 512, hop: int = 240, max_columns: int = 1200) -> np.ndarray:
    """dB magnitudes [n_fft // 2 + 1, columns] (low frequencies first), 0 dB at the clip's peak bin.

    Long clips use a longer hop so that the figure has at most `max_columns` columns.
    """
    audio = np.asarray(audio, dtype=np.float32)
    hop = max(hop, -(-len(audio) // max_columns))
    if len(audio) < n_fft:
        audio = np.pad(audio, (0, n_fft - len(audio)))
    starts = np.arange(0, len(audio) - n_fft + 1, hop)
    frames = np.lib.stride_tricks.sliding_window_view(audio, n_fft)[starts] * np.hanning(n_fft).astype(np.float32)
    magnitude = np.abs(np.fft.rfft(frames, axis=1)).T
    db = 20 * np.log10(np.maximum(magnitude, 1e-9))
    return np.maximum(db - db.max(), FLOOR_DB)
