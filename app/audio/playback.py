"""Clips played one after another on an output device, each announced (caller's thread; blocks).

For `mimi-live compare --play`: the same stretch of a file through every path in turn, so that
they can be heard back to back. A plain blocking PortAudio stream: nothing else plays meanwhile.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from app.audio.devices import DeviceError, import_sounddevice, resolve_device
from app.config import SAMPLE_RATE_HZ

__all__ = ["GAP_S", "play_in_turn"]

GAP_S = 0.4  # silence between two clips: where one path ends and the next begins
BLOCK = 1024


def play_in_turn(clips: Sequence[tuple[str, np.ndarray]], device: int | str | None = None,
                 announce: Callable[[int, str], None] = lambda index, label: None) -> None:
    """Plays each (label, 24 kHz mono audio) in order, calling `announce(i, label)` just before it.

    Raises DeviceError (one line) if the output cannot be opened or fails while playing.
    """
    sd = import_sounddevice()
    index = resolve_device(device, "output")
    gap = np.zeros(int(GAP_S * SAMPLE_RATE_HZ), np.float32)
    try:
        with sd.OutputStream(samplerate=SAMPLE_RATE_HZ, channels=1, dtype="float32", device=index,
                             blocksize=BLOCK) as stream:
            for i, (label, audio) in enumerate(clips):
                announce(i, label)
                samples = np.clip(np.asarray(audio, np.float32), -1.0, 1.0)
                for piece in (samples, gap):
                    for start in range(0, len(piece), BLOCK):
                        stream.write(np.ascontiguousarray(piece[start:start + BLOCK]).reshape(-1, 1))
    except sd.PortAudioError as exc:
        where = "the default output device" if device is None else f"output device {device!r}"
        raise DeviceError(f"cannot play on {where} ({exc}); choose another with --device "
                          "(`mimi-live devices` lists them)") from exc
