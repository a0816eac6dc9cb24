"""The base of the line plots that scroll: two per-chunk series over the last 10 s (GUI thread)."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt

from app.audio.metrics import FrameMetrics
from app.ui import theme
from app.ui.plots.analysis import HistoryRing
from app.ui.plots.style import HISTORY_CHUNKS, HISTORY_PLOT_MIN, HISTORY_S, style_plot, visible


class HistoryPlot(pg.PlotWidget):
    """A plot of two per-chunk series over the last HISTORY_S seconds, redrawn only when dirty."""

    def __init__(self, heading: str, y_label: str):
        super().__init__()
        item = self.getPlotItem()
        style_plot(item, heading, grid_x=True, grid_y=True)
        self.setMinimumHeight(HISTORY_PLOT_MIN)
        item.setLabel("left", y_label)
        item.setLabel("bottom", "seconds ago")
        self._ring = HistoryRing(HISTORY_CHUNKS, 3)  # session_s and the two series
        self.curves: tuple = ()
        self.setXRange(-HISTORY_S, 0, padding=0)
        self._dirty = False

    def _values(self, m: FrameMetrics) -> tuple[float, float]:
        raise NotImplementedError

    def _shown(self, data: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The two curves' y values (overridden to stack them)."""
        return data[:, 1], data[:, 2]

    def _rescale(self, data: np.ndarray) -> None:
        raise NotImplementedError

    def reset(self) -> None:
        self._ring.reset()
        self._dirty = True

    @property
    def points(self) -> int:
        return len(self._ring.view())

    def add(self, m: FrameMetrics) -> None:
        self._ring.append((m.session_s, *self._values(m)))
        self._dirty = True

    def redraw(self) -> None:
        if not self._dirty or not visible(self):
            return
        self._dirty = False
        data = self._ring.view()
        if not len(data):
            for curve in self.curves:
                curve.setData([], [])
            return
        x = data[:, 0] - data[-1, 0]
        for curve, y in zip(self.curves, self._shown(data), strict=True):
            curve.setData(x, y, skipFiniteCheck=True)
        self._rescale(data)


def limit_line(colour: str, label: str) -> pg.InfiniteLine:
    """A dashed horizontal line at a limit (a budget, a window), labelled at its left end."""
    return pg.InfiniteLine(angle=0, pen=theme.pen(colour, style=Qt.PenStyle.DashLine), label=label,
                           labelOpts={"color": colour, "position": 0.02, "anchors": [(0, 1), (0, 1)]})
