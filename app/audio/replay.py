"""The instant replay: the last seconds of the input through each path in turn, each announced.

Talking while hearing yourself ~150 ms late is hard; speaking first and then listening is not. A
replay takes the tape's newest stretch (tape.py) and plays it as the original, as Mimi at the
session's codebook count (what the codec path played, as it played it), as Mimi at half as many
codebooks (the stored codes decoded again by a side decoder) and through Codec2 and Opus.

Threads: what has to be computed (the side decoder, the classic codecs) is made on a render
thread at the lowest CPU priority, in the order the clips play, while the first clips (ready
from the tape) are already playing; the live worker, at normal priority, never waits for it. While
the engine streams, the worker plays the replay in place of its monitor output (`Replayer.over`),
so the timing and the delay in flight are untouched and live monitoring resumes in step; after
Stop a small output stream of its own plays it (playback.py).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from app.audio.tape import NO_CODE, TapSnapshot
from app.config import REPLAY_CLASSIC_KEYS, SAMPLE_RATE_HZ
from app.errors import AppError, one_line
from app.units import format_bps

__all__ = ["GAP_S", "ReplayClip", "ReplayError", "ReplayPlayer", "SideDecoders", "open_classic", "plan_replay",
           "render_clips"]

log = logging.getLogger(__name__)

GAP_S = 0.4  # silence between two clips: where one path ends and the next begins
EDGE_SAMPLES = 120  # 5 ms fades at each clip's ends: a clip starts and ends mid-word
MIN_REPLAY_S = 1.0
# The side decoder reads as many weights per frame as the live one: run beside a live chunk it
# takes memory bandwidth (not only CPU, which its priority leaves to the worker) and the chunk is
# late. So it decodes one frame at a time, each in the worker's idle time after a chunk (`idle`
# waits for that; a replay after Stop has no worker and does not wait): 10 s of tape in ~10 s,
# done long before its turn.
SIDE_DECODE_FRAMES = 1


class ReplayError(AppError):
    """Nothing to replay yet (or nothing long enough)."""


@dataclass
class ReplayClip:
    """One path's version of the replayed stretch; `audio` is None until rendered."""

    key: str  # "original", "mimi-8", "mimi-4", "codec2-1200", ...
    label: str  # as announced: "Mimi 8 codebooks (1.1 kbps)"
    audio: np.ndarray | None = None
    problem: str | None = None  # why it could not be made: it is skipped, and said

    @property
    def ready(self) -> bool:
        return self.audio is not None or self.problem is not None


