"""The latency budget as one stacked bar: where each millisecond of the round trip goes (GUI thread).

Fed the median of each stage over the last second of chunks (FrameMetrics.budget_ms); drawn with
QPainter, no plot machinery: seven rectangles and their labels, repainted at the text rate.
"""

from __future__ import annotations

from PySide6.QtCore import QRectF, Qt
from PySide6.QtGui import QColor, QPainter
from PySide6.QtWidgets import QSizePolicy, QWidget

from app.ui import theme

# Stage name in FrameMetrics.budget_ms -> (label, colour).
STAGES = {
    "input_device": ("in device", "#3c7d52"),
    "frame": ("frame", theme.INPUT),
    "input_wait": ("input wait", "#9bbf5a"),
    "encode": ("encode", theme.ENCODE),
    "decode": ("decode", theme.DECODE),
    "speaker_queue": ("speaker queue", theme.OUTPUT),
    "output_device": ("out device", "#7d5aa8"),
}
MIN_SCALE_MS = 200.0  # the bar's full width at least this long, so small totals look small
TOTAL_WIDTH_PX = 90


class LatencyBudgetBar(QWidget):
    """A horizontal stacked bar of the latency stages with their ms and the total."""

    def __init__(self) -> None:
        super().__init__()
        self.setMinimumHeight(34)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.setToolTip("Where the round trip's delay goes, median of the last second: the input device, "
                        "waiting for a whole frame, input waiting behind it, encode, decode, the speaker "
                        "queue the timing keeps (it covers the slowest recent chunks), the output device")
        self.budget: dict[str, float] = {}

    def set_budget(self, budget: dict[str, float]) -> None:
        self.budget = dict(budget)
        self.update()

    @property
    def total_ms(self) -> float:
        return sum(self.budget.values())

    def paintEvent(self, event) -> None:  # noqa: N802 - Qt's name
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing, False)
        rect = self.rect().adjusted(0, 0, -1, -1)
        painter.fillRect(rect, QColor(theme.PANEL))
        bar = QRectF(rect.left() + 6, rect.top() + 5, rect.width() - TOTAL_WIDTH_PX - 12, rect.height() - 10)
        if not self.budget:
            painter.setPen(QColor(theme.MUTED))
            painter.drawText(bar, Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignLeft,
                             "latency budget: start streaming to see it")
            return
        scale = bar.width() / max(MIN_SCALE_MS, self.total_ms)
        x = bar.left()
        for name, (label, colour) in STAGES.items():
            ms = self.budget.get(name, 0.0)
            width = ms * scale
            if width <= 0:
                continue
            segment = QRectF(x, bar.top(), width, bar.height())
            painter.fillRect(segment, QColor(colour))
            text = f"{label} {ms:.0f}" if width > 8 * (len(label) + 4) else f"{ms:.0f}" if width > 22 else ""
            if text:
                painter.setPen(QColor("#0b0d10"))
                painter.drawText(segment, Qt.AlignmentFlag.AlignCenter, text)
            x += width
        painter.setPen(QColor(theme.TEXT))
        total = QRectF(rect.right() - TOTAL_WIDTH_PX, rect.top(), TOTAL_WIDTH_PX - 4, rect.height())
        painter.drawText(total, Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignRight, f"{self.total_ms:.0f} ms")
