"""The compute view: encode and decode time per chunk, stacked, against the chunk's budget (GUI thread)."""

from __future__ import annotations

import numpy as np

from app.audio.metrics import FrameMetrics
from app.ui import theme
from app.ui.plots.history_plot import HistoryPlot, limit_line
from app.ui.plots.style import title

HEADROOM = 1.25  # the y axis shows the budget with a quarter of it to spare


class LatencyPlot(HistoryPlot):
    """Encode and decode time per chunk, stacked, against the chunk's real-time budget."""

    def __init__(self):
        super().__init__(title(f"Compute per chunk {title('encode', theme.ENCODE)} + {title('decode', theme.DECODE)}"
                               f" vs {title('budget', theme.BUDGET)}"), "ms")
        self.total = self.plot(pen=theme.pen(theme.DECODE), fillLevel=0, brush=theme.brush(theme.DECODE, 110),
                               skipFiniteCheck=True)
        self.encode = self.plot(pen=theme.pen(theme.ENCODE), fillLevel=0, brush=theme.brush(theme.ENCODE, 130),
                                skipFiniteCheck=True)
        self.budget = limit_line(theme.BUDGET, "budget {value:.0f} ms")
        self.addItem(self.budget)
        self.curves = (self.total, self.encode)
        self._budget_ms = 80.0
        self._y_max = 0.0
        self.set_budget(80)

    def set_budget(self, chunk_ms: float) -> None:
        self._budget_ms = float(chunk_ms)
        self.budget.setValue(self._budget_ms)
        self._set_y(self._budget_ms * HEADROOM)

    def _set_y(self, top: float) -> None:
        if abs(top - self._y_max) > 1e-6:
            self._y_max = top
            self.setYRange(0, top, padding=0)

    def _values(self, m: FrameMetrics) -> tuple[float, float]:
        return m.encode_ms, m.decode_ms

    def _shown(self, data: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return data[:, 1] + data[:, 2], data[:, 1]  # total behind, encode in front: stacked

    def _rescale(self, data: np.ndarray) -> None:
        peak = float((data[:, 1] + data[:, 2]).max())
        top = max(self._budget_ms * HEADROOM, peak * 1.1)
        if top > self._y_max or top < 0.6 * self._y_max:  # rescale rarely: steady axes read better
            self._set_y(top)
