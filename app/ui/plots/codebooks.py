"""The codebook activity view: which code each codebook sent over the last 10 s, and its entropy (GUI thread)."""

from __future__ import annotations

import math

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QRectF, Qt
from PySide6.QtGui import QColor, QFont, QFontMetrics

from app.audio.metrics import FrameMetrics
from app.ui import theme
from app.ui.plots.analysis import HistoryRing, code_buckets, usage_entropy_bits
from app.ui.plots.style import HISTORY_FRAMES, HISTORY_S, style_plot, title, visible

DEFAULT_CODEBOOK_SIZE = 2048
NOT_SENT = 0  # heatmap value of a codebook that was not transmitted (LUT entry 0 = background)
NO_CODE = -1  # code history of a codebook that was not transmitted
MIN_ROWS = 16  # codebooks the history holds without growing
CODEBOOK_TICK_PT = 8.0  # the codebook numbers: small enough for 16 rows in a short plot
CODEBOOK_PLOT_MIN = 190  # px, the activity plot's least height (8 codebooks or fewer)
CODEBOOK_CHROME_PX = 90  # px of that plot that are not rows: title, time axis and its label, margins


def code_lut(entries: int = 256) -> np.ndarray:
    """Colour per code bucket (uint8 RGBA, `entries` rows); entry 0 is the 'not sent' background."""
    lut = pg.colormap.get("turbo").getLookupTable(0.0, 1.0, entries, alpha=True).astype(np.ubyte)
    background = QColor(theme.PLOT_BG)
    lut[NOT_SENT] = (background.red(), background.green(), background.blue(), 255)
    return lut


