"""Small widgets of the main window: the message banner, the readout cards, the level meters (GUI thread)."""

from __future__ import annotations

from PySide6.QtCore import QRectF, Qt, QTimer
from PySide6.QtGui import QColor, QLinearGradient, QPainter
from PySide6.QtWidgets import (
    QFrame,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

from app.ui import theme


class Banner(QFrame):
    """One message above the plots: error (red), warning (amber) or info (blue), dismissible.

    A message may name the `topic` it is about ("model", "start", "source"): when that problem
    is resolved the window calls clear(topic), which leaves a message on another topic alone.
    """

    COLOURS = {"error": theme.ERROR_BG, "warning": theme.WARN_BG, "info": theme.INFO_BG}

    def __init__(self) -> None:
        super().__init__()
        layout = QHBoxLayout(self)
        layout.setContentsMargins(10, 6, 6, 6)
        self.label = QLabel()
        self.label.setWordWrap(True)
        self.label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.close_button = QPushButton("Dismiss")
        self.close_button.setFlat(True)
        self.close_button.clicked.connect(self.hide)
        layout.addWidget(self.label, 1)
        layout.addWidget(self.close_button, 0, Qt.AlignmentFlag.AlignTop)
        self.kind = ""
        self.topic: str | None = None
        # Counts the messages shown: a hide_later timer only hides the message it was set for,
        # even if the very same text was shown again meanwhile (its own timer then runs).
        self._serial = 0
        self.hide()

    def hide_later(self, ms: int) -> None:
        """Hides this message after `ms` unless another one replaced it meanwhile."""
        serial = self._serial
        QTimer.singleShot(ms, self, lambda: self.hide() if self._serial == serial else None)

    def show_message(self, kind: str, text: str, topic: str | None = None) -> None:
        self._serial += 1
        self.kind, self.topic = kind, topic
        title = {"error": "Error", "warning": "Warning", "info": ""}[kind]
        self.label.setText(f"<b>{title}:</b> {text}" if title else text)
        self.label.setToolTip(text)
        self.setStyleSheet(f"Banner {{ background: {self.COLOURS[kind]}; border-radius: 4px; }}"
                           f"QLabel {{ color: {theme.TEXT}; }}")
        self.show()

    def clear(self, *topics: str) -> None:
        """Hides the message if it is about one of `topics` (that problem is resolved)."""
        if self.isVisible() and self.topic is not None and self.topic in topics:
            self.hide()

    @property
    def text(self) -> str:
        return self.label.toolTip() if self.isVisible() else ""


class Readout(QFrame):
    """A small card: title above a large value."""

    def __init__(self, title: str, tooltip: str) -> None:
        super().__init__()
        self.setObjectName("readout")
        self.setStyleSheet(f"#readout {{ background: {theme.PANEL}; border-radius: 4px; }}")
        self.setToolTip(tooltip)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(10, 4, 10, 4)
        layout.setSpacing(0)
        head = QLabel(title.upper())
        head.setStyleSheet(f"color: {theme.MUTED}; font-size: 8pt; letter-spacing: 1px;")
        self.value = QLabel("–")
        self.value.setStyleSheet(f"color: {theme.TEXT}; font-size: 15pt; font-weight: 600;")
        layout.addWidget(head)
        layout.addWidget(self.value)

    def set(self, text: str, colour: str | None = None) -> None:
        self.value.setText(text)
        self.value.setStyleSheet(f"color: {colour or theme.TEXT}; font-size: 15pt; font-weight: 600;")


class LevelMeter(QWidget):
    """Horizontal RMS meter in dBFS with a decaying peak-hold tick (painted, no pyqtgraph)."""

    FLOOR_DB = -60.0

    def __init__(self, label: str, colour: str):
        super().__init__()
        self.label = label
        self.colour = QColor(colour)
        self.level_db = -120.0
        self.peak_db = -120.0
        self.setMinimumSize(160, 22)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)

    def set_level(self, db: float) -> None:
        self.level_db = db
        self.peak_db = max(db, self.peak_db - 1.5)  # ~45 dB/s decay at 30 fps
        if self.isVisible() and not self.window().isMinimized():  # no painting nobody sees
            self.update()

    def reset(self) -> None:
        self.level_db = self.peak_db = -120.0
        self.update()

    def _x(self, db: float, width: float) -> float:
        return max(0.0, min(1.0, (db - self.FLOOR_DB) / -self.FLOOR_DB)) * width

    def paintEvent(self, event) -> None:  # noqa: N802 - Qt override
        painter = QPainter(self)
        label_w = 34
        text_w = 64
        bar = QRectF(label_w, 4, self.width() - label_w - text_w, self.height() - 8)
        painter.setPen(QColor(theme.TEXT))
        painter.drawText(QRectF(0, 0, label_w - 4, self.height()),
                         Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignRight, self.label)
        painter.fillRect(bar, QColor(theme.PLOT_BG))
        gradient = QLinearGradient(bar.left(), 0, bar.right(), 0)
        gradient.setColorAt(0.0, self.colour.darker(160))
        gradient.setColorAt(0.75, self.colour)
        gradient.setColorAt(0.92, QColor("#ffd24f"))
        gradient.setColorAt(1.0, QColor(theme.BUDGET))
        filled = QRectF(bar.left(), bar.top(), self._x(self.level_db, bar.width()), bar.height())
        painter.fillRect(filled, gradient)
        peak_x = bar.left() + self._x(self.peak_db, bar.width())
        painter.fillRect(QRectF(peak_x - 1, bar.top(), 2, bar.height()), QColor(theme.TEXT))
        text = "  -inf dB" if self.level_db <= -119 else f"{self.level_db:6.1f} dB"
        painter.setPen(QColor(theme.MUTED))
        painter.drawText(QRectF(bar.right() + 4, 0, text_w - 4, self.height()),
                         Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignLeft, text)
        painter.end()
