"""One live session's state and the per-chunk pieces of the worker's job (worker thread).

LiveSession is owned by the worker once started. The functions here each do one part of a
chunk: mix what the listener hears, carry out the timing's correction, watch for a silent
microphone, and build the chunk's metrics.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from app.audio.classic_paths import ClassicBank
from app.audio.engine_config import MONITORS, EngineConfig
from app.audio.io_base import IOBase
from app.audio.metrics import EngineEvent, FrameMetrics, level_db
from app.audio.output_settle import OutputSettle
from app.audio.recorder import SessionRecorder
from app.audio.sources import OutputSink, Source
from app.audio.splice import resample_to, splice
from app.audio.stream_watch import StreamWatch
from app.audio.timing import Correction, TimingController
from app.codec import StreamingCodec
from app.config import FRAME_SIZE, SAMPLE_RATE_HZ

log = logging.getLogger(__name__)

FADE_SAMPLES = 240  # 10 ms ramps on start and on monitor switches: no clicks
SILENCE_WARNING_S = 2.0
BURST_CAP_S = 0.025  # PipeWire's default quantum is 1024 samples at 48 kHz (21 ms)


class SessionClock:
    """The worker's time (s): the devices' own clock where they have one (FakeIO, so a test's
    ticks alone decide what plays), else perf_counter. It never goes back when streams reopen."""

    def __init__(self, io: IOBase) -> None:
        self._device: Callable[[], float] | None = None
        self._base = 0.0
        self.follow(io)

    def follow(self, io: IOBase) -> None:
        now = self() if self._device is not None else 0.0
        self._device = getattr(io, "clock", None)
        self._base = now - self._device() if self._device is not None else 0.0

    def __call__(self) -> float:
        return self._base + self._device() if self._device is not None else time.perf_counter()


@dataclass
class LiveSession:
    """Per-run state, owned by the worker once started."""

    config: EngineConfig
    codec: StreamingCodec
    io: IOBase
    source: Source
    sink: OutputSink
    timing: TimingController
    chunk: np.ndarray
    clock: SessionClock
    recorder: SessionRecorder | None = None
    seen_underrun_samples: int = 0
    # Counters before the first chunk reached the speaker: silence missing while the streams
    # start is not a glitch anyone hears, so it is not counted.
    baseline_underruns: int = 0
    baseline_xruns: int = 0
    baseline_input_xruns: int = 0  # of baseline_xruns, the input device's
    seen_xruns: int = 0
    chunks: int = 0
    zero_input_s: float = 0.0
    warned_silence: bool = False
    applied_monitor: str | None = None  # None until the first chunk (fade in from silence)
    started_at: float = field(default_factory=time.perf_counter)
    requested_at: float = 0.0  # perf_counter when start() was called (before the model load)
    last_wait_ms: float = 0.0
    aligned: bool = False  # the first chunk since the streams (re)opened has been placed
    settle: OutputSettle | None = None  # has the output stream stopped rushing? (None: not looked yet)
    # Counters of streams closed by a reconnect, so the session's totals go on counting.
    carried: dict[str, int] = field(default_factory=lambda: {"underruns": 0, "xruns": 0, "input_xruns": 0,
                                                              "overruns": 0, "callback_errors": 0})
    reconnects: int = 0
    watch: StreamWatch = field(default_factory=StreamWatch)  # are the streams still alive?
    burst_frames: int = -1  # output frames at the last look, for the device's burst size (-1: none yet)
    burst_at: float = 0.0
    burst_max: int = 0
    bank: ClassicBank | None = None  # the classic paths, when the session runs them
    # A bank put in while streaming is heard only once the delay has grown to cover its look-ahead.
    bank_audible: bool = True
    input_pos: int = 0  # source samples read so far: where the next chunk starts in its stream

    def carry_counters(self) -> None:
        """Adds the current streams' counts to the session's, before those streams are closed."""
        c = self.io.counters
        self.carried["underruns"] += c.output_underruns - self.baseline_underruns
        self.carried["xruns"] += c.input_xruns + c.output_xruns - self.baseline_xruns
        self.carried["input_xruns"] += c.input_xruns - self.baseline_input_xruns
        self.carried["overruns"] += c.input_overruns
        self.carried["callback_errors"] += c.callback_errors
        self.baseline_underruns = self.baseline_xruns = self.seen_xruns = self.seen_underrun_samples = 0
        self.baseline_input_xruns = 0


def output_settling(session: LiveSession) -> bool:
    """Whether streams just (re)opened are still rushing (output_settle.py): the first chunk
    waits. The input that arrives meanwhile is dropped in whole frames: it would play into the rush."""
    if session.settle is None:
        session.settle = OutputSettle(session.io.output_rate)
    counters, settle = session.io.counters, session.settle
    waiting = settle.settled_after_s is None
    if settle.settled(session.clock(), counters.output_xruns, counters.output_frames):
        if waiting and settle.flags_seen > 0:  # once, when it settles (the first chunk may wait for input)
            log.info("the output device rushed for %.0f ms after it started (%d flagged callbacks); "
                     "the first chunk waited for it", (settle.settled_after_s or 0) * 1000, settle.flags_seen)
        return False
    if session.source.live:
        session.source.drop_frames(session.source.backlog() // FRAME_SIZE)
    return True


def input_latency_s(session: LiveSession) -> float:
    return session.io.input_latency_s if session.config.source == "mic" else 0.0


def monitor_mix(session: LiveSession, mode: str, dry: np.ndarray, wet: np.ndarray,
                classic: dict[str, np.ndarray] | None = None) -> np.ndarray:
    """What the speaker plays: codec, bypass, residual or a classic path's output aligned with
    this chunk (`classic`, by key), crossfaded from the previous choice."""
    classic = classic or {}
    mode = mode if mode in MONITORS else "codec"
    if mode not in ("codec", "bypass", "residual") and mode not in classic:
        mode = "codec"  # the classic paths are off in this session

    def signal(name: str) -> np.ndarray:
        if name in classic:
            return classic[name]
        if name not in ("codec", "bypass", "residual"):
            return np.zeros_like(wet)  # a classic path faded out of, not run: fade from silence
        return wet if name == "codec" else dry if name == "bypass" else dry - wet

    out = np.array(signal(mode), dtype=np.float32)
    previous = session.applied_monitor
    if previous != mode:
        ramp = np.linspace(0.0, 1.0, FADE_SAMPLES, dtype=np.float32)
        before = signal(previous)[:FADE_SAMPLES] if previous else np.zeros(FADE_SAMPLES, np.float32)
        out[:FADE_SAMPLES] = before * (1 - ramp) + out[:FADE_SAMPLES] * ramp
        session.applied_monitor = mode
    return out


def apply_correction(session: LiveSession, correction: Correction, out: np.ndarray) -> np.ndarray:
    """The chunk lengthened or shortened as the timing asked: resampled by a few samples, or spliced."""
    if correction.samples == 0:
        return out
    if correction.splice:
        return splice(out, correction.samples, round(session.timing.policy.crossfade_s * SAMPLE_RATE_HZ))
    return resample_to(out, len(out) + correction.samples)


def silence_event(session: LiveSession, dry: np.ndarray) -> EngineEvent | None:
    """A warning after 2 s of an all-zero microphone, and a note when it comes back."""
    if not session.source.live:
        return None
    if np.any(dry):
        back = session.warned_silence
        session.zero_input_s, session.warned_silence = 0.0, False
        return EngineEvent("info", "microphone input is back") if back else None
    session.zero_input_s += len(dry) / SAMPLE_RATE_HZ
    if session.zero_input_s >= SILENCE_WARNING_S and not session.warned_silence:
        session.warned_silence = True
        return EngineEvent("warning", "the microphone has delivered only zeros for 2 s: is it muted, or is this app "
                                      "blocked from using it (system privacy settings)?")
    return None


def chunk_metrics(session: LiveSession, codes: np.ndarray, dry: np.ndarray, out: np.ndarray, encode_ms: float,
                  decode_ms: float, queued: int, buffered: int, monitor: str, rss_mb: float) -> FrameMetrics:
    """The chunk's metrics: its latency stage by stage, codes, levels, KV and the counters."""
    config, io, timing = session.config, session.io, session.timing
    counters = io.counters
    to_ms = 1000 / SAMPLE_RATE_HZ
    stages = {  # the chunk's first sample, from the microphone to the speaker
        "input_device": input_latency_s(session) * 1000,
        "frame": float(config.chunk_ms) if session.source.live else 0.0,  # it waits for the last
        "input_wait": queued * to_ms, "encode": encode_ms, "decode": decode_ms,
        "speaker_queue": buffered * to_ms, "output_device": io.output_latency_s * 1000,
    }
    return FrameMetrics(
        chunk=session.chunks, session_s=session.chunks * config.chunk_ms / 1000,
        frames=codes.shape[1], encode_ms=encode_ms, decode_ms=decode_ms, codes=codes.astype(np.int16),
        codebooks=codes.shape[0], kv_encoder=session.codec.kv_length[0], kv_decoder=session.codec.kv_length[1],
        input_level_db=level_db(dry), output_level_db=level_db(out), queue_ms=stages["input_wait"],
        output_buffer_ms=stages["speaker_queue"], input_device_ms=stages["input_device"],
        frame_wait_ms=stages["frame"], output_device_ms=stages["output_device"],
        target_ms=timing.target * to_ms, latency_ms=sum(stages.values()),
        underruns=counters.output_underruns - session.baseline_underruns + session.carried["underruns"],
        overruns=counters.input_overruns + session.carried["overruns"],
        xruns=counters.input_xruns + counters.output_xruns - session.baseline_xruns + session.carried["xruns"],
        input_xruns=counters.input_xruns - session.baseline_input_xruns + session.carried["input_xruns"],
        dropped_frames=timing.dropped_frames,
        skipped_ms=(timing.spliced_out + timing.dropped_frames * FRAME_SIZE) * to_ms,
        stretched_ms=timing.spliced_in * to_ms,
        callback_errors=counters.callback_errors + session.carried["callback_errors"],
        monitor=session.applied_monitor or monitor, rss_mb=rss_mb,
    )


