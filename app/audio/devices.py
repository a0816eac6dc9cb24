"""Audio device listing and lookup over sounddevice/PortAudio (caller's thread; no Qt).

sounddevice is imported lazily, inside the functions: it raises OSError at import time when the
PortAudio library is missing, and the rest of the app (file round trips, model info, tests) must
work without it. That case becomes AudioUnavailable with an install hint.

Every failure is a DeviceError whose message is one line saying what to do.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import ModuleType
from typing import Literal

from app.config import APP_ID
from app.errors import AppError, one_line

__all__ = [
    "AudioUnavailable",
    "DeviceError",
    "DeviceInfo",
    "Kind",
    "import_sounddevice",
    "list_devices",
    "resolve_device",
]

Kind = Literal["input", "output"]

LIST_HINT = f"run `{APP_ID} devices` to list them"


class DeviceError(AppError):
    """An audio device cannot be found, opened or kept running; the message is one line."""


class AudioUnavailable(DeviceError):
    """PortAudio itself cannot be loaded, so there is no audio device at all."""


FRESH_LIST_TIMEOUT_S = 10.0


def import_sounddevice() -> ModuleType:
    """Import sounddevice, turning a missing PortAudio library into AudioUnavailable."""
    try:
        import sounddevice
    except OSError as exc:  # sounddevice raises OSError("PortAudio library not found")
        raise AudioUnavailable(
            f"PortAudio is not available ({one_line(exc)}): install it, "
            "e.g. `sudo apt install libportaudio2`"
        ) from exc
    return sounddevice


@dataclass(frozen=True)
class DeviceInfo:
    index: int
    name: str
    hostapi: str  # host API name, e.g. "ALSA", "Windows WASAPI"
    max_input_channels: int
    max_output_channels: int
    default_samplerate: float

    def channels(self, kind: Kind) -> int:
        return self.max_input_channels if kind == "input" else self.max_output_channels


def list_devices() -> list[DeviceInfo]:
    """Every device PortAudio reports, in index order."""
    sd = import_sounddevice()
    try:
        raw_devices = sd.query_devices()
        hostapis = sd.query_hostapis()
    except sd.PortAudioError as exc:
        raise DeviceError(f"cannot list audio devices ({one_line(exc)})") from exc
    devices = []
    for position, dev in enumerate(raw_devices):
        api_index = int(dev.get("hostapi", -1))
        api_name = (hostapis[api_index]["name"]
                    if 0 <= api_index < len(hostapis) else str(api_index))
        devices.append(DeviceInfo(
            index=int(dev.get("index", position)),
            name=str(dev["name"]),
            hostapi=str(api_name),
            max_input_channels=int(dev["max_input_channels"]),
            max_output_channels=int(dev["max_output_channels"]),
            default_samplerate=float(dev["default_samplerate"]),
        ))
    return devices


def _list_in_child(conn) -> None:  # a multiprocessing connection
    try:
        conn.send(("ok", list_devices()))
    except Exception as exc:  # noqa: BLE001 - sent back whole, raised in the parent
        conn.send(("error", one_line(exc)))


def list_devices_fresh(timeout_s: float = FRESH_LIST_TIMEOUT_S) -> list[DeviceInfo]:
    """The devices a fresh PortAudio sees, listed by a spawned child process.

    A PortAudio initialised once keeps the device list it found then, and can only be
    initialised again with no stream open; a child sees what was plugged in since, while this
    process's streams play on. Its indices are the child's: choose by name (exact names win).
    """
    import multiprocessing

    context = multiprocessing.get_context("spawn")  # fork would copy the audio threads' locks
    receiver, sender = context.Pipe(duplex=False)
    process = context.Process(target=_list_in_child, args=(sender,), name="mimi-live-devices", daemon=True)
    process.start()
    sender.close()
    try:
        if not receiver.poll(timeout_s):
            raise DeviceError(f"listing audio devices took more than {timeout_s:g} s (is the audio server stuck?)")
        kind, value = receiver.recv()
    except EOFError:
        raise DeviceError("listing audio devices failed: the helper process ended without an answer") from None
    finally:
        receiver.close()
        process.join(timeout=1.0)
        if process.is_alive():
            process.kill()
    if kind != "ok":
        raise DeviceError(f"cannot list audio devices ({value})")
    return value


def _check_kind(kind: str) -> None:
    if kind not in ("input", "output"):
        raise ValueError(f"kind must be 'input' or 'output', got {kind!r}")


def resolve_device(spec: str | int | None, kind: Kind) -> int | None:
    """Turn a user's device choice into a PortAudio index.

    None (or "" / "default") keeps PortAudio's default and returns None. An int, or a string of
    digits, is an index. Any other string is a case-insensitive substring of the device name; an
    exact (case-insensitive) name wins over substring matches. The device must have channels of
    the requested kind.
    """
    _check_kind(kind)
    if spec is None or (isinstance(spec, str) and spec.strip().lower() in ("", "default")):
        return None
    devices = list_devices()
    if not devices:
        raise DeviceError(f"no audio devices found (is an audio server running?); {LIST_HINT}")

    if isinstance(spec, int) or (isinstance(spec, str) and spec.strip().lstrip("-").isdigit()):
        index = int(spec)
        by_index = {dev.index: dev for dev in devices}
        if index not in by_index:
            raise DeviceError(
                f"no audio device has index {index} (there are {len(devices)}); {LIST_HINT}"
            )
        dev = by_index[index]
        if dev.channels(kind) <= 0:
            raise DeviceError(
                f"device {index} '{dev.name}' has no {kind} channels; "
                f"pick an {kind} device ({LIST_HINT})"
            )
        return index

    if not isinstance(spec, str):
        raise DeviceError(f"device must be an index or a name, got {spec!r}; {LIST_HINT}")
    wanted = spec.strip().lower()
    usable = [dev for dev in devices if dev.channels(kind) > 0]
    exact = [dev for dev in usable if dev.name.lower() == wanted]
    if len(exact) == 1:
        return exact[0].index
    matches = exact or [dev for dev in usable if wanted in dev.name.lower()]
    if len(matches) == 1:
        return matches[0].index
    if not matches:
        other_kind = "output" if kind == "input" else "input"
        if any(wanted in dev.name.lower() for dev in devices):
            raise DeviceError(
                f"'{spec}' matches only devices without {kind} channels "
                f"(an {other_kind} device?); {LIST_HINT}"
            )
        raise DeviceError(f"no {kind} device matches '{spec}'; {LIST_HINT}")
    listed = ", ".join(f"{dev.index} '{dev.name}'" for dev in matches[:6])
    more = ", ..." if len(matches) > 6 else ""
    raise DeviceError(
        f"'{spec}' matches {len(matches)} {kind} devices ({listed}{more}); "
        "give more of the name or the index"
    )
