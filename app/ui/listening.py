"""What the user listens to: the monitor path, the A/B toggle, the instant replay, their keys and the
live quality figure (GUI thread)."""

from __future__ import annotations

import dataclasses
import time
from typing import TYPE_CHECKING

from PySide6.QtGui import QKeySequence, QShortcut

from app.audio.metrics import EngineEvent
from app.quality.live import QualityReading
from app.ui.controls import CLASSIC_KEYS, CLASSIC_LABELS, MONITOR_LABELS, REPLAY_TEXT, REPLAYING_TEXT

if TYPE_CHECKING:
    from app.ui.main_window import MainWindow

REPLAY_KEY = "P"
REPLAY_ENDINGS = ("Replay done", "Replay stopped", "Replay ended")


class ListeningControl:
    """The monitor buttons and keys 1-7, Space, the replay button and P, and the quality figure."""

    def __init__(self, window: MainWindow):
        self.window = window
        self.controls, self.prefs, self.bridge = window.controls, window.prefs, window.bridge
        c = self.controls
        for mode, button in c.monitor_buttons.items():
            button.clicked.connect(lambda _=False, m=mode: self.set_monitor(m))
        c.classic_check.toggled.connect(self._on_classic_toggled)
        c.replay_button.clicked.connect(self.toggle_replay)
        self._before_replay: QualityReading | None = None
        keys_to_monitors = {key: mode for mode, _, key in (*MONITOR_LABELS, *CLASSIC_LABELS)}
        for key, mode in keys_to_monitors.items():
            QShortcut(QKeySequence(key), window).activated.connect(lambda m=mode: self.set_monitor(m))
        QShortcut(QKeySequence("Space"), window).activated.connect(self.toggle_ab)
        QShortcut(QKeySequence(REPLAY_KEY), window).activated.connect(self.toggle_replay)

    # -- monitor ---------------------------------------------------------------------------------

    def monitor(self) -> str:
        return next((m for m, b in self.controls.monitor_buttons.items() if b.isChecked()), "codec")

    def set_monitor(self, mode: str) -> None:
        if mode not in self.controls.monitor_buttons:
            mode = "codec"
        if mode in CLASSIC_KEYS and not self.controls.classic_check.isChecked():  # this session does not run them
            self.window.show_message("info", "tick “Codec2 / Opus in step” to hear the classic codecs",
                                     topic="monitor")
            return
        self.controls.set_monitor(mode)
        self.bridge.set_monitor(mode)
        self.prefs.set_monitor(mode)
        self.window.refresh_text()

    def toggle_ab(self) -> None:
        self.set_monitor("bypass" if self.monitor() == "codec" else "codec")

    def _on_classic_toggled(self, on: bool) -> None:
        self.prefs.set_classic_paths(on)
        if self.bridge.running:  # the running session starts or stops them too
            self.bridge.set_classic_paths(on)
        self.window.update_enabled()
        if not on and self.monitor() in CLASSIC_KEYS:
            self.set_monitor("codec")

    # -- replay ----------------------------------------------------------------------------------

    def toggle_replay(self) -> None:
        """Starts the replay of the last seconds (streaming or stopped), or ends the one playing."""
        if self.bridge.replaying:
            self.bridge.cancel_replay()
        else:
            live = self.bridge.quality()  # shown, greyed, while the replay plays
            if self.bridge.replay() is not None:
                self._before_replay = dataclasses.replace(live, stale=True) if live else None
                self.controls.replay_button.setText(REPLAYING_TEXT)

    def on_replay_event(self, event: EngineEvent) -> None:
        """A replay step: the banner says which path plays now, and goes when the replay ends."""
        ended = event.message.startswith(REPLAY_ENDINGS)
        self.window.show_message("info", event.message, topic="replay")
        if ended:
            self.controls.replay_button.setText(REPLAY_TEXT)

    def refresh(self) -> None:
        """The replay button follows the replay (it can end by itself)."""
        if not self.bridge.replaying and self.controls.replay_button.text() != REPLAY_TEXT:
            self.controls.replay_button.setText(REPLAY_TEXT)

    def quality(self) -> QualityReading | None:
        if self.bridge.replaying and self.bridge.running:  # the live path is not what plays now
            return self._before_replay or QualityReading("replay", None, 0.0, time.monotonic(), "replay")
        return self.bridge.quality()
