"""Starting, playing and ending an instant replay (replay.py) for the engine.

`start` is called from the caller's thread (GUI or CLI): it snapshots the tape, starts the render
thread and either hands the player to the worker (streaming: `over` replaces the monitor output
chunk by chunk, crossfaded at both ends) or starts a playback thread of its own (stopped). Every
step is announced through `notify(kind, message)` (the engine's queue: kind "replay").
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence

import numpy as np

from app.audio.replay import ReplayClip, ReplayPlayer, SideDecoders, open_classic, plan_replay, render_clips
from app.audio.session import FADE_SAMPLES  # the live monitor fades out under a replay, as on a switch
from app.audio.tape import AudioTap, TapSnapshot
from app.config import REPLAY_CLASSIC_KEYS
from app.errors import one_line
from app.threads import lower_thread_priority

__all__ = ["Replayer"]

log = logging.getLogger(__name__)

JOIN_TIMEOUT_S = 1.0


class Replayer:
    """One replay at a time over the engine's tape."""

    def __init__(self, tap: AudioTap, notify: Callable[[str, str], None],
                 worker_idle: Callable[[], None] = lambda: None):
        self._tap = tap
        self._notify = notify
        self._worker_idle = worker_idle  # returns once the live worker finished a chunk (or at once)
        self._player: ReplayPlayer | None = None  # the worker plays it (streaming)
        self._began = False
        self._cancelled = threading.Event()
        self._threads: list[threading.Thread] = []
        self.clips: list[ReplayClip] = []
        self.side = SideDecoders()  # made at Start (prepare), reused by every replay

    @property
    def active(self) -> bool:
        return self._player is not None or any(t.is_alive() for t in self._threads if t.name == "mimi-replay-play")

    # -- caller side -------------------------------------------------------------------------

    def start(self, streaming: bool, device: int | str | None = None,
              classic_keys: Sequence[str] = REPLAY_CLASSIC_KEYS, fewer: int | None = None,
              seconds: float | None = None) -> list[str]:
        """Replays the tape's newest `seconds` (default: all it holds, REPLAY_S); returns the clips'
        labels in playing order.

        Raises ReplayError when there is nothing (long enough) to replay. A replay already
        playing is ended first.
        """
        self.cancel()
        snap = self._tap.snapshot(seconds)
        clips = plan_replay(snap, classic_keys, fewer)
        self._cancelled = cancelled = threading.Event()
        self.clips = clips
        player = ReplayPlayer(clips, self._announce)
        self._threads = [threading.Thread(target=self._render, args=(clips, snap, cancelled),
                                          name="mimi-replay-render", daemon=True)]
        if streaming:
            self._began = False
            self._player = player
        else:
            self._threads.append(threading.Thread(target=self._play, args=(player, device, cancelled),
                                                  name="mimi-replay-play", daemon=True))
        for thread in self._threads:
            thread.start()
        return [clip.label for clip in clips]

    def cancel(self) -> None:
        """Ends the replay playing (live monitoring fades back in); idempotent."""
        self._cancelled.set()
        player = self._player
        if player is not None:
            player.done = True  # the worker fades live back in at its next chunk
        for thread in self._threads:  # the render thread sees the event between two short steps
            if thread.name == "mimi-replay-play" and thread is not threading.current_thread():
                thread.join(JOIN_TIMEOUT_S)  # a block or two: no two replays on the speaker at once
        self._threads = []

    def ended_with_session(self) -> None:
        """The stream stopped under a replay the worker was playing: it ends too (no worker)."""
        if self._player is not None:
            self._player = None
            self._cancelled.set()
            self._notify("replay", "Replay ended: the stream stopped")

    def prepare(self, codec: object, codebooks: int | None = None) -> None:
        """Before a session's audio flows (or on a switch's loader thread): what a replay would
        otherwise make while it streams, for `codec` at `codebooks` (default: its active count)."""
        try:
            self.side.prepare(codec, codebooks)
            open_classic(REPLAY_CLASSIC_KEYS)  # their libraries load now, not under a live stream
        except Exception as exc:  # noqa: BLE001 - the replay makes it again when asked, and says if it fails
            log.info("replay: its side decoder is not made ahead (%s)", one_line(exc) or type(exc).__name__)
            log.debug("replay: side decoder", exc_info=exc)

    # -- worker side -------------------------------------------------------------------------

    def over(self, live: np.ndarray) -> np.ndarray:
        """What the speaker plays instead of `live` while a replay runs (worker thread)."""
        player = self._player
        if player is None:
            return live
        n = min(FADE_SAMPLES, len(live))
        ramp = np.linspace(0.0, 1.0, n, dtype=np.float32)
        if player.done:  # back to live, fading in
            self._player = None
            out = live.copy()
            out[:n] *= ramp
            self._notify("replay", "Replay done: live again")
            return out
        out = player.take(len(live))
        if not self._began:  # live fades out under the replay's first samples
            self._began = True
            out[:n] += live[:n] * ramp[::-1]
        return out

    # -- threads -----------------------------------------------------------------------------

    def _announce(self, index: int, clip: ReplayClip) -> None:
        where = f"Replay {index + 1}/{len(self.clips)}: {clip.label}"
        self._notify("replay", f"{where} skipped ({clip.problem})" if clip.audio is None else where)

    def _render(self, clips: list[ReplayClip], snap: TapSnapshot, cancelled: threading.Event) -> None:
        lower_thread_priority()
        render_clips(clips, snap, cancelled, self.side, self._worker_idle)

    def _play(self, player: ReplayPlayer, device: int | str | None, cancelled: threading.Event) -> None:
        from app.audio.playback import play_player

        try:
            play_player(player, device, cancelled)
        except Exception as exc:  # noqa: BLE001 - a replay that cannot play says why, in one line
            log.warning("replay could not play", exc_info=exc)
            self._notify("error", f"replay: {one_line(exc)}")
            return
        self._notify("replay", "Replay done" if not cancelled.is_set() else "Replay stopped")
