"""The status bar: a busy spinner, one message at a time, and the session's numbers (GUI thread).

QStatusBar cuts its message at the first permanent label; `fit` hides the least needed labels
while a message needs their room, and shows them again once it has gone.
"""

from __future__ import annotations

import time
from collections import deque
from pathlib import Path

from PySide6.QtWidgets import QLabel, QProgressBar, QStatusBar

from app.audio.metrics import FrameMetrics
from app.ui import theme
from app.ui.controls import format_bps

# Status labels a status bar message may cover when it needs their room, first to go first: the
# bitrate and RTF are also on the readout cards above, the frame rate matters least.
STATUS_YIELDS = ("bitrate", "rtf", "fps", "dropped")
LABEL_TIPS = {
    "xruns": "Dropouts you may hear: the speaker queue running dry (underruns) and the audio device "
             "reporting that its callbacks came late (device xruns); overruns: input the app had no room for",
    "dropped": "Audio skipped to win back delay after a disturbance: whole input frames dropped and "
               "crossfaded splices of the output",
    # Each label has its own tooltip, so the bar's (the current message's) shows only over the message.
    "model": "The model streaming (or loaded) and the codebooks it decodes with",
    "bitrate": "Code bits sent per second",
    "rtf": "Compute time / audio time over the last second",
    "fps": "How often the plots are redrawn",
}
FPS_TICKS = 64  # UI ticks the frame rate is measured over: ~2 s at 30 fps


def recorded_short(paths: list[str]) -> str:
    """The pair's names without their folder, e.g. "recorded mimi-<time>-input.wav and -codec.wav",
    so that the line fits the status bar next to its labels."""
    first, *rest = (Path(p).name for p in paths)
    stem = first.rsplit("-", 1)[0] + "-"  # mimi-<time>[-n]-: the part both names share
    return "recorded " + " and ".join([first, *(n[len(stem) - 1:] if n.startswith(stem) else n for n in rest)])


class StatusLine:
    """Fills a window's QStatusBar: the busy spinner and text, the message, the permanent labels."""

    def __init__(self, bar: QStatusBar):
        self.bar = bar
        self.busy_bar = QProgressBar()
        self.busy_bar.setRange(0, 0)  # indeterminate: a spinner
        self.busy_bar.setMaximumWidth(120)
        self.busy_bar.setMaximumHeight(14)
        self.busy_bar.setTextVisible(False)
        self.busy_bar.hide()
        self.busy_label = QLabel()
        bar.addWidget(self.busy_bar)
        bar.addWidget(self.busy_label)
        self.labels = {name: QLabel() for name in ("model", "bitrate", "rtf", "xruns", "dropped", "fps")}
        for name, tip in LABEL_TIPS.items():
            self.labels[name].setToolTip(tip)
        for label in self.labels.values():
            label.setStyleSheet(f"color: {theme.MUTED}; padding: 0 6px;")
            bar.addPermanentWidget(label)
        self._tip = ""  # tooltip of the current message
        self._tick_times: deque[float] = deque(maxlen=FPS_TICKS)
        bar.messageChanged.connect(self.fit)

    def show(self, text: str, tip: str = "", ms: int = 5000) -> None:
        self._tip = tip
        self.bar.showMessage(text, ms)

    def set_busy(self, busy: bool, text: str) -> None:
        self.busy_bar.setVisible(busy)
        self.busy_label.setText(text if busy else "")

    def tick(self) -> None:
        """Counts one plot redraw, for the frame rate."""
        self._tick_times.append(time.perf_counter())

    def fps(self) -> float:
        ticks = self._tick_times
        return (len(ticks) - 1) / (ticks[-1] - ticks[0]) if len(ticks) > 1 and ticks[-1] > ticks[0] else 0.0

    def refresh(self, model: str, bitrate_bps: float | None, last: FrameMetrics | None, rtf: float | None) -> None:
        """The labels: the model and its bitrate; the last chunk's counters and `rtf` while streaming
        (`last` None: they keep what they showed)."""
        s = self.labels
        s["model"].setText(model)
        s["bitrate"].setText(format_bps(bitrate_bps) if bitrate_bps else "")
        if last is not None and rtf is not None:
            s["rtf"].setText(f"RTF {rtf:.2f}")
            s["xruns"].setText(f"dropouts {last.dropouts} (underruns {last.underruns} · device xruns {last.xruns})"
                               + (f" · overruns {last.overruns}" if last.overruns else ""))
            # Which device clicked says which one needs the longer latency.
            s["xruns"].setToolTip(f"{LABEL_TIPS['xruns']}.\nDevice xruns so far: microphone {last.input_xruns}, "
                                  f"speaker {last.output_xruns}.")
            s["dropped"].setText(f"skipped {last.skipped_ms / 1000:.1f} s")
        s["fps"].setText(f"UI {self.fps():.0f} fps")
        if self.bar.currentMessage():  # the labels' new widths may crowd it
            self.fit()

    def fit(self, text: str | None = None) -> None:
        """Gives the message the room it needs, taken from the labels in STATUS_YIELDS' order."""
        bar = self.bar
        text = bar.currentMessage() if text is None else text
        bar.setToolTip(self._tip if text else "")
        hidden: set[str] = set()
        if text:
            widths = {name: label.sizeHint().width() for name, label in self.labels.items()}
            free = bar.width() - sum(widths.values())
            need = bar.fontMetrics().horizontalAdvance(text) + 40  # + margins, spacing and the size grip
            for name in STATUS_YIELDS:
                if free >= need:
                    break
                hidden.add(name)
                free += widths[name]
        for name in STATUS_YIELDS:
            self.labels[name].setVisible(name not in hidden)  # no-op when unchanged: no flicker
