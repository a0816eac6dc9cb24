"""The live engine: source -> Mimi encoder -> decoder -> speaker, on one worker thread.

Threads and what they touch:
- PortAudio callbacks (streams.py) only copy between the device and the rings.
- The worker (`Engine._run`) does everything else: resampling, the codec, monitoring, recording,
  metrics. It never waits on a consumer.
- The caller (GUI or CLI) starts and stops the engine, flips settings (plain attribute writes the
  worker reads at the next chunk) and drains `Engine.queue` at its own rate.

Timing: one controller (timing.py) decides how much audio is kept in flight, from the waits the
worker measures, and the worker carries out its corrections (splice.py). Every chunk's latency is
published stage by stage (FrameMetrics.budget_ms).
"""

from __future__ import annotations

import collections
import json
import logging
import math
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import psutil

from app.audio.classic_paths import ClassicBank, lookahead_needed
from app.audio.engine_config import (  # noqa: F401 - the engine's public names, re-exported
    CHUNK_CHOICES_MS,
    DEFAULT_DEVICE_LATENCY_S,
    MONITORS,
    SOURCES,
    WARMUP_CALLS,
    EngineConfig,
    EngineError,
    initial_cover_s,
    load_codec,
    real_io,
    warm_up,
)
from app.audio.io_base import IOBase
from app.audio.live_changes import LiveChanges
from app.audio.metrics import EngineEvent, MetricsQueue, SessionStats, process_age_s
from app.audio.reconnect import (
    RECONNECT_TIMEOUT_S,
    open_devices,
    reconnect_session,
    reinitialize_portaudio,
    stream_trouble,
)
from app.audio.recorder import SessionRecorder
from app.audio.replay_control import Replayer
from app.audio.session import (  # noqa: F401 - FADE_SAMPLES re-exported
    FADE_SAMPLES,
    LiveSession,
    SessionClock,
    apply_correction,
    audible_bank,
    chunk_metrics,
    feed_classic,
    heard_classic,
    input_latency_s,
    monitor_mix,
    new_dropout,
    output_settling,
    silence_event,
)
from app.audio.sources import FileSource, MicSource, OutputSink, Source, ToneSource
from app.audio.tape import AudioTap
from app.audio.timing import TimingController, TimingPolicy
from app.codec import StreamingCodec
from app.config import REPLAY_CLASSIC_KEYS, SAMPLE_RATE_HZ

log = logging.getLogger(__name__)

POLL_S = 0.002
# The PortAudio callbacks are Python: they wait for the GIL whenever the worker or the GUI hold it.
# CPython hands it over every 5 ms by default, half of a 10 ms device buffer; 1 ms keeps them prompt.
GIL_SWITCH_INTERVAL_S = 0.001


