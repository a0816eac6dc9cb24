"""The live engine: source -> Mimi encoder -> decoder -> speaker, on one worker thread.

Threads and what they touch:
- PortAudio callbacks (streams.py) only copy between the device and the rings.
- The worker (`Engine._run`) does everything else: resampling, the codec, monitoring, recording,
  metrics. It never waits on a consumer.
- The caller (GUI or CLI) starts and stops the engine, flips settings (plain attribute writes the
  worker reads at the next chunk) and drains `Engine.queue` at its own rate.

Latency budget of one chunk: it is collected (chunk length), waits in the input backlog, is
computed, then waits behind the output pre-roll. The pre-roll is measured at start from warm-up
calls of the codec, not guessed.
"""

from __future__ import annotations

import collections
import math
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import psutil

from app.audio.metrics import (
    AudioTap, EngineEvent, FrameMetrics, MetricsQueue, SessionStats, level_db, process_age_s,
)
from app.audio.recorder import RecordingError, SessionRecorder
from app.audio.sources import FileSource, MicSource, OutputSink, ToneSource
from app.codec import StreamingCodec
from app.codec.tuning import tuned_threads
from app.config import FRAME_MS, FRAME_SIZE, SAMPLE_RATE_HZ

MONITORS = ("codec", "bypass", "residual")
SOURCES = ("mic", "file", "tone")
CHUNK_CHOICES_MS = tuple(range(FRAME_MS, 7 * FRAME_MS + 1, FRAME_MS))  # 80 .. 560
KV_WINDOW_CHOICES = (None, 125, 250, 500)
DEFAULT_KV_WINDOW = 250  # Mimi's trained attention context: 10 s
FADE_SAMPLES = 240  # 10 ms ramps on start and on monitor switches: no clicks
SILENCE_WARNING_S = 2.0
WARMUP_CALLS = 5  # the first call is cold (allocations); the others show steady compute
# The pre-roll covers how much slower than usual a chunk may compute (the usual compute is already
# in the path): as much again as the steady compute time, or the spread seen in warm-up if larger.
PREROLL_JITTER_SHARE = 1.0
PREROLL_MARGIN_S = 0.010  # scheduling jitter of the worker's poll loop
PREROLL_GROWTH_S = 0.010  # an underrun grows the pre-roll by this much...
PREROLL_GROWTH_INTERVAL_S = 1.0  # ...at most once a second (an xrun burst is one event, not fifty)
PREROLL_MAX_S = 0.250  # beyond this, underruns mean the machine is too slow, not jitter
# Warm-up runs with an empty KV cache; calls get dearer as it fills to the window. Every this many
# chunks the pre-roll is checked against the compute time actually seen, and raised if short.
PREROLL_REVIEW_CHUNKS = 125
# The speaker's queue may stay this far above the pre-roll (one frame) for a few chunks; longer and
# a device stall or clock drift has added latency for good, so a frame is dropped to win it back.
EXCESS_LIMIT_SAMPLES = FRAME_SIZE
EXCESS_PATIENCE_CHUNKS = 3
# Microphone and speaker clocks drift apart (~500 ppm seen between two PulseAudio sinks here): the
# speaker's queue is steered back to the pre-roll by stretching each chunk by a sample or two.
DRIFT_LEARN_CHUNKS = 25  # chunks averaged for the set point once the first chunk has played
DRIFT_SMOOTHING = 0.02  # EMA weight of the newest level reading (~4 s at 80 ms chunks)
DRIFT_GAIN = 1 / 125  # fraction of the level error corrected per chunk
DRIFT_MAX_PPM = 2000  # largest stretch: far above real drift, far below anything audible
# PortAudio's suggested latency. Through PulseAudio here: 10 ms gave no underruns and ~110 ms end
# to end (bypass, 80 ms chunks); 20 ms with 240-sample blocks ~140 ms; 20 ms free blocks xran.
DEFAULT_DEVICE_LATENCY_S = 0.010
POLL_S = 0.002
# The PortAudio callbacks are Python: they wait for the GIL whenever the worker or the GUI hold it.
# CPython hands it over every 5 ms by default, half of a 10 ms device buffer; 1 ms keeps them prompt.
GIL_SWITCH_INTERVAL_S = 0.001