def new_dropout(session: LiveSession) -> tuple[int, str] | None:
    """(24 kHz samples missing, cause) if the listener heard a gap since the last look: the speaker
    queue ran dry, or the device reported an xrun (its callback came late: the machine or the GIL
    was busy; nothing missing from the queue then)."""
    counters = session.io.counters
    if not session.aligned:
        return None
    missing = counters.underrun_samples - session.seen_underrun_samples
    xruns = counters.input_xruns + counters.output_xruns
    new_xruns = xruns - session.seen_xruns
    calm = missing <= 0 and new_xruns <= 0 and not session.timing.recovering
    session.timing.set_output_block(math.ceil(device_burst(session, calm) * SAMPLE_RATE_HZ / session.io.output_rate))
    session.seen_xruns = xruns
    if missing <= 0 and new_xruns <= 0:
        return None
    session.seen_underrun_samples += max(0, missing)
    wait, budget_ms = session.last_wait_ms, session.config.chunk_ms
    if missing > 0:
        cause = (f"the codec took {wait:.0f} ms for a {budget_ms} ms chunk" if wait > budget_ms
                 else "the system or the audio device stalled")
    else:
        cause = "the audio device reported an xrun: the machine was too busy to feed it in time"
    return round(max(0, missing) * SAMPLE_RATE_HZ / session.io.output_rate), cause