class Engine(LiveChanges):
    """Start/stop a live session and read its metrics from `queue`; switches and settings while
    it runs are LiveChanges (live_changes.py)."""

    def __init__(self, io_factory: Callable[[EngineConfig], IOBase] | None = None,
                 timing_policy: TimingPolicy | None = None):
        self.queue = MetricsQueue()
        self.audio_tap = AudioTap()  # the last seconds: spectrograms, quality readout, replay
        self.replayer = Replayer(self.audio_tap, lambda kind, message: self.queue.put(EngineEvent(kind, message)),
                                 worker_idle=lambda: self._between_chunks(0.5) if self.running else None)
        self._last_output_device: int | str | None = None  # where a replay after Stop plays
        self.stats = SessionStats()
        self.info: dict = {}
        self._io_factory = io_factory or real_io
        # Only real PortAudio needs re-initialising to see a restarted server's devices.
        self._real_portaudio = io_factory is None
        self._reinitialize = reinitialize_portaudio if io_factory is None else (lambda: None)
        self.reconnect_timeout_s = RECONNECT_TIMEOUT_S  # a lost device is waited for this long
        self._session: LiveSession | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._finish_lock = threading.Lock()
        self._process = psutil.Process()  # the worker (on error) and the caller (stop) may race
        self._actions: collections.deque = collections.deque()  # (session, action) for the worker
        self.monitor = "codec"  # written by the caller, read by the worker at each chunk
        self.stop_reason: str | None = None
        self.timing_policy = timing_policy
        self._chunk_done = threading.Event()  # set by the worker after each chunk (for loaders)
        self._saved_switch_interval: float | None = None

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
        self.replayer.cancel()  # one after Stop plays on its own stream: the session's comes first
        codec = codec or load_codec(config)
        source: Source | None = None
        if config.source == "file":
            assert config.input_file is not None  # validate() requires one
            source = FileSource(Path(config.input_file))
        elif config.source == "tone":
            source = ToneSource(config.tone_hz)
        warmup_s = warm_up(codec, config.chunk_samples)
        if config.replay_ready:  # before any audio flows (replay.SideDecoders)
            self.replayer.prepare(codec)
        bank, bank_warning = ClassicBank.open() if config.classic_paths else (None, None)
        io = open_devices(config, self._io_factory, self._reinitialize if self._real_portaudio else None)
        recorder = None
        try:
            if source is None:
                # the microphone: real_io opens an input for source "mic"
                assert io.input_ring is not None and io.input_rate is not None
                source = MicSource(io.input_ring, io.input_rate)
            sink = OutputSink(io.output_ring, io.output_rate, config.chunk_samples)
            slack = sink.slack + getattr(source, "slack", 0)  # what the resamplers hold back
            cover = initial_cover_s(warmup_s[1:]) + slack / SAMPLE_RATE_HZ  # the first call is cold
            timing = TimingController(config.chunk_samples, cover, self.timing_policy)
            if bank is not None:  # every path waits as long as the slowest classic one: all in step
                timing.set_cover_extra(bank.cover_extra_s)
            # The first chunk needs a whole chunk of input before it can play: cover that too.
            sink.write_silence(timing.target + config.chunk_samples)
            recorder = SessionRecorder(config.record_dir) if config.record_dir else None
            io.start()
        except BaseException:
            io.close()
            if recorder is not None:
                recorder.close()
            raise
        self._saved_switch_interval = sys.getswitchinterval()
        sys.setswitchinterval(min(self._saved_switch_interval, GIL_SWITCH_INTERVAL_S))
        self.monitor = config.monitor
        self._last_output_device = config.output_device
        self.stats = SessionStats()
        self.stop_reason = None
        clock = SessionClock(io)
        self._session = LiveSession(config, codec, io, source, sink, timing, np.zeros(config.chunk_samples, np.float32),
                                 clock, recorder, requested_at=requested_at, bank=bank)
        self.info = {
            "model": str(config.model), "codebooks": codec.num_codebooks, "bitrate_bps": codec.bitrate_bps,
            "chunk_ms": config.chunk_ms,
            "kv_window": config.kv_window, "source": config.source,
            "input_rate": io.input_rate if config.source == "mic" else None,
            "output_rate": io.output_rate, "input_latency_ms": input_latency_s(self._session) * 1000,
            "output_latency_ms": io.output_latency_s * 1000, "preroll_ms": timing.target * 1000 / SAMPLE_RATE_HZ,
            "warmup_ms": [round(t * 1000, 1) for t in warmup_s],
            "recording": [str(recorder.input_path), str(recorder.output_path)] if recorder else None,
            "reconnects": 0,
            "classic_bps": bank.bps() if bank else None,
            "classic_delay_samples": {key: bank.delay(key) for key in bank.codecs} if bank else None,
        }
        self.queue.put(EngineEvent("started", f"streaming {config.source} through {Path(str(config.model)).name}"))
        if codec.kv_warning:
            self.queue.put(EngineEvent("warning", codec.kv_warning))
        if bank_warning:
            self.queue.put(EngineEvent("warning", bank_warning))
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

    def replay(self, classic_keys: Sequence[str] = REPLAY_CLASSIC_KEYS, fewer: int | None = None,
               seconds: float | None = None) -> list[str]:
        """Plays the last seconds of input through each path in turn (replay.py): in place of the
        monitor while streaming, else on the last session's output. Returns the clips' labels;
        raises ReplayError when there is nothing to replay yet."""
        return self.replayer.start(self.running, self._last_output_device, classic_keys, fewer, seconds)

    @property
    def replaying(self) -> bool:
        return self.replayer.active

    def cancel_replay(self) -> None:
        self.replayer.cancel()

    def summary(self) -> dict:
        return {**self.stats.summary(), **self.info, "stop_reason": self.stop_reason,
                "metrics_dropped": self.queue.dropped}

    # -- worker side -------------------------------------------------------------------------

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
        error = getattr(session.io, "error", None) or stream_trouble(session)
        if error:
            if not self._reconnect(session, error):
                self.queue.put(EngineEvent("error", error))
                self._finish(f"device error: {error}")
            return False
        self._run_actions(session)
        source, sink, timing = session.source, session.sink, session.timing
        self._watch_dropouts(session)
        if not session.aligned and output_settling(session):
            return False
        if source.live:  # input piled up behind a stall: drop it, the timing says how much
            drop = timing.frames_to_drop(sink.level(), source.backlog())
            if drop:
                timing.note_dropped(source.drop_frames(drop))
        elif sink.level() > timing.target:
            return False  # generated sources are paced by the speaker
        bank, monitor = audible_bank(session), self.monitor
        ahead = lookahead_needed(bank, monitor, session.applied_monitor, len(session.chunk), FADE_SAMPLES)
        if not source.read(session.chunk, ahead=ahead):  # a classic path heard: its look-ahead too
            return False
        start, session.input_pos = session.input_pos, session.input_pos + len(session.chunk)
        queued = source.backlog() if source.live else 0  # input still waiting behind this chunk
        dry = session.chunk
        codec = session.codec
        started = session.clock()
        codes = codec.encode(dry)
        encode_ms = codec.last_encode_ms
        wet = codec.decode(codes)
        decode_ms = codec.last_decode_ms
        fading = bank is not None and (monitor in bank.codecs or session.applied_monitor in bank.codecs)
        classic = heard_classic(session, monitor, start, ahead) if fading else None
        compute_s = session.clock() - started
        out = monitor_mix(session, monitor, dry, wet, classic)
        if not session.aligned:
            self._align_first_chunk(session, queued, compute_s)
        buffered = sink.level()
        correction = timing.correct(session.clock(), buffered, queued, compute_s, adjust_level=source.live,
                                    lookahead=ahead if source.live else 0)
        sink.write(apply_correction(session, correction, self.replayer.over(out)))
        if session.bank is not None:  # the paths not heard: only the input already there, never waiting
            feed_classic(session, session.bank, start, session.bank.max_delay)
        self._forward_timing_events(session)
        self.audio_tap.append(dry, wet, out, codes, session.applied_monitor or monitor, codec)  # as heard
        if session.recorder is not None:
            session.recorder.write(dry, wet)  # never blocks: a writer thread takes it
            if session.recorder.error:  # e.g. a full disk: recording stops, streaming goes on
                self._stop_recording(session, session.recorder.error)
        warning = silence_event(session, dry)
        if warning is not None:
            self.queue.put(warning)
        session.chunks += 1
        self._publish(session, codes, dry, out, encode_ms, decode_ms, queued, buffered)
        codec.cut_kv_caches()  # a cut due: now, in the wait for the next frame, not on its path
        self._chunk_done.set()
        return True

    def _align_first_chunk(self, session: LiveSession, queued: int, compute_s: float) -> None:
        # The streams start at slightly different moments; whatever the speaker consumed before
        # the first chunk was silence. Top it back up so the first chunk lands behind a full
        # target. Input arrives in device blocks, so a chunk can be ready up to a block later
        # than the last: until live waits are known, the target covers one block more.
        counters, timing = session.io.counters, session.timing
        if session.source.live:
            assert session.io.input_rate is not None  # the microphone's streams have an input
            block = math.ceil(counters.input_block_frames * SAMPLE_RATE_HZ / session.io.input_rate)
            timing.initial_cover_s += block / SAMPLE_RATE_HZ
            timing.set_input_block(block)
        timing.set_output_block(math.ceil(counters.output_block_frames * SAMPLE_RATE_HZ / session.io.output_rate))
        session.baseline_underruns = counters.output_underruns
        session.baseline_xruns = session.seen_xruns = counters.input_xruns + counters.output_xruns
        session.baseline_input_xruns = counters.input_xruns
        session.seen_underrun_samples = counters.underrun_samples
        session.sink.write_silence(timing.first_chunk_silence(session.sink.level(), queued, compute_s))
        self.info["preroll_ms"] = timing.target * 1000 / SAMPLE_RATE_HZ
        if session.chunks == 0:
            self._note_first_audio(session, session.sink.level())
        session.aligned = True

    def _watch_dropouts(self, session: LiveSession) -> None:
        """Tells the timing when the listener heard a gap (see session.new_dropout)."""
        dropout = new_dropout(session)
        if dropout is not None:
            session.timing.note_underrun(session.clock(), *dropout)
            self._forward_timing_events(session)

    def _reconnect(self, session: LiveSession, why: str) -> bool:
        ok = reconnect_session(session, why, self._io_factory, self._reinitialize, self._stop.wait,
                               self.queue.put, self.reconnect_timeout_s)
        self.info["reconnects"] = session.reconnects
        return ok

    def _forward_timing_events(self, session: LiveSession) -> None:
        events = session.timing.events
        while events:
            kind, message = events.popleft()
            self.queue.put(EngineEvent("warning" if kind == "behind" else "info", message))

    def _note_first_audio(self, session: LiveSession, buffered: int) -> None:
        """When the first chunk will be heard, as the latency readout reckons it: now, plus the
        audio queued ahead of it, plus the output device's latency."""
        ahead = buffered / SAMPLE_RATE_HZ + session.io.output_latency_s
        self.info["first_audio_s"] = {
            "after_start": round(time.perf_counter() - session.requested_at + ahead, 3),  # load, devices, pre-roll
            "after_launch": round(process_age_s() + ahead, 3),  # from process start
        }

    def _run_actions(self, session: LiveSession) -> None:
        while self._actions:
            owner, action = self._actions.popleft()
            if owner is session:  # asked of an earlier session: nothing to apply it to
                action(session)

    def _announce_codec(self, session: LiveSession) -> None:
        self.info.update(model=str(session.config.model), codebooks=session.codec.num_codebooks,
                         bitrate_bps=session.codec.bitrate_bps)
        self.queue.put(EngineEvent("model", f"now {Path(str(session.config.model)).name}, "
                                            f"{session.codec.num_codebooks} codebooks"))

    def _publish(self, session: LiveSession, codes, dry, out, encode_ms, decode_ms, queued, buffered) -> None:
        session.last_wait_ms = queued * 1000 / SAMPLE_RATE_HZ + encode_ms + decode_ms
        heard = session.applied_monitor or self.monitor  # a classic path not yet audible plays Mimi's
        metrics = chunk_metrics(session, codes, dry, out, encode_ms, decode_ms, queued, buffered, heard,
                                self._process.memory_info().rss / 1e6)
        self.stats.add(metrics)
        self.queue.put(metrics)
        self.info["drift_correction_ppm"] = round(session.timing.drift_ppm)
        self.info["preroll_ms"] = metrics.target_ms
        if session.bank is not None:  # measured from the bytes each path really produced
            self.info["classic_bps"] = session.bank.bps()
            self.info["classic_short_samples"] = session.bank.short_samples

    def _finish(self, reason: str) -> None:
        with self._finish_lock:
            session, self._session = self._session, None
        if session is None:
            return
        self.stop_reason = reason
        self.replayer.ended_with_session()
        try:
            session.io.stop()
        finally:
            session.io.close()
            if session.recorder is not None:
                session.recorder.close()
            if self._saved_switch_interval is not None:
                sys.setswitchinterval(self._saved_switch_interval)
                self._saved_switch_interval = None
        timing = session.timing
        self.info["timing"] = {"disturbances": timing.episodes,
                               "spliced_out_ms": round(timing.spliced_out * 1000 / SAMPLE_RATE_HZ, 1),
                               "spliced_in_ms": round(timing.spliced_in * 1000 / SAMPLE_RATE_HZ, 1)}
        log.info("session summary: %s", json.dumps(self.summary(), default=str))
        self.queue.put(EngineEvent("stopped", reason))