class EngineError(Exception):
    """The engine cannot do what was asked (bad setting, already running, ...)."""


@dataclass
class EngineConfig:
    """Everything a session needs; `validate()` says in one line what is wrong."""

    model: Path | str
    codebooks: int | None = None
    chunk_ms: int = FRAME_MS
    kv_window: int | None = DEFAULT_KV_WINDOW
    threads: int | None = None
    source: str = "mic"
    input_file: Path | None = None
    tone_hz: float = 440.0
    input_device: int | str | None = None
    output_device: int | str | None = None
    monitor: str = "codec"
    record_dir: Path | None = None
    device_latency_s: float = DEFAULT_DEVICE_LATENCY_S

    @property
    def chunk_samples(self) -> int:
        return self.chunk_ms * SAMPLE_RATE_HZ // 1000

    def validate(self) -> None:
        if self.chunk_ms not in CHUNK_CHOICES_MS:
            raise EngineError(f"chunk {self.chunk_ms} ms: choose one of {', '.join(map(str, CHUNK_CHOICES_MS))} ms")
        if self.source not in SOURCES:
            raise EngineError(f"source '{self.source}': choose one of {', '.join(SOURCES)}")
        if self.monitor not in MONITORS:
            raise EngineError(f"monitor '{self.monitor}': choose one of {', '.join(MONITORS)}")
        if self.source == "file" and self.input_file is None:
            raise EngineError("source 'file' needs an input file")
        if self.kv_window is not None and self.kv_window < 2:
            raise EngineError(f"KV window {self.kv_window}: use at least 2 tokens, or none")


def load_codec(config: EngineConfig) -> StreamingCodec:
    """Loads the codec for `config` (slow: call it off the GUI thread); threads tuned unless given."""
    threads = config.threads or tuned_threads(config.model)
    return StreamingCodec(config.model, codebooks=config.codebooks, threads=threads, kv_window=config.kv_window)


def warm_up(codec: StreamingCodec, chunk_samples: int, calls: int = WARMUP_CALLS) -> float:
    """Runs a few chunks of quiet noise through the codec, resets it, returns each call's time (s)."""
    rng = np.random.default_rng(0)
    durations = []
    for _ in range(calls):
        pcm = (1e-3 * rng.standard_normal(chunk_samples)).astype(np.float32)
        started = time.perf_counter()
        codec.decode(codec.encode(pcm))
        durations.append(time.perf_counter() - started)
    codec.reset()
    return durations


