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

FakeIO (app.audio.fake_io) has the same public surface with no device and no threads.
"""

from __future__ import annotations

from typing import Any

from app.audio.devices import LIST_HINT, DeviceError, import_sounddevice
from app.audio.io_base import (
    INPUT_LOST_MESSAGE,
    OUTPUT_LOST_MESSAGE,
    IOBase,
    IOCounters,
    run_input_callback,
    run_output_callback,
)
from app.config import SAMPLE_RATE_HZ
from app.errors import one_line

# The shared names stay importable from here, where the tests and the engine have taken them.
__all__ = [
    "AudioIO",
    "IOCounters",
    "INPUT_LOST_MESSAGE",
    "OUTPUT_LOST_MESSAGE",
    "run_input_callback",
    "run_output_callback",
]


class AudioIO(IOBase):
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
            except Exception:  # noqa: BLE001 - closing what is left: a device that is gone cannot close cleanly
                pass
            setattr(self, attr, None)



def __getattr__(name: str) -> Any:
    # tests/test_gui.py still imports FakeIO from here; loaded only when asked, so the app never loads it.
    if name == "FakeIO":
        from app.audio.fake_io import FakeIO

        return FakeIO
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
