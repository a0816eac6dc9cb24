"""What the window does with each engine event: a banner, the status bar, the recording's files,
the replay's steps (GUI thread)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from app.audio.metrics import EngineEvent
from app.ui.status_line import recorded_short

if TYPE_CHECKING:
    from app.ui.main_window import MainWindow

QUIET_STOP_REASONS = ("stopped", "restarting", "window closed")


def error_shown(window: MainWindow) -> bool:
    return window.banner.isVisible() and window.banner.kind == "error"


def show_event(window: MainWindow, event: EngineEvent) -> None:
    kind, message = event.kind, event.message
    if kind in ("error", "warning"):
        window.show_message(kind, message)
    elif kind == "info":  # e.g. the delay won back: it replaces the warning, then goes
        if not error_shown(window):
            window.show_message("info", message)
    elif kind == "stopped":
        _stopped(window, message)
    elif kind == "started":
        window.recording.paths = window.bridge.recording_paths()
        window.status_line.show(message.capitalize(), ms=4000)
    elif kind == "recording":
        window.recording.on_files(message)
    elif kind == "replay":
        window.listening.on_replay_event(event)
    else:
        window.status_line.show(message)
    window.recording.show_folder()


def _stopped(window: MainWindow, reason: str) -> None:
    if reason not in QUIET_STOP_REASONS:
        window.show_message("error", f"streaming stopped: {reason}")
    recorded, window.recording.paths = window.recording.paths, None
    if recorded and not error_shown(window):
        window.recording.show_recorded(recorded)
    elif recorded:
        window.status_line.show(f"Stopped; {recorded_short(recorded)}", str(Path(recorded[0]).parent))
    else:
        window.status_line.show(f"Stopped ({reason})")