def preroll_samples(compute_s: list[float]) -> int:
    """Speaker queue to keep ahead of the codec, from measured steady calls (24 kHz samples)."""
    steady = sorted(compute_s)
    median = steady[len(steady) // 2]
    jitter = max(PREROLL_JITTER_SHARE * median, steady[-1] - median)
    return math.ceil((jitter + PREROLL_MARGIN_S) * SAMPLE_RATE_HZ)


def _real_io(config: EngineConfig):
    from app.audio.devices import resolve_device
    from app.audio.streams import AudioIO

    use_input = config.source == "mic"
    input_device = resolve_device(config.input_device, "input") if use_input else None
    output_device = resolve_device(config.output_device, "output")
    return AudioIO(input_device, output_device, use_input=use_input, preferred_rate=SAMPLE_RATE_HZ,
                   latency=config.device_latency_s)


@dataclass
class _Session:
    """Per-run state, owned by the worker once started."""

    config: EngineConfig
    codec: StreamingCodec
    io: object
    source: object
    sink: OutputSink
    preroll: int  # 24 kHz samples kept queued for the speaker
    chunk: np.ndarray
    recorder: SessionRecorder | None = None
    seen_underrun_samples: int = 0
    # Counters before the first chunk reached the speaker: silence missing while the streams
    # start is not a glitch anyone hears, so it is not counted.
    baseline_underruns: int = 0
    last_growth: float = 0.0
    recent_compute_s: collections.deque = field(default_factory=lambda: collections.deque(maxlen=PREROLL_REVIEW_CHUNKS))
    extra_preroll: int = 0  # resampler slack and, once known, the input device's block
    excess_chunks: int = 0
    level_ema: float = 0.0  # smoothed audio in flight before each write (24 kHz samples)
    drift_setpoint: float = 0.0  # usual input wait, learned
    stretch_samples: int = 0  # net samples added (+) or removed (-) by drift correction
    chunks: int = 0
    dropped_frames: int = 0
    zero_input_s: float = 0.0
    warned_silence: bool = False
    applied_monitor: str | None = None  # None until the first chunk (fade in from silence)
    started_at: float = field(default_factory=time.perf_counter)
    requested_at: float = 0.0  # perf_counter when start() was called (before the model load)


class Engine:
    """Start/stop a live session and read its metrics from `queue`."""

    def __init__(self, io_factory: Callable[[EngineConfig], object] | None = None):
        self.queue = MetricsQueue()
        self.audio_tap = AudioTap()  # recent dry/wet audio for spectrograms, read at the display's pace
        self.stats = SessionStats()
        self.info: dict = {}
        self._io_factory = io_factory or _real_io
        self._session: _Session | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._finish_lock = threading.Lock()
        self._process = psutil.Process()  # the worker (on error) and the caller (stop) may race
        self._actions: collections.deque = collections.deque()  # (session, action) for the worker
        self.monitor = "codec"  # written by the caller, read by the worker at each chunk
        self.stop_reason: str | None = None

    # -- caller side -------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self._session is not None

    @property
    def config(self) -> EngineConfig | None:
        return self._session.config if self._session else None

    @property
    def codec(self) -> StreamingCodec | None:
        return self._session.codec if self._session else None

    def start(self, config: EngineConfig, codec: StreamingCodec | None = None, threaded: bool = True) -> None:
        """Opens devices and starts streaming. Raises EngineError, CodecError, DeviceError, AudioFileError."""
        if self.running:
            raise EngineError("the engine is already running: stop it first")
        requested_at = time.perf_counter()
        config.validate()
        codec = codec or load_codec(config)
        source = None
        if config.source == "file":
            source = FileSource(Path(config.input_file))
        elif config.source == "tone":
            source = ToneSource(config.tone_hz)
        warmup_s = warm_up(codec, config.chunk_samples)
        io = self._io_factory(config)
        recorder = None
        try:
            if source is None:
                source = MicSource(io.input_ring, io.input_rate)
            sink = OutputSink(io.output_ring, io.output_rate, config.chunk_samples)
            slack = sink.slack + getattr(source, "slack", 0)  # what the resamplers hold back
            preroll = preroll_samples(warmup_s[1:]) + slack  # the first call is cold
            # The first chunk needs a whole chunk of input before it can play: cover that too.
            sink.write_silence(preroll + config.chunk_samples)
            recorder = SessionRecorder(config.record_dir) if config.record_dir else None
            io.start()
        except BaseException:
            io.close()
            if recorder is not None:
                recorder.close()
            raise
        sys.setswitchinterval(min(sys.getswitchinterval(), GIL_SWITCH_INTERVAL_S))
        self.monitor = config.monitor
        self.stats = SessionStats()
        self.stop_reason = None
        self._session = _Session(config, codec, io, source, sink, preroll, np.zeros(config.chunk_samples, np.float32),
                                 recorder, extra_preroll=slack, requested_at=requested_at)
        self.info = {
            "model": str(config.model), "codebooks": codec.num_codebooks, "bitrate_bps": codec.bitrate_bps,
            "chunk_ms": config.chunk_ms,
            "kv_window": config.kv_window, "source": config.source,
            "input_rate": io.input_rate if config.source == "mic" else None,
            "output_rate": io.output_rate, "input_latency_ms": self._input_latency_s(io, config) * 1000,
            "output_latency_ms": io.output_latency_s * 1000, "preroll_ms": preroll * 1000 / SAMPLE_RATE_HZ,
            "warmup_ms": [round(t * 1000, 1) for t in warmup_s],
            "recording": [str(recorder.input_path), str(recorder.output_path)] if recorder else None,
        }
        self.queue.put(EngineEvent("started", f"streaming {config.source} through {Path(str(config.model)).name}"))
        if codec.kv_warning:
            self.queue.put(EngineEvent("warning", codec.kv_warning))
        self._stop.clear()
        if threaded:
            self._thread = threading.Thread(target=self._run, name="mimi-worker", daemon=True)
            self._thread.start()

    def stop(self, reason: str = "stopped") -> dict:
        """Stops streaming (idempotent); returns the session summary."""
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=5)
        self._thread = None
        self._finish(reason)
        return self.summary()

    def summary(self) -> dict:
        return {**self.stats.summary(), **self.info, "stop_reason": self.stop_reason,
                "metrics_dropped": self.queue.dropped}

    def request_codec(self, model: Path | str | None = None, codebooks: int | None = None) -> threading.Thread:
        """Loads another model in the background and swaps it in between chunks.

        Audio keeps flowing with the current codec while the new one loads; an error becomes an
        "error" event and the current codec stays. A load that ends after the session does is
        dropped.
        """
        session = self._require_session()
        config = replace(session.config, model=model or session.config.model, codebooks=codebooks)

        def load() -> None:
            codec = load_codec(config)
            warm_up(codec, config.chunk_samples, calls=1)

            def swap(current: _Session) -> None:
                current.codec, current.config = codec, replace(current.config, model=config.model, codebooks=codebooks)
                self._announce_codec(current)

            self._schedule(session, swap)

        return self._in_background(load, "could not switch model")

    def request_codebooks(self, codebooks: int) -> threading.Thread:
        """Switches the codebook count of the running codec, its stream state carrying on.

        The decoder for k < K is prepared in the background (built once, then cached); the
        switch itself happens between two chunks.
        """
        session = self._require_session()
        codec = session.codec

        def prepare() -> None:
            codec.prepare_codebooks(codebooks)

            def switch(current: _Session) -> None:
                if current.codec is codec:  # not replaced by another model meanwhile
                    codec.set_codebooks(codebooks)
                    current.config = replace(current.config, codebooks=codebooks)
                    self._announce_codec(current)

            self._schedule(session, switch)

        return self._in_background(prepare, "could not switch codebooks")

    def set_kv_window(self, window: int | None) -> None:
        """Changes the KV window of the running codec; it applies at the next chunk."""
        session = self._require_session()

        def apply(current: _Session) -> None:
            current.codec.set_kv_window(window)
            current.config = replace(current.config, kv_window=window)
            self.info["kv_window"] = window

        self._schedule(session, apply)

    def set_recording(self, folder: Path | None) -> None:
        """Starts recording into `folder` (or stops, with None) between two chunks."""
        session = self._require_session()

        def apply(current: _Session) -> None:
            if current.recorder is not None:
                current.recorder.close()
                current.recorder = None
            if folder is not None:
                try:
                    current.recorder = SessionRecorder(folder)
                except RecordingError as exc:
                    self.queue.put(EngineEvent("error", str(exc)))
            paths = [str(current.recorder.input_path), str(current.recorder.output_path)] if current.recorder else None
            self.info["recording"] = paths
            self.queue.put(EngineEvent("recording", "\n".join(paths or [])))

        self._schedule(session, apply)

    def _require_session(self) -> _Session:
        session = self._session
        if session is None:
            raise EngineError("the engine is not running")
        return session

    def _schedule(self, session: _Session, action: Callable[[_Session], None]) -> None:
        # deque.append is atomic: the caller's thread hands the action to the worker.
        self._actions.append((session, action))

    def _in_background(self, work: Callable[[], None], failure: str) -> threading.Thread:
        def run() -> None:
            try:
                work()
            except Exception as exc:  # noqa: BLE001 - reported to the user, the engine keeps running
                self.queue.put(EngineEvent("error", f"{failure}: {exc}"))

        loader = threading.Thread(target=run, name="mimi-loader", daemon=True)
        loader.start()
        return loader

    # -- worker side -------------------------------------------------------------------------

    @staticmethod
    def _input_latency_s(io, config: EngineConfig) -> float:
        return io.input_latency_s if config.source == "mic" else 0.0

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                if not self.step():
                    time.sleep(POLL_S)
        except Exception as exc:  # noqa: BLE001 - the worker must end cleanly and say why
            self.queue.put(EngineEvent("error", f"{type(exc).__name__}: {exc}"))
            self._finish(f"error: {exc}")

    def step(self) -> bool:
        """Processes one chunk if one is ready; returns whether it did. Worker thread only."""
        session = self._session
        if session is None:
            return False
        error = getattr(session.io, "error", None)
        if error:
            self.queue.put(EngineEvent("error", error))
            self._finish(f"device error: {error}")
            return False
        self._run_actions(session)
        self._adapt_preroll(session)
        config, source, sink = session.config, session.source, session.sink
        if source.live:
            self._catch_up(session)
        elif sink.level() > session.preroll:
            return False  # generated sources are paced by the speaker
        if not source.read(session.chunk):
            return False
        queued = source.backlog() if source.live else 0  # input still waiting behind this chunk
        queued_ms = queued * 1000 / SAMPLE_RATE_HZ
        dry = session.chunk
        codec = session.codec
        codes = codec.encode(dry)
        encode_ms = codec.last_encode_ms
        wet = codec.decode(codes)
        decode_ms = codec.last_decode_ms
        out = self._monitor_mix(session, dry, wet)
        if session.chunks == 0:
            self._align_first_chunk(session)
            self._note_first_audio(session, sink.level())
        buffered = sink.level()
        if source.live and self._latency_crept(session, buffered):
            session.dropped_frames += len(dry) // FRAME_SIZE  # skip this chunk: latency goes back down
        else:
            sink.write(self._match_clocks(session, out, queued, buffered) if source.live else out)
        self.audio_tap.append(dry, wet)
        if session.recorder is not None:
            session.recorder.write(dry, wet)
        self._watch_silence(session, dry)
        session.chunks += 1
        self._review_preroll(session, (encode_ms + decode_ms) / 1000)
        self._publish(session, codes, dry, out, encode_ms, decode_ms, queued_ms, buffered)
        return True

    def _note_first_audio(self, session: _Session, buffered: int) -> None:
        """When the first chunk will be heard, as the latency readout reckons it: now, plus the
        audio queued ahead of it, plus the output device's latency."""
        ahead = buffered / SAMPLE_RATE_HZ + session.io.output_latency_s
        self.info["first_audio_s"] = {
            "after_start": round(time.perf_counter() - session.requested_at + ahead, 3),  # load, devices, pre-roll
            "after_launch": round(process_age_s() + ahead, 3),  # from process start
        }

    def _align_first_chunk(self, session: _Session) -> None:
        # The streams start at slightly different moments; whatever the speaker consumed before
        # the first chunk was silence. Top it back up so the first chunk lands behind a full pre-roll.
        counters = session.io.counters
        if session.source.live:
            # Input arrives in device blocks, so a chunk can be ready up to a block later than
            # the last: now that the block size is known, keep that much more queued.
            block = math.ceil(counters.input_block_frames * SAMPLE_RATE_HZ / session.io.input_rate)
            session.extra_preroll += block
            session.preroll += block
            self.info["preroll_ms"] = session.preroll * 1000 / SAMPLE_RATE_HZ
        session.baseline_underruns = counters.output_underruns
        session.seen_underrun_samples = counters.underrun_samples
        shortfall = session.preroll - session.sink.level()
        if shortfall > 0:
            session.sink.write_silence(shortfall)

    @staticmethod
    def _match_clocks(session: _Session, out: np.ndarray, queued: int, buffered: int) -> np.ndarray:
        """Stretches or shrinks the chunk by a few samples so the audio in flight stays put.

        In flight = input waiting + speaker queue, in 24 kHz samples. Its set point is the pre-roll
        plus the input's usual wait (how the device blocks fall against chunks, learned over the
        first seconds); a drift between the two clocks shows as a slow departure from it.
        """
        in_flight = queued + buffered
        if session.chunks < DRIFT_LEARN_CHUNKS:
            session.drift_setpoint += queued / DRIFT_LEARN_CHUNKS
            session.level_ema = in_flight
            return out
        session.level_ema += DRIFT_SMOOTHING * (in_flight - session.level_ema)
        error = session.preroll + session.drift_setpoint - session.level_ema  # > 0: runs low, add samples
        limit = max(1, round(len(out) * DRIFT_MAX_PPM / 1e6))
        adjust = int(np.clip(round(error * DRIFT_GAIN), -limit, limit))
        if adjust == 0:
            return out
        session.stretch_samples += adjust
        n = len(out)
        return np.interp(np.linspace(0, n - 1, n + adjust), np.arange(n), out).astype(np.float32)

    @staticmethod
    def _latency_crept(session: _Session, buffered: int) -> bool:
        if buffered - session.preroll <= EXCESS_LIMIT_SAMPLES:
            session.excess_chunks = 0
            return False
        session.excess_chunks += 1
        if session.excess_chunks < EXCESS_PATIENCE_CHUNKS:
            return False
        session.excess_chunks = 0
        return True

    def _review_preroll(self, session: _Session, compute_s: float) -> None:
        session.recent_compute_s.append(compute_s)
        if session.chunks % PREROLL_REVIEW_CHUNKS or len(session.recent_compute_s) < PREROLL_REVIEW_CHUNKS:
            return
        needed = preroll_samples(list(session.recent_compute_s)) + session.extra_preroll
        if needed > session.preroll:
            session.sink.write_silence(needed - session.preroll)
            session.preroll = needed
            self.info["preroll_ms"] = session.preroll * 1000 / SAMPLE_RATE_HZ

    def _adapt_preroll(self, session: _Session) -> None:
        # The warm-up measured compute; device block timing shows only once audio flows. If the
        # speaker ran dry, refill what it missed and keep that much more queued from now on.
        missing = session.io.counters.underrun_samples - session.seen_underrun_samples
        if session.chunks == 0 or missing <= 0:
            return
        session.seen_underrun_samples += missing
        now = time.perf_counter()
        if now - session.last_growth < PREROLL_GROWTH_INTERVAL_S or session.preroll >= PREROLL_MAX_S * SAMPLE_RATE_HZ:
            return
        session.last_growth = now
        growth = int(PREROLL_GROWTH_S * SAMPLE_RATE_HZ)
        session.preroll += growth
        session.sink.write_silence(growth)
        self.info["preroll_ms"] = session.preroll * 1000 / SAMPLE_RATE_HZ

    def _catch_up(self, session: _Session) -> None:
        # More than one chunk waiting beyond the one about to be read: drop whole frames.
        excess = session.source.backlog() - 2 * session.config.chunk_samples
        if excess > 0:
            session.dropped_frames += session.source.drop_frames(math.ceil(excess / FRAME_SIZE))

    def _run_actions(self, session: _Session) -> None:
        while self._actions:
            owner, action = self._actions.popleft()
            if owner is session:  # asked of an earlier session: nothing to apply it to
                action(session)

    def _announce_codec(self, session: _Session) -> None:
        self.info.update(model=str(session.config.model), codebooks=session.codec.num_codebooks,
                         bitrate_bps=session.codec.bitrate_bps)
        self.queue.put(EngineEvent("model", f"now {Path(str(session.config.model)).name}, "
                                            f"{session.codec.num_codebooks} codebooks"))

    def _monitor_mix(self, session: _Session, dry: np.ndarray, wet: np.ndarray) -> np.ndarray:
        mode = self.monitor if self.monitor in MONITORS else "codec"

        def signal(name: str) -> np.ndarray:
            return wet if name == "codec" else dry if name == "bypass" else dry - wet

        out = np.array(signal(mode), dtype=np.float32)
        previous = session.applied_monitor
        if previous != mode:
            ramp = np.linspace(0.0, 1.0, FADE_SAMPLES, dtype=np.float32)
            before = signal(previous)[:FADE_SAMPLES] if previous else np.zeros(FADE_SAMPLES, np.float32)
            out[:FADE_SAMPLES] = before * (1 - ramp) + out[:FADE_SAMPLES] * ramp
            session.applied_monitor = mode
        return out

    def _watch_silence(self, session: _Session, dry: np.ndarray) -> None:
        if not session.source.live:
            return
        if np.any(dry):
            if session.warned_silence:
                self.queue.put(EngineEvent("warning", "microphone input is back"))
            session.zero_input_s, session.warned_silence = 0.0, False
            return
        session.zero_input_s += len(dry) / SAMPLE_RATE_HZ
        if session.zero_input_s >= SILENCE_WARNING_S and not session.warned_silence:
            session.warned_silence = True
            self.queue.put(EngineEvent(
                "warning", "the microphone has delivered only zeros for 2 s: is it muted, or is this app "
                           "blocked from using it (system privacy settings)?"))

    def _publish(self, session: _Session, codes, dry, out, encode_ms, decode_ms, queued_ms, buffered) -> None:
        config, io = session.config, session.io
        counters = io.counters
        compute_ms = encode_ms + decode_ms
        buffered_ms = buffered * 1000 / SAMPLE_RATE_HZ
        # A chunk's last sample: device input latency, backlog, compute, queued output, output latency.
        latency_ms = (self._input_latency_s(io, config) * 1000 + queued_ms + compute_ms + buffered_ms
                      + config.chunk_ms * (1 if session.source.live else 0) + io.output_latency_s * 1000)
        metrics = FrameMetrics(
            chunk=session.chunks, session_s=session.chunks * config.chunk_ms / 1000,
            frames=codes.shape[1], encode_ms=encode_ms, decode_ms=decode_ms, codes=codes.astype(np.int16),
            codebooks=codes.shape[0], kv_encoder=session.codec.kv_length[0], kv_decoder=session.codec.kv_length[1],
            input_level_db=level_db(dry), output_level_db=level_db(out), queue_ms=queued_ms,
            output_buffer_ms=buffered_ms, latency_ms=latency_ms, underruns=counters.output_underruns - session.baseline_underruns,
            overruns=counters.input_overruns, xruns=counters.input_xruns + counters.output_xruns,
            dropped_frames=session.dropped_frames,
            callback_errors=counters.callback_errors, monitor=session.applied_monitor or self.monitor,
            rss_mb=self._process.memory_info().rss / 1e6,
        )
        self.stats.add(metrics)
        self.queue.put(metrics)
        played = session.chunks * config.chunk_samples
        self.info["drift_correction_ppm"] = round(session.stretch_samples / played * 1e6) if played else 0

    def _finish(self, reason: str) -> None:
        with self._finish_lock:
            session, self._session = self._session, None
        if session is None:
            return
        self.stop_reason = reason
        try:
            session.io.stop()
        finally:
            session.io.close()
            if session.recorder is not None:
                session.recorder.close()
        self.queue.put(EngineEvent("stopped", reason))
