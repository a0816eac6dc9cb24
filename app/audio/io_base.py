"""What the real and the fake device streams share: rings, counters, callbacks (PortAudio's threads).

The callbacks' bodies live here so AudioIO (app.audio.streams) and FakeIO (app.audio.fake_io)
run the very same code. A callback only copies between PortAudio's buffer and a preallocated
RingBuffer and bumps plain int counters: no allocation, no locks, no logging, and no exception
escapes (on any error the output is zero-filled and `callback_errors` is counted).
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, TypeVar

import numpy as np

from app.audio.ring import RingBuffer

__all__ = [
    "INPUT_LOST_MESSAGE",
    "OUTPUT_LOST_MESSAGE",
    "IOBase",
    "IOCounters",
    "run_input_callback",
    "run_output_callback",
]

INPUT_LOST_MESSAGE = "input device stopped unexpectedly (unplugged?)"
OUTPUT_LOST_MESSAGE = "output device stopped unexpectedly (unplugged?)"

_IO = TypeVar("_IO", bound="IOBase")


@dataclass
class IOCounters:
    """Callback statistics. NB: written only by the callbacks; read from any thread."""

    input_overruns: int = 0  # input samples dropped because input_ring was full
    input_xruns: int = 0  # input callbacks that came with a PortAudio status flag
    output_xruns: int = 0  # output callbacks that came with a PortAudio status flag
    output_underruns: int = 0  # output callbacks that found fewer samples than needed
    underrun_samples: int = 0  # zeros played in their place
    callback_errors: int = 0  # exceptions caught inside a callback
    input_frames: int = 0  # samples delivered by the input device
    output_frames: int = 0  # samples requested by the output device
    output_callbacks: int = 0  # output callbacks so far (with output_xruns: is every one failing?)
    input_block_frames: int = 0  # size of the latest input block (PortAudio picks it if blocksize=0)
    output_block_frames: int = 0  # size of the latest output block
    output_block_max: int = 0  # largest output block so far (the timing covers one)

    def snapshot(self) -> dict[str, int]:
        """A copy of every counter (allocates: not for callbacks)."""
        return {f.name: getattr(self, f.name) for f in fields(self)}


# -- the callbacks' bodies, shared by AudioIO and FakeIO --------------------------------------------


def run_input_callback(ring: RingBuffer, counters: IOCounters, indata: np.ndarray,
                       status: Any) -> None:
    """Copy channel 0 of indata [frames, channels] into ring; never raises, never allocates."""
    try:
        if status:
            counters.input_xruns += 1
        frames = indata.shape[0]
        stored = ring.write(indata[:, 0])
        if stored < frames:
            counters.input_overruns += frames - stored
        counters.input_frames += frames
        counters.input_block_frames = frames
    except Exception:  # noqa: BLE001 - an exception would kill the stream
        counters.callback_errors += 1


def run_output_callback(ring: RingBuffer, counters: IOCounters, outdata: np.ndarray,
                        status: Any) -> None:
    """Fill outdata [frames, channels] from ring, zeros where it runs dry; never raises."""
    try:
        if status:
            counters.output_xruns += 1
        frames = outdata.shape[0]
        got = ring.read(outdata[:, 0])
        if got < frames:
            outdata[got:, 0] = 0.0
            counters.output_underruns += 1
            counters.underrun_samples += frames - got
        for channel in range(1, outdata.shape[1]):  # mono device fallback to stereo: duplicate
            outdata[:, channel] = outdata[:, 0]
        counters.output_frames += frames
        counters.output_callbacks += 1
        counters.output_block_frames = frames
        if frames > counters.output_block_max:
            counters.output_block_max = frames
    except Exception:  # noqa: BLE001 - an exception would kill the stream
        counters.callback_errors += 1
        try:
            outdata.fill(0.0)
        except Exception:  # noqa: BLE001 - not even a failed zero-fill may escape the callback
            pass

# -- shared surface ---------------------------------------------------------------------------------


class IOBase:
    """What AudioIO and FakeIO share: rings, counters, rates, latencies, error, callbacks."""

    input_rate: int | None
    output_rate: int
    input_latency_s: float
    output_latency_s: float
    input_ring: RingBuffer | None
    output_ring: RingBuffer

    def __init__(self, use_input: bool, ring_seconds: float) -> None:
        if ring_seconds <= 0:
            raise ValueError(f"ring_seconds must be positive, got {ring_seconds}")
        self.use_input = bool(use_input)
        self.ring_seconds = float(ring_seconds)
        self.counters = IOCounters()
        # NB: set from PortAudio's finished callback; the worker polls it.
        self.error: str | None = None
        self._stopping = True  # True whenever a stream stopping is expected
        self.input_ring = None
        self.input_rate = None
        self.input_latency_s = 0.0
        self.input_channels = 0
        self.output_channels = 0

    def _make_rings(self) -> None:
        if self.use_input and self.input_rate:
            self.input_ring = RingBuffer(max(1, round(self.ring_seconds * self.input_rate)))
        self.output_ring = RingBuffer(max(1, round(self.ring_seconds * self.output_rate)))

    # PortAudio signatures: (indata, frames, time, status) / (outdata, frames, time, status)
    def _input_callback(self, indata: np.ndarray, frames: int, time: Any, status: Any) -> None:
        run_input_callback(self.input_ring, self.counters, indata, status)  # type: ignore[arg-type]  # input streams only

    def _output_callback(self, outdata: np.ndarray, frames: int, time: Any, status: Any) -> None:
        run_output_callback(self.output_ring, self.counters, outdata, status)

    def _input_finished(self) -> None:
        if not self._stopping and self.error is None:
            self.error = INPUT_LOST_MESSAGE

    def _output_finished(self) -> None:
        if not self._stopping and self.error is None:
            self.error = OUTPUT_LOST_MESSAGE

    # AudioIO and FakeIO implement these three.
    def start(self) -> None:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self: _IO) -> _IO:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def describe(self) -> str:
        """One line for logs: rates, channels and latencies."""
        parts = []
        if self.input_rate:
            parts.append(f"input {self.input_rate} Hz x{self.input_channels}, "
                         f"{1000 * self.input_latency_s:.1f} ms")
        parts.append(f"output {self.output_rate} Hz x{self.output_channels}, "
                     f"{1000 * self.output_latency_s:.1f} ms")
        return "; ".join(parts)