def device_burst(session: LiveSession, calm: bool = True) -> int:
    """The most output the device has taken at once, in device samples (worker thread).

    A callback's block is not the whole story: PipeWire runs its graph in quanta (e.g. 1024
    samples at 48 kHz) and calls the app several times in a row within one, so the queue drops by
    a quantum at once. Between two looks of the worker, whatever was taken beyond the steady rate
    is such a burst. Only calm looks count (`calm`: no dropout, not winning one back, the worker
    on time): callbacks catching up after a freeze are a burst too, and covering one would keep
    the delay up for the rest of the session."""
    counters, now = session.io.counters, session.clock()
    frames = counters.output_frames
    burst = 0
    on_time = now - session.burst_at < 2 * session.config.chunk_ms / 1000
    if session.burst_frames >= 0 and calm and on_time:
        steady = (now - session.burst_at) * session.io.output_rate
        burst = int(frames - session.burst_frames - steady)
    session.burst_frames, session.burst_at = frames, now
    # Beyond a server's largest quantum a "burst" is callbacks catching up after a stall: the
    # timing covers those as waits, not as the device's granularity.
    burst = min(burst, int(BURST_CAP_S * session.io.output_rate))
    session.burst_max = max(session.burst_max, burst + counters.output_block_frames)
    return max(counters.output_block_max, session.burst_max)


def audible_bank(session: LiveSession) -> ClassicBank | None:
    """The classic paths, if they may be heard in this chunk. Put in mid-session, a bank needs
    the delay to have grown by its look-ahead first (the timing splices that in over about a
    second); until then a classic monitor plays Mimi's path, so the speaker never runs dry."""
    bank, timing = session.bank, session.timing
    if bank is not None and not session.bank_audible:
        session.bank_audible = timing.in_flight >= timing.target - timing.tolerance
    return bank if session.bank_audible else None


def heard_classic(session: LiveSession, monitor: str, start: int, ahead: int) -> dict[str, np.ndarray]:
    """The heard classic path (and the one faded out of), fed up to the chunk's end plus its
    delay, and their output aligned with the chunk."""
    bank = session.bank
    assert bank is not None  # called only with a bank
    n = len(session.chunk)
    keys = list(dict.fromkeys(key for key in (monitor, session.applied_monitor) if key in bank.codecs))
    feed_classic(session, bank, start, ahead, keys)
    out = {}
    for key in keys:  # the one faded out of is needed for the crossfade only
        out[key] = bank.aligned(key, start, n if key == monitor else min(n, FADE_SAMPLES))
        out[key] = np.pad(out[key], (0, n - len(out[key])))
    return out

def feed_classic(session: LiveSession, bank: ClassicBank, start: int, ahead: int,
                  keys: list[str] | None = None) -> None:
    """Feeds `keys` (all paths by default) the chunk and up to `ahead` input after it."""
    window = np.concatenate([session.chunk, session.source.lookahead(ahead)])
    for key in keys if keys is not None else bank.codecs:
        bank.feed(key, window, start)