def _edged(audio: np.ndarray) -> np.ndarray:
    out = np.array(audio, dtype=np.float32)
    n = min(EDGE_SAMPLES, len(out) // 2)
    ramp = np.linspace(0.0, 1.0, n, dtype=np.float32)
    out[:n] *= ramp
    out[len(out) - n :] *= ramp[::-1]
    return np.clip(out, -1.0, 1.0)


def _mimi_label(codec: Any, k: int) -> str:
    bps = codec.bitrate_at(k)
    return f"Mimi {k} codebook{'s' if k > 1 else ''}{f' ({format_bps(bps)})' if bps else ''}"


def plan_replay(snap: TapSnapshot, classic_keys: Sequence[str] = REPLAY_CLASSIC_KEYS,
                fewer: int | None = None) -> list[ReplayClip]:
    """The clips of a replay of `snap`, in playing order; the original and Mimi as it played are
    ready, the others are rendered by `render_clips`. Raises ReplayError if `snap` is too short."""
    if snap.seconds < MIN_REPLAY_S:
        raise ReplayError("nothing to replay yet: stream for a few seconds first (the replay plays the "
                          "last seconds of the input)")
    from app.classic.paths import CLASSIC_PATHS

    k, codec = snap.codebooks, snap.codec
    clips = [ReplayClip("original", "Original", _edged(snap.dry))]
    if codec is not None and k > 0:
        clips.append(ReplayClip(f"mimi-{k}", _mimi_label(codec, k), _edged(snap.wet)))
        fewer = codec.half_codebooks(k) if fewer is None else fewer
        if fewer is not None and fewer < k and fewer in codec.codebook_choices:
            clips.append(ReplayClip(f"mimi-{fewer}", _mimi_label(codec, fewer)))
    clips += [ReplayClip(key, CLASSIC_PATHS[key].label) for key in classic_keys]
    return clips


class SideDecoders:
    """The side decoder a replay's "fewer codebooks" clip needs, kept for reuse.

    Opening one reads the whole decoder graph (~0.9 s of one core and ~180 MB of memory traffic at
    full size): done while streaming, that costs the live codec a late chunk on a small machine.
    So the engine makes it at Start, before any audio flows (`prepare`), and a replay reuses it.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._made: tuple[Any, int, Any] | None = None  # (codec, codebooks, SideDecoder)

    def prepare(self, codec: Any, codebooks: int | None = None) -> None:
        """Makes the side decoder a replay of `codec` at `codebooks` (default: its active count)
        would ask for, if any."""
        fewer = codec.half_codebooks(codebooks)
        if fewer is not None:
            self.get(codec, fewer)

    def get(self, codec: Any, codebooks: int) -> Any:
        """A side decoder for (codec, codebooks), reset to silence: the one kept, or a new one."""
        from app.codec.side_decoder import SideDecoder

        with self._lock:
            made = self._made
            if made is not None and made[0] is codec and made[1] == codebooks:
                made[2].reset()
                return made[2]
            self._made = None  # the old one goes before the new one is made: one at a time in memory
            decoder = SideDecoder(codec, codebooks)
            # Its first call allocates all its buffers (a cold call stalled a live stream by
            # ~300 ms here): made now, with the session, not under a replay.
            decoder.decode(np.zeros((codebooks, 1), np.int64))
            decoder.reset()
            self._made = (codec, codebooks, decoder)
            return decoder


def render_clips(clips: list[ReplayClip], snap: TapSnapshot, cancelled: threading.Event,
                 side: SideDecoders | None = None, idle: Callable[[], None] = lambda: None) -> None:
    """Makes every clip not ready yet, in order (caller's thread; at low priority if it lowered it).
    A clip that fails gets its `problem` and the others go on. `idle` returns when the live worker
    has just finished a chunk (see SIDE_DECODE_FRAMES)."""
    side = side or SideDecoders()
    for clip in clips:
        if clip.ready or cancelled.is_set():
            continue
        try:
            if clip.key.startswith("mimi-"):
                decoder = side.get(snap.codec, int(clip.key.removeprefix("mimi-")))
                audio = _side_decode(snap, decoder, cancelled, idle)
            else:
                audio = _classic(clip, snap.dry)
        except Exception as exc:  # noqa: BLE001 - one path failing must not end the replay
            log.warning("replay: %s could not be made", clip.label, exc_info=exc)
            clip.problem = one_line(exc) or type(exc).__name__
            continue
        if audio is not None:
            clip.audio = _edged(audio)


def _side_decode(snap: TapSnapshot, decoder: Any, cancelled: threading.Event,
                 idle: Callable[[], None]) -> np.ndarray | None:
    size = snap.codec.contract.codebook_size or 0
    codes = np.where(snap.codes < 0, size, snap.codes).astype(np.int64)  # rows not sent: the zero row
    out = []
    for start in range(0, codes.shape[1], SIDE_DECODE_FRAMES):
        idle()
        if cancelled.is_set():
            return None
        out.append(decoder.decode(codes[:, start : start + SIDE_DECODE_FRAMES]))
    return np.concatenate(out)


def open_classic(keys: Sequence[str]) -> None:
    """Opens each classic path once: importing PyAV loads FFmpeg's libraries, holding the GIL for
    tens of ms, which a stream playing meanwhile would hear."""
    from app.classic.paths import open_codec

    for key in keys:
        open_codec(key)


def _classic(clip: ReplayClip, dry: np.ndarray) -> np.ndarray:
    from app.classic.base import run_file
    from app.classic.paths import open_codec

    codec = open_codec(clip.key)
    audio = run_file(codec, dry)
    clip.label = f"{clip.label} ({format_bps(codec.measured_bps)})"
    return audio


assert NO_CODE < 0  # _side_decode maps the rows a chunk did not send by sign


class ReplayPlayer:
    """Hands out the clips one after another with a gap between them, announcing each as it begins
    (`announce(index, clip)`); silence while the next clip is still being made. Any one thread."""

    def __init__(self, clips: list[ReplayClip], announce: Callable[[int, ReplayClip], None]):
        self.clips = clips
        self._announce = announce
        self._index = -1  # the clip playing; -1 before the first
        self._pos = 0  # samples of it (then of the gap after it) already given
        self._gap = int(GAP_S * SAMPLE_RATE_HZ)
        self.done = False

    def take(self, n: int) -> np.ndarray:
        out = np.zeros(n, np.float32)
        filled = 0
        while filled < n and not self.done:
            if self._index < 0 or self._pos >= self._length(self._index):
                if not self._next():
                    break  # the next clip is not made yet: silence for now
                continue
            clip = self.clips[self._index]
            audio = clip.audio if clip.audio is not None else np.zeros(0, np.float32)
            take = min(n - filled, self._length(self._index) - self._pos)
            piece = audio[self._pos : self._pos + take]
            out[filled : filled + len(piece)] = piece  # past the clip's end: the gap's silence
            filled += take
            self._pos += take
        return out

    def _length(self, index: int) -> int:
        audio = self.clips[index].audio
        return (0 if audio is None else len(audio)) + self._gap

    def _next(self) -> bool:
        following = self._index + 1
        if following >= len(self.clips):
            self.done = True
            return False
        clip = self.clips[following]
        if not clip.ready:
            return False
        self._index, self._pos = following, 0
        if clip.audio is None:  # it could not be made: say so and go on
            self._pos = self._length(following)
        self._announce(following, clip)
        return True
