"""The plot grid: codebooks on top, spectrograms, then latency and KV cache (GUI thread).

Each view keeps preallocated numpy history and splits its work in two: `add(metrics)` only
writes numbers into arrays (called for every chunk the bridge drained), `redraw()` pushes them to
pyqtgraph once per UI tick, and only when something changed and the widget is visible. Lines are
width-1 cosmetic pens with `skipFiniteCheck`; images are uint8 through a <= 256-entry LUT with fixed
levels, so pyqtgraph never rescans the data.
"""

from __future__ import annotations

from PySide6.QtWidgets import QGridLayout, QWidget

from app.audio.metrics import FrameMetrics
from app.ui.plots.codebooks import CodebookActivity
from app.ui.plots.kv_cache import KVPlot
from app.ui.plots.latency import LatencyPlot
from app.ui.plots.spectrogram import AudioTapReader, Spectrogram


class PlotsPanel(QWidget):
    """The plot grid: codebooks on top, spectrograms, then latency and KV cache."""

    def __init__(self, tap: AudioTapReader | None = None):
        super().__init__()
        self.codebooks = CodebookActivity()
        self.spectrogram = Spectrogram(tap)
        self.latency = LatencyPlot()
        self.kv = KVPlot()
        grid = QGridLayout(self)
        grid.setContentsMargins(0, 0, 0, 0)
        grid.setSpacing(6)
        grid.addWidget(self.codebooks, 0, 0, 1, 2)
        grid.addWidget(self.spectrogram, 1, 0, 1, 2)
        grid.addWidget(self.latency, 2, 0)
        grid.addWidget(self.kv, 2, 1)
        grid.setRowStretch(0, 5)
        grid.setRowStretch(1, 4)
        grid.setRowStretch(2, 4)

    def reset(self) -> None:
        self.codebooks.reset()
        self.latency.reset()
        self.kv.reset()
        self.spectrogram.reset()
        self.redraw()

    def add(self, m: FrameMetrics) -> None:
        self.codebooks.add(m)
        self.latency.add(m)
        self.kv.add(m)

    def redraw(self) -> None:
        self.codebooks.redraw()
        self.latency.redraw()
        self.kv.redraw()
        self.spectrogram.redraw()
