"""Device streams: PortAudio callbacks <-> rings (callbacks run on PortAudio's threads).

AudioIO opens SEPARATE input and output sounddevice streams (a single duplex stream on PulseAudio
recorded silence on the CI image). Each callback only copies between PortAudio's buffer and a
preallocated RingBuffer and bumps plain int counters: no allocation, no locks, no logging, and no
exception escapes (on any error the output is zero-filled and `callback_errors` is counted).

Threads:
- input callback (PortAudio)   = producer of `input_ring`; the worker is its consumer.
- output callback (PortAudio)  = consumer of `output_ring`; the worker is its producer.
- `counters` fields are written only by the callbacks; anyone may read them (plain ints, so a
  reader sees a value that is at worst one callback old).
- start/stop/close and the `error` poll belong to the thread that owns the AudioIO (the worker).

Rings hold samples at the DEVICE rate (`input_rate`, `output_rate`), which is the preferred rate
(24 kHz) when the device accepts it and the device's default rate otherwise; resampling to and
from the codec rate is the worker's job, never the callbacks'.

FakeIO has the same public surface with no device and no threads: `tick()` runs the very same
callback functions, so tests drive the real callback code deterministically.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

import numpy as np

from app.audio.devices import LIST_HINT, DeviceError, import_sounddevice
from app.audio.ring import RingBuffer
from app.config import SAMPLE_RATE_HZ
from app.errors import one_line

__all__ = [
    "AudioIO",
    "FakeIO",
    "IOCounters",
    "INPUT_LOST_MESSAGE",
    "OUTPUT_LOST_MESSAGE",
    "run_input_callback",
    "run_output_callback",
]

INPUT_LOST_MESSAGE = "input device stopped unexpectedly (unplugged?)"
OUTPUT_LOST_MESSAGE = "output device stopped unexpectedly (unplugged?)"


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
        counters.output_block_frames = frames
        if frames > counters.output_block_max:
            counters.output_block_max = frames
    except Exception:  # noqa: BLE001
        counters.callback_errors += 1
        try:
            outdata.fill(0.0)
        except Exception:  # noqa: BLE001
            pass


# -- shared surface ---------------------------------------------------------------------------------


class _IOBase:
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
        run_input_callback(self.input_ring, self.counters, indata, status)  # type: ignore[arg-type]

    def _output_callback(self, outdata: np.ndarray, frames: int, time: Any, status: Any) -> None:
        run_output_callback(self.output_ring, self.counters, outdata, status)

    def _input_finished(self) -> None:
        if not self._stopping and self.error is None:
            self.error = INPUT_LOST_MESSAGE

    def _output_finished(self) -> None:
        if not self._stopping and self.error is None:
            self.error = OUTPUT_LOST_MESSAGE

    def __enter__(self):  # noqa: ANN204
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()  # type: ignore[attr-defined]

    def describe(self) -> str:
        """One line for logs: rates, channels and latencies."""
        parts = []
        if self.input_rate:
            parts.append(f"input {self.input_rate} Hz x{self.input_channels}, "
                         f"{1000 * self.input_latency_s:.1f} ms")
        parts.append(f"output {self.output_rate} Hz x{self.output_channels}, "
                     f"{1000 * self.output_latency_s:.1f} ms")
        return "; ".join(parts)


class AudioIO(_IOBase):
    """Separate PortAudio input and output streams feeding `input_ring` / drained from `output_ring`.

    input_device/output_device are PortAudio indices (see devices.resolve_device) or None for the
    default. The constructor opens (but does not start) the streams; every failure to open is a
    DeviceError with one line. Pre-roll the output before start() with
    `output_ring.write_silence(...)` so the first callbacks do not underrun.
    """

    def __init__(
        self,
        input_device: int | None,
        output_device: int | None,
        use_input: bool = True,
        preferred_rate: int = SAMPLE_RATE_HZ,
        blocksize: int = 0,
        latency: str | float = "low",
        ring_seconds: float = 4.0,
    ) -> None:
        super().__init__(use_input, ring_seconds)
        self._sd = import_sounddevice()
        self.input_device = input_device
        self.output_device = output_device
        self.preferred_rate = int(preferred_rate)
        self.blocksize = int(blocksize)
        self.latency = latency
        self._input_stream = None
        self._output_stream = None
        try:
            if self.use_input:
                self._input_stream, self.input_rate, self.input_channels = self._open("input")
                self.input_latency_s = float(self._input_stream.latency)
            self._output_stream, self.output_rate, self.output_channels = self._open("output")
            self.output_latency_s = float(self._output_stream.latency)
        except BaseException:
            self.close()
            raise
        self._make_rings()

    def _device_info(self, kind: str) -> dict[str, Any]:
        sd = self._sd
        device = self.input_device if kind == "input" else self.output_device
        try:
            return dict(sd.query_devices(device, kind))
        except (sd.PortAudioError, ValueError) as exc:
            which = f"device {device}" if device is not None else f"default {kind} device"
            raise DeviceError(
                f"no usable {which} for {kind} ({one_line(exc)}); {LIST_HINT}"
            ) from exc

    def _open(self, kind: str) -> tuple[Any, int, int]:
        """Open one stream: preferred rate, then the device's default rate; mono, then stereo."""
        sd = self._sd
        info = self._device_info(kind)
        device = self.input_device if kind == "input" else self.output_device
        max_channels = int(info[f"max_{kind}_channels"])
        name = f"{kind} device '{info['name']}'"
        if max_channels <= 0:
            raise DeviceError(f"{name} has no {kind} channels; {LIST_HINT}")
        rates = [self.preferred_rate]
        default_rate = int(round(float(info["default_samplerate"])))
        if default_rate > 0 and default_rate != self.preferred_rate:
            rates.append(default_rate)
        channel_options = [1] if max_channels == 1 else [1, 2]
        check = sd.check_input_settings if kind == "input" else sd.check_output_settings
        stream_class = sd.InputStream if kind == "input" else sd.OutputStream
        callback = self._input_callback if kind == "input" else self._output_callback
        finished = self._input_finished if kind == "input" else self._output_finished
        last_error: Exception | None = None
        for rate in rates:
            for channels in channel_options:
                try:
                    check(device=device, channels=channels, dtype="float32", samplerate=rate)
                    stream = stream_class(
                        samplerate=rate, blocksize=self.blocksize, device=device,
                        channels=channels, dtype="float32", latency=self.latency,
                        callback=callback, finished_callback=finished,
                    )
                except (sd.PortAudioError, ValueError) as exc:
                    last_error = exc
                    continue
                return stream, rate, channels
        tried = " or ".join(f"{rate} Hz" for rate in rates)
        raise DeviceError(
            f"cannot open {name} at {tried} ({one_line(last_error)}); "
            f"is it busy or unplugged? pick another ({LIST_HINT})"
        )

    def _streams(self) -> list[Any]:
        return [s for s in (self._input_stream, self._output_stream) if s is not None]

    @property
    def active(self) -> bool:
        streams = self._streams()
        return bool(streams) and all(s.active for s in streams)

    def start(self) -> None:
        """Start output then input (output first so its pre-roll starts playing at once)."""
        sd = self._sd
        if not self._streams():
            raise DeviceError("audio streams are closed; open a new AudioIO")
        self.error = None
        self._stopping = False
        try:
            for stream in (self._output_stream, self._input_stream):
                if stream is not None and not stream.active:
                    stream.start()
        except sd.PortAudioError as exc:
            self.stop()
            raise DeviceError(
                f"cannot start the audio streams ({one_line(exc)}); "
                f"is the device busy or unplugged? ({LIST_HINT})"
            ) from exc

    def stop(self) -> None:
        """Stop both streams (idempotent; swallows PortAudio errors from a vanished device)."""
        self._stopping = True
        for stream in (self._input_stream, self._output_stream):
            if stream is None:
                continue
            try:
                stream.stop()
            except Exception:  # noqa: BLE001 - a device that is gone cannot be stopped cleanly
                pass

    def close(self) -> None:
        """Stop and release both streams (idempotent)."""
        self._stopping = True
        for attr in ("_input_stream", "_output_stream"):
            stream = getattr(self, attr, None)
            if stream is None:
                continue
            try:
                stream.close()  # close() stops an active stream first
            except Exception:  # noqa: BLE001
                pass
            setattr(self, attr, None)


class FakeIO(_IOBase):
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
                n_in = round(frames * self.input_rate / self.output_rate)  # type: ignore[operator]
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
