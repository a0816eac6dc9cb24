"""The KV cache view: how many tokens the encoder and decoder transformers attend to (GUI thread)."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import Qt

from app.audio.metrics import FrameMetrics
from app.ui import theme
from app.ui.plots.history_plot import HistoryPlot, limit_line
from app.ui.plots.style import title


class KVPlot(HistoryPlot):
    """KV cache length of the encoder and decoder transformers, with the window line."""

    def __init__(self):
        super().__init__(title(f"KV cache length {title('encoder', theme.ENCODE)} / "
                               f"{title('decoder', theme.DECODE)}"), "tokens")
        self.encoder = self.plot(pen=theme.pen(theme.ENCODE), skipFiniteCheck=True)
        self.decoder = self.plot(pen=theme.pen(theme.DECODE, style=Qt.PenStyle.DashLine), skipFiniteCheck=True)
        self.window_line = limit_line(theme.BUDGET, "window {value:.0f}")
        self.addItem(self.window_line)
        self.curves = (self.encoder, self.decoder)
        self._window: int | None = 250
        self.set_window(250)

    def set_window(self, window: int | None) -> None:
        self._window = window
        self.window_line.setVisible(window is not None)
        if window is not None:
            self.window_line.setValue(window)
        self._dirty = True

    def _values(self, m: FrameMetrics) -> tuple[float, float]:
        return m.kv_encoder, m.kv_decoder

    def _rescale(self, data: np.ndarray) -> None:
        top = max(float(data[:, 1:].max()), self._window or 0, 10) * 1.15
        self.setYRange(0, top, padding=0)
