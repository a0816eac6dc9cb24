"""FakeIO: AudioIO's public surface without devices or threads (the test's thread).

`tick()` runs the very same callback functions as the real streams (app.audio.io_base), so
tests drive the real callback code deterministically.
"""

from __future__ import annotations

import numpy as np

from app.audio.devices import DeviceError
from app.audio.io_base import IOBase
from app.config import SAMPLE_RATE_HZ

__all__ = ["FakeIO"]


class FakeIO(IOBase):
    """AudioIO's public surface without devices or threads, for deterministic tests.

    `tick(frames, input_block)` plays the part of PortAudio: it runs the input callback once with
    input_block (or silence) and the output callback once for `frames` samples, and returns what
    was "played" (1-D float32, output_rate samples). Rates and latencies are configurable, e.g.
    input_rate=48000 to exercise the worker's resampling.
    """

    def __init__(
        self,
        input_device: int | None = None,
        output_device: int | None = None,
        use_input: bool = True,
        preferred_rate: int = SAMPLE_RATE_HZ,
        blocksize: int = 0,
        latency: str | float = "low",
        ring_seconds: float = 4.0,
        *,
        input_rate: int | None = None,
        output_rate: int | None = None,
        input_latency_s: float = 0.010,
        output_latency_s: float = 0.020,
        input_channels: int = 1,
        output_channels: int = 1,
    ) -> None:
        super().__init__(use_input, ring_seconds)
        self.input_device = input_device
        self.output_device = output_device
        self.preferred_rate = int(preferred_rate)
        self.blocksize = int(blocksize)
        self.latency = latency
        if self.use_input:
            self.input_rate = int(input_rate or preferred_rate)
            self.input_latency_s = float(input_latency_s)
            self.input_channels = int(input_channels)
        self.output_rate = int(output_rate or preferred_rate)
        self.output_latency_s = float(output_latency_s)
        self.output_channels = int(output_channels)
        self._active = False
        self._closed = False
        self._make_rings()

    @property
    def active(self) -> bool:
        return self._active

    def clock(self) -> float:
        """The fake devices' own time (s): what the output has played. The engine times itself
        with it, so compute takes no time here and a test's ticks alone decide what plays."""
        return self.counters.output_frames / self.output_rate

    def start(self) -> None:
        if self._closed:
            raise DeviceError("audio streams are closed; open a new AudioIO")
        self.error = None
        self._stopping = False
        self._active = True

    def stop(self) -> None:
        self._stopping = True
        self._active = False

    def close(self) -> None:
        self.stop()
        self._closed = True

    def tick(self, frames: int, input_block: np.ndarray | None = None,
             input_status: int = 0, output_status: int = 0) -> np.ndarray:
        """One input callback then one output callback; returns the played samples.

        input_block: 1-D [n] or [n, channels] at input_rate; None means silence of the same
        duration as `frames` at output_rate. Ignored when use_input is False. The status
        arguments stand in for PortAudio's callback flags (non-zero = xrun reported).
        """
        if not self._active:
            raise RuntimeError("FakeIO.tick() while stopped: call start() first")
        if self.use_input:
            if input_block is None:
                n_in = round(frames * self.input_rate / self.output_rate)  # type: ignore[operator]  # use_input sets input_rate
                indata = np.zeros((n_in, self.input_channels), dtype=np.float32)
            else:
                block = np.asarray(input_block, dtype=np.float32)
                if block.ndim == 1:
                    indata = np.repeat(block[:, None], self.input_channels, axis=1)
                else:
                    indata = np.ascontiguousarray(block)
            self._input_callback(indata, indata.shape[0], None, input_status)
        # Garbage in outdata, as a real device buffer may hold: the callback must overwrite it.
        outdata = np.full((int(frames), self.output_channels), np.nan, dtype=np.float32)
        self._output_callback(outdata, int(frames), None, output_status)
        return outdata[:, 0].copy()

    def simulate_device_lost(self, kind: str = "input") -> None:
        """What PortAudio does when a device vanishes: the stream finishes on its own."""
        self._active = False
        if kind == "input":
            self._input_finished()
        else:
            self._output_finished()
