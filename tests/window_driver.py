"""Streams through the real window and the real engine on real PortAudio (a subprocess of the live GUI tests).

    python tests/window_driver.py MODEL --settings INI --seconds S [--source tone|file --input WAV]
        [--at T ACTION]... [--screenshot PNG]

Run under a private audio server's environment (PULSE_SOURCE / PULSE_SINK, see tests/pulse.py)
with QT_QPA_PLATFORM=offscreen, it opens the MainWindow exactly as the app does (the Engine
opens the default PortAudio devices), loads MODEL through `model_override`, picks the source and
presses Start. On stderr: "streaming" once the window runs the stream, every engine event as
"event kind: message" and every change of the banner as "banner kind: text" (or "banner hidden").
It streams for S seconds after "streaming", then prints a JSON summary on stdout:
`running` (window.bridge.running just before Stop), `reconnects` (the engine's
info["reconnects"]), `banner` (its text then), `banners` (every message it showed, in order, as
[kind, text]), `frames_seen` (code frames the plots got) and `summary` (the engine's, at Stop).
Exit code 0, or 2 if the window never started streaming.

`--at T ACTION` does what a user would, T s after "streaming": `classic-on` / `classic-off` (the
"Codec2 / Opus in step" box), `monitor:MODE` (a monitor button), `replay` (the replay button).
`--screenshot PNG` grabs the window at the end (how the README's screenshot is made, under
xvfb-run so the plots draw as on a desktop).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from PySide6.QtCore import QEventLoop, QSettings  # after the path above
from PySide6.QtWidgets import QApplication

from app.audio.metrics import EngineEvent
from app.ui.main_window import MainWindow

START_TIMEOUT_S = 60.0  # model load and stream start, on a loaded machine


def say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


class BannerLog:
    """Every message the banner shows, and what it shows now (polled at each pump)."""

    def __init__(self, window: MainWindow) -> None:
        self.window = window
        self.shown: list[tuple[str, str]] = []
        self._last: tuple[bool, str, str] | None = None

    def poll(self) -> None:
        banner = self.window.banner
        now = (banner.isVisible(), banner.kind, banner.text)
        if now == self._last:
            return
        self._last = now
        visible, kind, text = now
        if visible:
            self.shown.append((kind, text))
            say(f"banner {kind}: {text}")
        else:
            say("banner hidden")


def pump(app: QApplication, banners: BannerLog, until: Callable[[], bool], timeout_s: float) -> bool:
    """Runs the Qt event loop (timers, the bridge's UI tick) until `until()` or the timeout."""
    deadline = time.monotonic() + timeout_s
    while True:
        app.processEvents(QEventLoop.ProcessEventsFlag.AllEvents, 20)
        banners.poll()
        if until():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.01)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("model")
    parser.add_argument("--settings", required=True, help="the window's QSettings ini file")
    parser.add_argument("--seconds", type=float, required=True)
    parser.add_argument("--source", default="tone")
    parser.add_argument("--input", help="the WAV file for --source file (looped)")
    parser.add_argument("--at", nargs=2, action="append", default=[], metavar=("T", "ACTION"))
    parser.add_argument("--screenshot", help="save the window as this PNG before Stop")
    args = parser.parse_args()
    app = QApplication([sys.argv[0]])
    settings = QSettings(args.settings, QSettings.Format.IniFormat)
    window = MainWindow(settings=settings, model_override=Path(args.model), interactive=False)
    window.bridge.sigEvent.connect(lambda event: say(f"event {event.kind}: {event.message}")
                                   if isinstance(event, EngineEvent) else None)
    window.show()
    banners = BannerLog(window)
    bridge = window.bridge
    if not pump(app, banners, lambda: bridge.codec is not None and not bridge.busy, START_TIMEOUT_S):
        say("the model never loaded")
        return 2
    if args.input:
        window.set_input_file(Path(args.input))
    window.set_source(args.source)
    if not window.start() or not pump(app, banners, lambda: bridge.running and not bridge.busy, START_TIMEOUT_S):
        say("the window never started streaming")
        window.close()
        return 2
    say("streaming")
    started = time.monotonic()
    for when, action in sorted(((float(t), a) for t, a in args.at), key=lambda item: item[0]):
        pump(app, banners, lambda: False, max(0.0, when - (time.monotonic() - started)))
        say(f"action {action}")
        act(window, action)
    pump(app, banners, lambda: False, max(0.0, args.seconds - (time.monotonic() - started)))
    if args.screenshot:
        window.grab().save(args.screenshot)
    result = {
        "running": bridge.running,
        "reconnects": (bridge.engine.info or {}).get("reconnects"),
        "banner": window.banner.text,
        "banners": banners.shown,
        "frames_seen": window.plots.codebooks.frames_seen,
    }
    result["summary"] = bridge.stop()
    pump(app, banners, lambda: not bridge.running, 5.0)
    window.close()
    print(json.dumps(result, default=str), flush=True)
    return 0


def act(window: MainWindow, action: str) -> None:
    """One user action on the window (see the module docstring)."""
    if action in ("classic-on", "classic-off"):
        window.controls.classic_check.setChecked(action == "classic-on")
    elif action.startswith("monitor:"):
        window.controls.monitor_buttons[action.split(":", 1)[1]].click()
    elif action == "replay":
        window.controls.replay_button.click()
    else:
        raise SystemExit(f"unknown action {action!r}")


if __name__ == "__main__":
    sys.exit(main())
