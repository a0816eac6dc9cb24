"""The GUI's side of the audio engine (GUI thread, plus one loader thread it owns).

`EngineBridge` owns the Engine. Slow work (hashing a cached variant against the hub's checksums and
loading a model: a second or two each at full size; opening devices; warm-up) runs on a single
background loader thread, never on the GUI thread; while it runs the bridge is `busy` and says
what it is doing. One QTimer (~30 ms) drains `engine.queue`, polls the loader, and fans the chunk
metrics and events out through signals, so the audio worker never waits on Qt and Qt is only ever
touched from the GUI thread (the loader emits nothing itself).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, QTimer, Signal

from app.audio.engine import Engine, EngineConfig, load_codec
from app.audio.metrics import EngineEvent, FrameMetrics
from app.errors import AppError, one_line
from app.models import check_cached_model, make_int8_copy
from app.quality.live import LiveQuality, QualityReading

if TYPE_CHECKING:
    from app.codec.streaming import StreamingCodec

log = logging.getLogger(__name__)

UI_TICK_MS = 34  # <= 30 fps of plot updates, whatever the chunk rate


def describe_error(exc: BaseException) -> str:
    """One readable line for anything a load or start can raise: the app's own errors (and the
    OS's) as they are, anything else marked as unexpected."""
    text = one_line(exc) or type(exc).__name__
    if isinstance(exc, (AppError, OSError)):
        return text
    return f"unexpected {type(exc).__name__}: {text} (details in the log file)"


def _same_model(a: Path | str | None, b: Path | str | None) -> bool:
    if a is None or b is None:
        return False
    try:
        return Path(a).resolve() == Path(b).resolve()
    except OSError:
        return False


def _checked(model: Path, codebooks: int | None, kv_window: int | None, name: str) -> tuple:
    """Loader job before a live swap: raises CorruptModel if `model` is a damaged cached variant."""
    check_cached_model(model)
    return model, codebooks, kv_window, name


