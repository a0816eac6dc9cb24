"""Devices that come and go: reopening the streams of a running session (worker thread).

A device that is unplugged, or an audio server that restarts, ends PortAudio's streams (the
finished callback sets `io.error`), leaves them silent or has them fail on every call
(`stream_watch`). Either way the worker calls `reopen` instead of ending the session: it
re-initialises PortAudio (only a fresh PortAudio sees a restarted server's devices), opens the
devices the session asked for, or the default ones if those are gone, and retries until the
server is back or the deadline passes. The codec, its stream state, the timing and the recording
carry on.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace

from app.audio.devices import DeviceError, import_sounddevice
from app.audio.engine_config import EngineConfig
from app.audio.io_base import IOBase
from app.audio.metrics import EngineEvent
from app.audio.session import LiveSession
from app.audio.sources import MicSource, OutputSink

RECONNECT_TIMEOUT_S = 60.0  # how long a session waits for its audio server to come back
RETRY_S = 0.5


@dataclass
class Reopened:
    io: IOBase
    fell_back: bool  # the chosen devices were gone: the defaults are used
    attempts: int


def reinitialize_portaudio() -> None:
    """Terminates and initialises PortAudio again, so a restarted server's devices are seen.

    Only while no stream of this process is open (PortAudio requires it)."""
    sd = import_sounddevice()
    try:
        sd._terminate()  # sounddevice has no public re-initialise
    except Exception:  # noqa: BLE001 - a PortAudio already gone is what we are repairing
        pass
    sd._initialize()


def open_devices(config: EngineConfig, open_io: Callable[[EngineConfig], IOBase],
                 reinitialize: Callable[[], None] | None) -> IOBase:
    """Opens the devices `config` asks for. PortAudio lists devices once, when it starts: one that
    started while the audio server was busy or starting may have missed them, so with real
    PortAudio (`reinitialize` given) it takes one fresh look before giving up."""
    try:
        return open_io(config)
    except DeviceError:
        if reinitialize is None:
            raise
        reinitialize()
        return open_io(config)


def reopen(config: EngineConfig, open_io: Callable[[EngineConfig], IOBase], reinitialize: Callable[[], None],
           stopping: Callable[[float], bool], before_start: Callable[[IOBase], None],
           timeout_s: float = RECONNECT_TIMEOUT_S) -> Reopened | None:
    """Opens and starts new streams for `config` (or its default devices); None if it cannot.

    `before_start(io)` primes the new streams (rings, pre-roll) before they start.
    `stopping(wait_s)` waits up to wait_s and says whether the session is being stopped, so Stop
    is never held up by a server that does not come back.
    """
    deadline = time.monotonic() + timeout_s
    defaults = replace(config, input_device=None, output_device=None)
    choices = [(config, False)] + ([(defaults, True)] if (config.input_device, config.output_device) != (None, None)
                                   else [])
    attempts = 0
    while True:
        attempts += 1
        try:
            reinitialize()
        except Exception:  # noqa: BLE001 - PortAudio cannot start yet (no server): retry
            pass
        for candidate, fell_back in choices:
            io: IOBase | None = None
            try:
                io = open_io(candidate)
                before_start(io)
                io.start()
            except (DeviceError, OSError, ValueError):
                if io is not None:
                    io.close()
                continue
            return Reopened(io, fell_back, attempts)
        if time.monotonic() >= deadline or stopping(RETRY_S):
            return None


def stream_trouble(session: LiveSession) -> str | None:
    """Why the session's streams are dead (see stream_watch), or None. Once the first chunk has
    been placed: before that the streams may still be starting."""
    if not session.aligned:
        session.watch.restart()
        return None
    return session.watch.dead(session.io.counters, session.io.output_rate, session.clock())


def reconnect_session(session: LiveSession, why: str, open_io: Callable[[EngineConfig], IOBase],
                      reinitialize: Callable[[], None], stopping: Callable[[float], bool],
                      say: Callable[[EngineEvent], None], timeout_s: float = RECONNECT_TIMEOUT_S) -> bool:
    """Reopens the session's devices (or the defaults) after `why`; the codec, timing and
    recording carry on. Returns False if the devices do not come back in time."""
    say(EngineEvent("warning", f"{why}: reconnecting to the audio devices…"))
    session.carry_counters()
    session.io.stop()
    session.io.close()
    config, live = session.config, session.source.live
    started = time.monotonic()

    def prime(io: IOBase) -> None:
        session.io = io
        if live:
            # a live source is the microphone: its streams were opened with an input
            assert io.input_ring is not None and io.input_rate is not None
            session.source = MicSource(io.input_ring, io.input_rate)
        session.sink = OutputSink(io.output_ring, io.output_rate, config.chunk_samples)
        session.sink.write_silence(session.timing.target + config.chunk_samples)

    reopened = reopen(config, open_io, reinitialize, stopping, prime, timeout_s=timeout_s)
    if reopened is None:
        return False
    session.clock.follow(reopened.io)
    session.aligned, session.reconnects = False, session.reconnects + 1
    session.settle = None  # the new output stream may rush as it starts, too
    session.watch.restart()
    session.burst_frames = -1  # the new streams count from zero
    where = " on the default devices (the chosen ones are gone)" if reopened.fell_back else ""
    say(EngineEvent("info", f"audio is back{where}, after {time.monotonic() - started:.1f} s"))
    return True
