"""Changes to a running session: another model, another codebook count, other devices, the KV
window, recording (the engine's caller side; any thread).

A change is asked for from the caller's thread and carried out by the worker between two chunks
(`_schedule`); the slow part of a switch runs first on a loader thread, and the chunks around it
are a disturbance the timing does not learn from (`_in_background`). `Engine` (engine.py) is
this class plus the session's start, stop and worker loop.
"""

from __future__ import annotations

import collections
import threading
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from app.audio.classic_paths import ClassicBank
from app.audio.engine_config import EngineError, load_codec, warm_up
from app.audio.metrics import EngineEvent, MetricsQueue
from app.audio.recorder import RecordingError, SessionRecorder
from app.audio.replay_control import Replayer
from app.audio.session import LiveSession
from app.codec.tuning import tuned_threads

__all__ = ["LiveChanges"]


class LiveChanges:
    """The switches and settings of a running session (mixed into Engine)."""

    queue: MetricsQueue
    info: dict
    _session: LiveSession | None
    _actions: collections.deque
    _chunk_done: threading.Event
    replayer: Replayer
    monitor: str
    _classic_wanted = False

    # The worker's side of a change, defined by Engine.
    def _announce_codec(self, session: LiveSession) -> None:
        raise NotImplementedError

    def _reconnect(self, session: LiveSession, why: str) -> bool:
        raise NotImplementedError

    def _finish(self, reason: str) -> None:
        raise NotImplementedError

    def request_codec(self, model: Path | str | None = None, codebooks: int | None = None) -> threading.Thread:
        """Loads another model in the background and swaps it in between chunks.

        Audio keeps flowing with the current codec while the new one loads; an error becomes an
        "error" event and the current codec stays. A load that ends after the session does is
        dropped.
        """
        session = self._require_session()
        model = model or session.config.model
        # Thread counts are timed only while nothing streams: a timing taken now would measure the
        # stream as much as the model, and be kept.
        threads = session.config.threads or tuned_threads(model, may_measure=False)
        config = replace(session.config, model=model, codebooks=codebooks, threads=threads)

        def load() -> None:
            codec = load_codec(config)
            self._between_chunks()  # the warm-up's cold first call in the worker's idle time
            warm_up(codec, config.chunk_samples, calls=1)
            if config.replay_ready:
                self.replayer.prepare(codec)

            def swap(current: LiveSession) -> None:
                current.codec, current.config = codec, replace(current.config, model=config.model, codebooks=codebooks)
                self._announce_codec(current)

            self._schedule(session, swap)

        return self._in_background(session, load, "could not switch model")

    def request_codebooks(self, codebooks: int) -> threading.Thread:
        """Switches the codebook count of the running codec, its stream state carrying on.

        The decoder for k < K is prepared in the background (built once, then cached) and run
        once, so its first call in the stream is not a cold one; the switch itself happens
        between two chunks.
        """
        session = self._require_session()
        codec = session.codec

        def prepare() -> None:
            codec.prepare_codebooks(codebooks)
            self._between_chunks()
            codec.warm_codebooks(codebooks)
            if session.config.replay_ready:  # a replay at the new count: made here, not then
                self.replayer.prepare(codec, codebooks)

            def switch(current: LiveSession) -> None:
                if current.codec is codec:  # not replaced by another model meanwhile
                    codec.set_codebooks(codebooks)
                    current.config = replace(current.config, codebooks=codebooks)
                    self._announce_codec(current)

            self._schedule(session, switch)

        return self._in_background(session, prepare, "could not switch codebooks")

    def set_classic_paths(self, on: bool) -> threading.Thread | None:
        """Turns the classic paths (Codec2, Opus) on or off in the running session.

        On: the codecs open on a loader thread and begin at the stream's position when they are
        put in; the delay grows by their look-ahead (spliced in over about a second) and only
        then can they be heard (`audible_bank` in session.py). Off: the delay falls back the same way
        and a classic monitor goes back to Mimi's path. Returns the loader thread, if any.
        """
        session = self._require_session()
        self._classic_wanted = on  # the last word counts: a bank still opening is not put in after "off"
        if not on:
            self._schedule(session, self._take_out_bank)
            return None
        if session.bank is not None:
            return None

        def open_bank() -> None:
            bank, warning = ClassicBank.open()
            if bank is None:
                self.queue.put(EngineEvent("warning", warning or "the classic monitor paths are off"))
                return

            def put_in(current: LiveSession) -> None:
                if current.bank is not None or not self._classic_wanted:
                    return  # already on (asked twice), or turned off while it opened
                bank.begin(current.input_pos)
                current.bank, current.bank_audible = bank, False
                current.timing.set_cover_extra(bank.cover_extra_s)
                current.config = replace(current.config, classic_paths=True)
                self.info["classic_bps"] = bank.bps()
                self.info["classic_delay_samples"] = {key: bank.delay(key) for key in bank.codecs}
                self.queue.put(EngineEvent("classic", f"Codec2 and Opus run in step: the delay grows by "
                                                      f"{bank.cover_extra_s * 1000:.0f} ms"))

            self._schedule(session, put_in)

        return self._in_background(session, open_bank, "could not start the classic paths")

    def _take_out_bank(self, session: LiveSession) -> None:
        if session.bank is None:
            return
        if session.bank.codecs.keys() & {self.monitor, session.applied_monitor}:
            self.monitor = "codec"  # the path heard is going: Mimi's, faded in
        self.info["classic_bps"] = session.bank.bps()  # what they measured, kept for the summary
        session.timing.set_cover_extra(0.0)
        monitor = "codec" if session.config.monitor in session.bank.codecs else session.config.monitor
        session.bank = None
        session.config = replace(session.config, classic_paths=False, monitor=monitor)
        self.queue.put(EngineEvent("classic", "Codec2 and Opus off: the delay falls back"))

    def _between_chunks(self, timeout_s: float = 1.0) -> None:
        """Waits (loader thread) until the worker has just finished a chunk: work started now
        shares the CPU with the worker's idle time rather than with its next chunk."""
        self._chunk_done.clear()
        self._chunk_done.wait(timeout_s)

    def set_devices(self, input_device: int | str | None, output_device: int | str | None) -> None:
        """Moves the running session to other devices between two chunks (a short gap); the
        codec, timing and recording carry on. If they cannot open, the defaults are used."""
        session = self._require_session()

        def apply(current: LiveSession) -> None:
            current.config = replace(current.config, input_device=input_device, output_device=output_device)
            if not self._reconnect(current, "switching audio devices"):
                self.queue.put(EngineEvent("error", "no audio device could be opened"))
                self._finish("device error: no audio device could be opened")

        self._schedule(session, apply)

    def set_kv_window(self, window: int | None) -> None:
        """Changes the KV window of the running codec; it applies at the next chunk."""
        session = self._require_session()

        def apply(current: LiveSession) -> None:
            current.codec.set_kv_window(window)
            current.config = replace(current.config, kv_window=window)
            self.info["kv_window"] = window

        self._schedule(session, apply)

    def set_recording(self, folder: Path | None) -> None:
        """Starts recording into `folder` (or stops, with None) between two chunks."""
        session = self._require_session()

        def apply(current: LiveSession) -> None:
            if current.recorder is not None:
                current.recorder.close()
                current.recorder = None
            if folder is not None:
                try:
                    current.recorder = SessionRecorder(folder)
                except RecordingError as exc:
                    self.queue.put(EngineEvent("error", str(exc)))
            paths = [str(current.recorder.input_path), str(current.recorder.output_path)] if current.recorder else None
            self.info["recording"] = paths
            self.queue.put(EngineEvent("recording", "\n".join(paths or [])))

        self._schedule(session, apply)

    def _stop_recording(self, session: LiveSession, why: str) -> None:
        if session.recorder is not None:
            session.recorder.close()
        session.recorder = None
        self.info["recording"] = None
        self.queue.put(EngineEvent("recording", ""))
        self.queue.put(EngineEvent("warning", why))

    def _require_session(self) -> LiveSession:
        session = self._session
        if session is None:
            raise EngineError("the engine is not running")
        return session

    def _schedule(self, session: LiveSession, action: Callable[[LiveSession], None]) -> None:
        # deque.append is atomic: the caller's thread hands the action to the worker.
        self._actions.append((session, action))

    def _in_background(self, session: LiveSession, work: Callable[[], None], failure: str) -> threading.Thread:
        """Runs a switch's preparation on a loader thread. Its chunks, and those of the first
        seconds after it lands (or fails), are a disturbance the timing does not learn from."""
        self._schedule(session, lambda current: current.timing.hold_disturbed(True, current.clock()))

        def release(current: LiveSession) -> None:
            current.timing.hold_disturbed(False, current.clock())

        def run() -> None:
            try:
                work()
            except Exception as exc:  # noqa: BLE001 - reported to the user, the engine keeps running
                self.queue.put(EngineEvent("error", f"{failure}: {exc}"))
            finally:
                self._schedule(session, release)  # after the swap the work scheduled

        loader = threading.Thread(target=run, name="mimi-loader", daemon=True)
        loader.start()
        return loader