class EngineBridge(QObject):
    """Starts/stops the engine, swaps codecs, and turns its queue into Qt signals at the UI rate."""

    sigFrames = Signal(list)  # list[FrameMetrics] drained this tick, oldest first
    sigEvent = Signal(object)  # EngineEvent (started / stopped / warning / error / model)
    sigBusy = Signal(bool, str)  # busy, what it is doing
    sigRunning = Signal(bool)
    sigCodec = Signal(object)  # the codec now loaded (StreamingCodec), after a load or a swap
    sigTick = Signal()  # every UI tick, after the frames
    sigInt8 = Signal(object, object)  # an int8 copy made (or found made): its folder, its Int8Quality

    def __init__(self, engine_factory: Callable[[], Engine] = Engine, parent: QObject | None = None,
                 tick_ms: int = UI_TICK_MS):
        super().__init__(parent)
        self.engine = engine_factory()
        # the loaded codec: a preview while stopped, the engine's while running
        self.codec: StreamingCodec | None = None
        self.codec_model: Path | None = None
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="mimi-ui-loader")
        self._job: Future | None = None
        self._job_kind = ""
        self._swap: threading.Thread | None = None
        self._live_codec: tuple | None = None  # (codec, k) the engine ran at the last tick
        self._busy_text = ""
        self._job_status = ""  # the latest progress line of the job, written by the loader thread
        self._shown_status = ""
        self._was_running = False
        self._quality = LiveQuality(self._heard_stretch)  # scores what is heard, on its own thread
        self.timer = QTimer(self)
        self.timer.setInterval(tick_ms)
        self.timer.timeout.connect(self._tick)
        self.timer.start()

    # -- state ---------------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self.engine.running

    @property
    def busy(self) -> bool:
        return (self._job is not None) or (self._swap is not None)

    @property
    def audio_tap(self):
        """The engine's recent dry/wet audio (see plots.AudioTapReader), or None if it has none."""
        return getattr(self.engine, "audio_tap", None)

    def recording_paths(self) -> list[str] | None:
        """The WAV files the session records into now, or None."""
        return (self.engine.info or {}).get("recording")

    @staticmethod
    def model_codebooks(model: Path) -> int | None:
        """How many codebooks the model folder's state spec declares; None if it cannot be read
        (the load reports a broken folder properly)."""
        try:
            from app.codec import parse_state_spec

            return parse_state_spec(Path(model) / "state_spec.txt").num_codebooks
        except Exception:  # noqa: BLE001 - any unreadable spec means "unknown", never a crash here
            return None

    def _set_busy(self, text: str) -> None:
        self._busy_text = text
        self.sigBusy.emit(True, text)

    def _submit(self, kind: str, text: str, fn: Callable, *args) -> bool:
        if self.busy:
            log.info("ignored %s: busy with %s", kind, self._busy_text)
            return False
        self._job_kind = kind
        self._job_status = self._shown_status = ""
        self._job = self._executor.submit(fn, *args)
        self._set_busy(text)
        return True

    # -- requests (GUI thread) -------------------------------------------------------------------

    def load_model(self, model: Path, codebooks: int | None = None, kv_window: int | None = 250,
                   verify: bool = True, name: str | None = None) -> bool:
        """Loads `model` (a preview while stopped; a live swap while running).

        A published variant from the HF cache is loaded only if every file matches the hub's
        checksums: the check (hashing it all, a second or more) runs first, on the loader thread;
        a failure is an "error" event and leaves the loaded (or running) codec as it was.
        verify=False skips the check (a download has just checked every file). `name` is what the
        status bar calls the model (default: its folder's name).
        """
        model = Path(model)
        name = name or model.name
        if self.running:
            if verify:  # check on the loader thread; _poll_jobs then asks the engine for the swap
                return self._submit("check", f"Switching to {name}…", _checked, model, codebooks, kv_window, name)
            return self._request_swap(f"Switching to {name}…", self.engine.request_codec,
                                      model=model, codebooks=codebooks)

        def load():
            if verify:
                check_cached_model(model)
            codec = load_codec(EngineConfig(model=model, kv_window=kv_window))  # all codebooks, then k below
            if codebooks is not None and codebooks in codec.codebook_choices and codebooks != codec.num_codebooks:
                codec.set_codebooks(codebooks)
            return codec, model

        return self._submit("load", f"Loading {name}…", load)

    def make_int8(self, model: Path, parts: str, name: str | None = None) -> bool:
        """Makes the int8 copy of `model` (or finds it made) on the loader thread; sigInt8 when done.

        Takes ~30 s at full size the first time (quantization, then ~20 s of test signal through
        both models on every core); the busy text follows its progress. Nothing is loaded: the
        copy is only listed. A failure is an "error" event, like a failed load.
        """
        model = Path(model)
        what = f"Making the int8 copy of {name or model.name}"

        def make():
            def status(text: str) -> None:
                self._job_status = f"{what}: {text}"  # shown by the next UI tick (GUI thread)

            return make_int8_copy(model, parts, status=status)

        return self._submit("int8", f"{what}…", make)

    def set_codebooks(self, codebooks: int) -> bool:
        if self.running:
            return self._request_swap(f"Switching to {codebooks} codebooks…", self.engine.request_codebooks, codebooks)
        if self.codec is None or codebooks == self.codec.num_codebooks:
            return False
        codec, model = self.codec, self.codec_model

        def apply():
            codec.set_codebooks(codebooks)  # k < K builds the zero-row decoder once: can take a second
            return codec, model

        return self._submit("load", f"Preparing {codebooks} codebooks…", apply)

    def set_kv_window(self, window: int | None) -> bool:
        if self.running:
            self.engine.set_kv_window(window)  # applies at the next chunk, nothing to load
            return True
        if self.codec is not None:
            self.codec.set_kv_window(window)
        return True

    def set_devices(self, input_device: int | str | None, output_device: int | str | None) -> None:
        """Moves the running stream to other devices (the engine does it between two chunks)."""
        try:
            self.engine.set_devices(input_device, output_device)
        except Exception as exc:  # noqa: BLE001 - e.g. the engine stopped a moment ago
            self.sigEvent.emit(EngineEvent("error", describe_error(exc)))

    def classic_bps(self, key: str) -> float | None:
        """A classic path's bitrate measured from the bytes its encoder produced (None: not running)."""
        measured = self.engine.info.get("classic_bps") if self.engine.running else None
        return measured.get(key) if measured else None

    def replay(self) -> list[str] | None:
        """The instant replay of the last seconds (app.audio.replay), streaming or after Stop; its
        steps arrive as "replay" events. None (and an error event) when there is nothing to replay."""
        try:
            return self.engine.replay()
        except Exception as exc:  # noqa: BLE001 - e.g. nothing recorded yet: a message, never a crash
            self.sigEvent.emit(EngineEvent("error", describe_error(exc)))
            return None

    def cancel_replay(self) -> None:
        self.engine.cancel_replay()

    @property
    def replaying(self) -> bool:
        return self.engine.replaying

    def quality(self) -> QualityReading | None:
        """The newest live quality figure of the path heard (None: none yet, or not streaming)."""
        return self._quality.latest if self.engine.running else None

    def _heard_stretch(self, seconds: float):  # noqa: ANN202 - LiveQuality's Stretch
        if not self.engine.running or self.engine.replaying:  # a replay is not the live path
            return None
        return self.engine.audio_tap.heard_stretch(seconds)

    def set_monitor(self, mode: str) -> None:
        """What the speaker plays; the worker reads it at the next chunk: instant A/B."""
        self.engine.monitor = mode

    def set_classic_paths(self, on: bool) -> None:
        """Codec2 and Opus on or off in the running session (the engine opens them off the GUI thread)."""
        try:
            self.engine.set_classic_paths(on)
        except Exception as exc:  # noqa: BLE001 - e.g. the engine stopped a moment ago
            self.sigEvent.emit(EngineEvent("error", describe_error(exc)))

    def set_recording(self, folder: Path | None) -> None:
        try:
            self.engine.set_recording(folder)
        except Exception as exc:  # noqa: BLE001 - e.g. the engine stopped a moment ago
            self.sigEvent.emit(EngineEvent("error", describe_error(exc)))

    def _request_swap(self, text: str, request: Callable, *args, **kwargs) -> bool:
        if self.busy:
            return False
        try:
            self._swap = request(*args, **kwargs)
        except Exception as exc:  # noqa: BLE001 - e.g. the engine stopped a moment ago
            self.sigEvent.emit(EngineEvent("error", describe_error(exc)))
            return False
        self._set_busy(text)
        return True

    def start(self, config: EngineConfig) -> bool:
        """Loads the codec if needed and starts streaming, all on the loader thread."""
        if self.running:
            return False
        cached, cached_model = self.codec, self.codec_model

        def start():
            codec = cached if _same_model(cached_model, config.model) else None
            if codec is None:
                check_cached_model(config.model)  # the preview was checked when it loaded
                codec = load_codec(config)
            else:
                wanted = config.codebooks or codec.max_codebooks
                if wanted != codec.num_codebooks:
                    codec.set_codebooks(wanted)
                if codec.kv_window != config.kv_window:
                    codec.set_kv_window(config.kv_window)
            self.engine.start(config, codec=codec)
            return codec, Path(config.model)

        return self._submit("start", f"Starting {Path(str(config.model)).name}…", start)

    def stop(self, reason: str = "stopped") -> dict:
        """Stops streaming now (joins the worker: it finishes the chunk it is on)."""
        if self.engine.running and self.engine.codec is not None:
            self.codec = self.engine.codec
        summary = self.engine.stop(reason)
        self._tick()  # deliver the "stopped" event and the last frames at once
        return summary

    def shutdown(self) -> None:
        self.timer.stop()
        self._quality.stop()
        try:
            self.engine.cancel_replay()
            self.engine.stop("window closed")
        finally:
            self._executor.shutdown(wait=False, cancel_futures=True)

    # -- the UI tick -----------------------------------------------------------------------------

    def _tick(self) -> None:
        engine = self.engine
        running = engine.running
        # A model or codebook switch lands on the worker between two chunks, after the loader
        # thread that prepared it has ended: show it when the engine runs it, not before.
        live = (engine.codec, engine.codec.num_codebooks) if running and engine.codec is not None else None
        if live is not None and live != self._live_codec:
            config = engine.config
            assert config is not None  # the engine runs: it has a session, whose config it is
            self.codec, self.codec_model = engine.codec, Path(str(config.model))
            if self._job is None:  # a swap landed (not our own start, which reports below)
                self.sigCodec.emit(self.codec)
        self._live_codec = live
        frames: list[FrameMetrics] = []
        for item in engine.queue.drain():
            if isinstance(item, EngineEvent):
                if frames:
                    self.sigFrames.emit(frames)
                    frames = []
                log.log(logging.WARNING if item.kind in ("error", "warning") else logging.INFO,
                        "engine %s: %s", item.kind, item.message)
                self.sigEvent.emit(item)
            else:
                frames.append(item)
        if frames:
            self.sigFrames.emit(frames)
        self._poll_jobs()
        running = engine.running
        if running != self._quality.running:  # a figure only while streaming
            if running:
                self._quality.start()
            else:
                self._quality.stop()
        if running != self._was_running and self._job is None:
            self._was_running = running
            self.sigRunning.emit(running)
        self.sigTick.emit()

    def _poll_jobs(self) -> None:
        if self._swap is not None and not self._swap.is_alive():
            self._swap = None
            if self._job is None:
                self.sigBusy.emit(False, "")
        job = self._job
        status = self._job_status
        if job is not None and status != self._shown_status:
            self._shown_status = status
            self._set_busy(status)
        if job is None or not job.done():
            return
        self._job, kind = None, self._job_kind
        try:
            result = job.result()
        except Exception as exc:  # noqa: BLE001 - every failure becomes a message
            log.warning("%s failed", kind, exc_info=exc)
            self.sigEvent.emit(EngineEvent("error", describe_error(exc)))
            self.sigBusy.emit(False, "")
            if kind == "start":
                self._was_running = self.engine.running
                self.sigRunning.emit(self._was_running)
            self.sigCodec.emit(self.codec)  # the window falls back to what is still loaded
            return
        if kind == "check":  # passed: now the live swap (a preview load if the engine stopped meanwhile)
            model, codebooks, kv_window, name = result
            if not self.load_model(model, codebooks, kv_window, verify=False, name=name):
                self.sigBusy.emit(False, "")  # load_model has reported why
                self.sigCodec.emit(self.codec)
            return
        if kind == "int8":
            folder, quality = result
            self.sigBusy.emit(False, "")
            self.sigInt8.emit(folder, quality)
            return
        codec, model = result
        self.codec, self.codec_model = codec, model
        self.sigBusy.emit(self._swap is not None, self._busy_text if self._swap is not None else "")
        self.sigCodec.emit(codec)
        if kind == "start":
            self._was_running = self.engine.running
            self.sigRunning.emit(self._was_running)