class CodebookActivity(pg.GraphicsLayoutWidget):
    """Heatmap codebook x last 10 s of frames (colour = code index) and per-codebook usage entropy."""

    def __init__(self):
        super().__init__()
        self.setMinimumHeight(CODEBOOK_PLOT_MIN)
        self.ci.layout.setSpacing(4)
        self.codebook_size = DEFAULT_CODEBOOK_SIZE
        self.rows = 8
        self.frames_seen = 0
        self._new_history(MIN_ROWS)
        self._dirty = False

        self.heat = self.addPlot(row=0, col=0)
        style_plot(self.heat, title("Codebook activity " + title("(colour = code index, last 10 s)", theme.MUTED)))
        self.image = pg.ImageItem(axisOrder="row-major")
        self.image.setLookupTable(code_lut())
        self.image.setLevels((0, 255))
        self.heat.addItem(self.image)
        self.heat.setLabel("left", "codebook")
        self.heat.setLabel("bottom", "seconds ago")
        self.heat.invertY(True)  # codebook 1 (the coarsest) on top
        self.tick_font = QFont(self.font())
        self.tick_font.setPointSizeF(CODEBOOK_TICK_PT)
        self.heat.getAxis("left").setTickFont(self.tick_font)

        self.bars_plot = self.addPlot(row=0, col=1)
        style_plot(self.bars_plot, title("Bits used"), grid_x=True)
        self.bars_plot.setYLink(self.heat)
        self.bars_plot.invertY(True)
        self.bars_plot.hideAxis("left")
        self.bars_plot.setLabel("bottom", "bits / frame")
        self.bars = pg.BarGraphItem(x0=np.zeros(1), y=np.zeros(1), height=0.8, width=np.zeros(1),
                                    brush=theme.brush(theme.ACCENT, 200), pen=pg.mkPen(None))
        self.bars_plot.addItem(self.bars)
        self.max_line = pg.InfiniteLine(angle=90, pen=theme.pen(theme.BUDGET, style=Qt.PenStyle.DashLine))
        self.sample_line = pg.InfiniteLine(angle=90, pen=theme.pen(theme.MUTED, style=Qt.PenStyle.DotLine))
        self.bars_plot.addItem(self.max_line)
        self.bars_plot.addItem(self.sample_line)
        self.ci.layout.setColumnStretchFactor(0, 5)
        self.ci.layout.setColumnStretchFactor(1, 1)
        self.set_model(8, DEFAULT_CODEBOOK_SIZE)

    def _new_history(self, rows: int) -> None:
        # One row per frame, one column per codebook: the codes (for the entropy) and their colours.
        self._codes = HistoryRing(HISTORY_FRAMES, rows, np.int16, fill=NO_CODE)
        self._image = HistoryRing(HISTORY_FRAMES, rows, np.uint8, fill=NOT_SENT)

    def set_model(self, max_codebooks: int, codebook_size: int | None) -> None:
        """Rows = the model's K (dropped codebooks show as background); entropy max = log2(size)."""
        self.codebook_size = int(codebook_size or DEFAULT_CODEBOOK_SIZE)
        rows = max(1, int(max_codebooks))
        if rows > self._codes.view(full=True).shape[1]:
            self._new_history(rows)
        self.rows = rows
        # setRect scales by the current image size: give it the right-shaped image first.
        self.image.setImage(self._shown(self._image), autoLevels=False, levels=(0, 255))
        self.image.setRect(QRectF(-HISTORY_S, 0, HISTORY_S, rows))
        self.heat.setXRange(-HISTORY_S, 0, padding=0)
        self.heat.setYRange(0, rows, padding=0)
        # Every codebook numbered (with every other one, 16 codebooks read as 1, 3, 5...): the plot
        # is made tall enough for one number per row, taken from the plots below it when small.
        self.heat.getAxis("left").setTicks([[(r + 0.5, str(r + 1)) for r in range(rows)]])
        self.setMinimumHeight(max(CODEBOOK_PLOT_MIN, CODEBOOK_CHROME_PX + rows * self.row_px_needed()))
        max_bits = math.log2(self.codebook_size)
        self.bars_plot.setXRange(0, max_bits, padding=0.02)
        self.max_line.setValue(max_bits)
        self._dirty = True

    def row_px_needed(self) -> int:
        """Height of a row that shows its number apart from its neighbours' (the digits' ink + 2 px)."""
        return QFontMetrics(self.tick_font).tightBoundingRect("0123456789").height() + 2

    def reset(self) -> None:
        self._codes.reset()
        self._image.reset()
        self.frames_seen = 0
        self._dirty = True

    def add(self, m: FrameMetrics) -> None:
        codes = m.codes  # [k, frames]
        width = self._codes.view(full=True).shape[1]
        k = min(codes.shape[0], width)
        frames = codes.shape[1]
        sent = np.full((frames, width), NO_CODE, np.int16)
        sent[:, :k] = codes[:k].T
        buckets = np.full((frames, width), NOT_SENT, np.uint8)
        buckets[:, :k] = code_buckets(codes[:k].T, self.codebook_size)
        self._codes.extend(sent)
        self._image.extend(buckets)
        self.frames_seen += frames
        self._dirty = True

    def _shown(self, history: HistoryRing) -> np.ndarray:
        """The last 10 s as an image: a row per codebook shown, a column per frame (oldest left)."""
        return np.ascontiguousarray(history.view(full=True)[:, : self.rows].T)

    def redraw(self) -> None:
        if not self._dirty or not visible(self):
            return
        self._dirty = False
        self.image.setImage(self._shown(self._image), autoLevels=False, levels=(0, 255))
        seen = min(self.frames_seen, HISTORY_FRAMES)
        codes = self._shown(self._codes)[:, HISTORY_FRAMES - seen:]
        bits = usage_entropy_bits(codes, self.codebook_size)
        self.entropy_bits = bits
        rows = np.arange(self.rows) + 0.5
        self.bars.setOpts(x0=np.zeros(self.rows), y=rows, width=bits, height=0.8)
        # With n frames no codebook can show more than log2(n) bits: mark that ceiling too.
        self.sample_line.setValue(math.log2(seen) if seen > 1 else 0)
