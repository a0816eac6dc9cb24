"""What the engine tells its consumers: per-chunk metrics and events, through a bounded queue.

Written by the worker thread, drained by whoever displays them (GUI timer, CLI) at their own rate.
The queue never blocks and never grows: when a consumer is slow the oldest items go (and are
counted), so a stalled GUI can never stall the audio.
"""

from __future__ import annotations

import collections
import math
import os
import time
from dataclasses import dataclass, field

import numpy as np

from app.config import FRAME_MS, FRAME_S
from app.units import percentiles

METRICS_QUEUE_SIZE = 512  # ~40 s of 80 ms chunks: more than any consumer needs to catch up
STATS_WINDOW_CHUNKS = 4096  # the summary's percentiles cover the last ~5 minutes of 80 ms chunks


@dataclass(frozen=True, slots=True)
class FrameMetrics:
    """One processed chunk (one or more 80 ms code frames)."""

    chunk: int  # chunk number since start
    session_s: float  # audio time of the chunk's end since start
    frames: int  # code frames in the chunk
    encode_ms: float  # wall time of the encoder call for the whole chunk
    decode_ms: float
    codes: np.ndarray  # int16 [k, frames]: the codes sent over the "wire"
    codebooks: int
    kv_encoder: int  # KV cache length after the call
    kv_decoder: int
    input_level_db: float  # RMS of the chunk before / after the codec (dBFS)
    output_level_db: float
    queue_ms: float  # input audio waiting behind this chunk when it was taken
    output_buffer_ms: float  # audio queued for the speaker when this chunk was written
    input_device_ms: float  # the input device's latency (PortAudio's figure; 0 for generated input)
    frame_wait_ms: float  # the chunk's first sample waits for its last (0 for generated input)
    output_device_ms: float  # the output device's latency (PortAudio's figure)
    target_ms: float  # audio the timing controller keeps in flight (input wait + compute + queue)
    latency_ms: float  # end-to-end estimate: the sum of budget_ms
    underruns: int  # cumulative counters since start
    overruns: int
    xruns: int  # device callbacks PortAudio flagged (its own under/overflows), input + output
    input_xruns: int  # of those, the input device's (the rest are the output's)
    dropped_frames: int  # whole input frames dropped to win back a pile-up
    skipped_ms: float  # audio removed to win back delay: dropped frames and splices
    stretched_ms: float  # audio added by splices (room made after a shortfall)
    callback_errors: int
    monitor: str
    rss_mb: float  # process resident memory when the chunk was published

    @property
    def budget_ms(self) -> dict[str, float]:
        """The chunk's end-to-end latency, stage by stage (their sum is `latency_ms`)."""
        return {"input_device": self.input_device_ms, "frame": self.frame_wait_ms, "input_wait": self.queue_ms,
                "encode": self.encode_ms, "decode": self.decode_ms, "speaker_queue": self.output_buffer_ms,
                "output_device": self.output_device_ms}

    @property
    def dropouts(self) -> int:
        """What a listener hears as gaps: the speaker queue running dry, and device xruns."""
        return self.underruns + self.xruns

    @property
    def output_xruns(self) -> int:
        """Of the device xruns, the output device's."""
        return self.xruns - self.input_xruns

    @property
    def compute_ms(self) -> float:
        return self.encode_ms + self.decode_ms

    @property
    def rtf(self) -> float:
        """Compute time over audio time for this chunk (below 1 keeps up)."""
        return self.compute_ms / (self.frames * FRAME_MS)


@dataclass(frozen=True, slots=True)
class EngineEvent:
    """Something a person should know: started, stopped (and why), a warning, an error."""

    kind: str  # "started" | "stopped" | "warning" | "error" | "info" | "model" | "recording" | "replay" | "classic"
    message: str


