"""What a live session is asked to do, and the codec it runs (caller and loader threads).

EngineConfig is checked by `validate()` before anything opens; `load_codec` and `warm_up` are
slow (a model load, a few codec calls) and never run on the worker.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from app.codec import StreamingCodec, prepare_model
from app.codec.measure import stream
from app.codec.tuning import tuned_threads
from app.config import (
    CHUNK_CHOICES_MS,
    CLASSIC_PATH_KEYS,
    DEFAULT_DEVICE_LATENCY_MS,
    DEFAULT_KV_WINDOW,
    FRAME_MS,
    SAMPLE_RATE_HZ,
)
from app.errors import AppError

MIMI_MONITORS = ("codec", "bypass", "residual")
# The classic paths (app/audio/classic_paths.py), heard in step with Mimi when the session runs them.
MONITORS = MIMI_MONITORS + CLASSIC_PATH_KEYS
SOURCES = ("mic", "file", "tone")
WARMUP_CALLS = 5  # the first call is cold (allocations); the others show steady compute
# Until the live waits are known, the target covers twice the slowest steady warm-up call (live
# calls run colder than back-to-back ones) and one 10 ms input block.
INITIAL_COVER_COMPUTE_SHARE = 2.0
INITIAL_COVER_BLOCK_S = 0.010
# ...and at least this: the first seconds of a process stall more (lazy imports, first
# allocations, a server settling) than a back-to-back warm-up shows. Let go after 10 s.
INITIAL_COVER_MIN_S = 0.040
DEFAULT_DEVICE_LATENCY_S = DEFAULT_DEVICE_LATENCY_MS / 1000


class EngineError(AppError):
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
    # Run the classic paths live beside Mimi. Off by default: while on, every path (Mimi's too)
    # is delayed by the longest classic look-ahead (80 ms, Codec2 1200) so all are in step.
    classic_paths: bool = False
    # Open the instant replay's side decoder at Start and on switches (replay.SideDecoders), so a
    # replay while streaming loads no graph. The window does; `run` (no replay key) does not.
    replay_ready: bool = False

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
        if self.monitor in CLASSIC_PATH_KEYS and not self.classic_paths:
            raise EngineError(f"monitor '{self.monitor}' needs the classic paths on (classic_paths)")
        if self.source == "file" and self.input_file is None:
            raise EngineError("source 'file' needs an input file")
        if self.kv_window is not None and self.kv_window < 2:
            raise EngineError(f"KV window {self.kv_window}: use at least 2 tokens, or none")


def load_codec(config: EngineConfig) -> StreamingCodec:
    """Loads the codec for `config` (slow: call it off the GUI thread); threads tuned unless given.

    The graph work (rewrites, zero-row decoder, inspection) runs in a child process the first
    time, so a load while audio streams never holds this process's GIL for long.
    """
    threads = config.threads or tuned_threads(config.model)
    prepared = prepare_model(config.model, config.codebooks)
    return StreamingCodec(config.model, codebooks=config.codebooks, threads=threads, kv_window=config.kv_window,
                          prepared=prepared)


def warm_up(codec: StreamingCodec, chunk_samples: int, calls: int = WARMUP_CALLS) -> list[float]:
    """Runs a few chunks of quiet noise through the codec, resets it, returns each call's time (s)."""
    quiet = (1e-3 * np.random.default_rng(0).standard_normal(calls * chunk_samples)).astype(np.float32)
    durations = [step.wall_s for step in stream(codec, quiet, chunk_samples)]
    codec.reset()
    return durations


def initial_cover_s(compute_s: list[float]) -> float:
    """The longest wait to cover before live waits are measured, from steady warm-up calls (s)."""
    return max(INITIAL_COVER_MIN_S, INITIAL_COVER_COMPUTE_SHARE * max(compute_s) + INITIAL_COVER_BLOCK_S)


def real_io(config: EngineConfig):
    """Opens the PortAudio streams `config` names (not started)."""
    from app.audio.devices import resolve_device
    from app.audio.streams import AudioIO

    use_input = config.source == "mic"
    input_device = resolve_device(config.input_device, "input") if use_input else None
    output_device = resolve_device(config.output_device, "output")
    return AudioIO(input_device, output_device, use_input=use_input, preferred_rate=SAMPLE_RATE_HZ,
                   latency=config.device_latency_s)
