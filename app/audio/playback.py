"""Clips played one after another on an output device, each announced (caller's thread; blocks).

For `mimi-live compare --play` and the instant replay after Stop: a plain blocking PortAudio
stream fed by a ReplayPlayer (replay.py), so that the paths can be heard back to back.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence

import numpy as np

from app.audio.devices import DeviceError, import_sounddevice, resolve_device
from app.audio.replay import GAP_S, ReplayClip, ReplayPlayer
from app.config import SAMPLE_RATE_HZ

__all__ = ["GAP_S", "play_in_turn", "play_player"]

BLOCK = 1024


def play_player(player: ReplayPlayer, device: int | str | None = None,
                cancelled: threading.Event | None = None) -> None:
    """Plays what `player` hands out until it is done (or `cancelled` is set).

    Raises DeviceError (one line) if the output cannot be opened or fails while playing.
    """
    sd = import_sounddevice()
    index = resolve_device(device, "output")
    cancelled = cancelled or threading.Event()
    try:
        with sd.OutputStream(samplerate=SAMPLE_RATE_HZ, channels=1, dtype="float32", device=index,
                             blocksize=BLOCK) as stream:
            while not player.done and not cancelled.is_set():
                stream.write(player.take(BLOCK).reshape(-1, 1))
    except sd.PortAudioError as exc:
        where = "the default output device" if device is None else f"output device {device!r}"
        raise DeviceError(f"cannot play on {where} ({exc}); choose another with --device "
                          "(`mimi-live devices` lists them)") from exc


def play_in_turn(clips: Sequence[tuple[str, np.ndarray]], device: int | str | None = None,
                 announce: Callable[[int, str], None] = lambda index, label: None) -> None:
    """Plays each (label, 24 kHz mono audio) in order, calling `announce(i, label)` just before it."""
    ready = [ReplayClip(label, label, np.clip(np.asarray(audio, np.float32), -1.0, 1.0)) for label, audio in clips]
    play_player(ReplayPlayer(ready, lambda index, clip: announce(index, clip.label)), device)