class MetricsQueue:
    """Bounded, non-blocking, single-producer queue; the oldest items are dropped when full."""

    def __init__(self, maxlen: int = METRICS_QUEUE_SIZE):
        self._items: collections.deque = collections.deque(maxlen=maxlen)
        self.dropped = 0

    def put(self, item: FrameMetrics | EngineEvent) -> None:
        if len(self._items) == self._items.maxlen:
            self.dropped += 1
        self._items.append(item)  # deque.append is atomic; with maxlen it evicts the oldest

    def drain(self, limit: int | None = None) -> list[FrameMetrics | EngineEvent]:
        out: list[FrameMetrics | EngineEvent] = []
        while self._items and (limit is None or len(out) < limit):
            out.append(self._items.popleft())
        return out


def level_db(pcm: np.ndarray) -> float:
    """RMS level in dBFS, floored at -120."""
    if pcm.size == 0:
        return -120.0
    rms = math.sqrt(float(np.dot(pcm, pcm)) / pcm.size)
    return max(-120.0, 20.0 * math.log10(rms)) if rms > 0 else -120.0


@dataclass
class SessionStats:
    """Running summary of a session for the CLI and the status bar (bounded: a reservoir of recent chunks)."""

    chunks: int = 0
    frames: int = 0
    compute_ms: collections.deque = field(default_factory=lambda: collections.deque(maxlen=STATS_WINDOW_CHUNKS))
    latency_ms: collections.deque = field(default_factory=lambda: collections.deque(maxlen=STATS_WINDOW_CHUNKS))
    budget_ms: collections.deque = field(default_factory=lambda: collections.deque(maxlen=STATS_WINDOW_CHUNKS))
    last: FrameMetrics | None = None

    def add(self, m: FrameMetrics) -> None:
        self.chunks += 1
        self.frames += m.frames
        self.compute_ms.append(m.compute_ms / m.frames)
        self.latency_ms.append(m.latency_ms)
        self.budget_ms.append(tuple(m.budget_ms.values()))
        self.last = m

    def budget_summary(self) -> dict[str, float]:
        """Median of each latency stage (ms) over the window."""
        if not self.budget_ms:
            return {}
        stages = list(self.last.budget_ms) if self.last else []
        medians = np.median(np.asarray(self.budget_ms, dtype=np.float64), axis=0)
        return {stage: round(float(value), 1) for stage, value in zip(stages, medians, strict=False)}

    def summary(self) -> dict:
        last = self.last
        audio_s = self.frames * FRAME_S
        compute = list(self.compute_ms)
        return {
            "frames": self.frames,
            "audio_s": round(audio_s, 2),
            "compute_ms_per_frame": percentiles(compute, digits=2),
            "rtf": round(float(np.mean(compute)) / FRAME_MS, 3) if compute else None,
            "latency_ms": percentiles(list(self.latency_ms), digits=1),
            "latency_budget_ms": self.budget_summary(),
            "underruns": last.underruns if last else 0,
            "overruns": last.overruns if last else 0,
            "xruns": last.xruns if last else 0,
            "xruns_by_device": {"input": last.input_xruns if last else 0, "output": last.output_xruns if last else 0},
            "dropouts": last.dropouts if last else 0,
            "dropped_frames": last.dropped_frames if last else 0,
            "skipped_ms": round(last.skipped_ms, 1) if last else 0.0,
            "stretched_ms": round(last.stretched_ms, 1) if last else 0.0,
            "callback_errors": last.callback_errors if last else 0,
            "kv_length": {"encoder": last.kv_encoder if last else 0, "decoder": last.kv_decoder if last else 0},
        }


def process_age_s() -> float:
    """Seconds since this process started.

    On Linux from /proc in the kernel's own since-boot clock (10 ms steps): psutil's create_time
    adds the boot time, which the kernel rounds to whole seconds and which drifts on VMs (0.7 s off
    here). Elsewhere psutil's value.
    """
    try:
        with open("/proc/self/stat", encoding="ascii") as f:
            after_name = f.read().rsplit(")", 1)[1].split()
        with open("/proc/uptime", encoding="ascii") as f:
            uptime = float(f.read().split()[0])
        return uptime - int(after_name[19]) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, AttributeError):
        import psutil

        return time.time() - psutil.Process().create_time()
