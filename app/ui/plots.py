"""pyqtgraph views of what the codec does (GUI thread).

Each view keeps preallocated numpy history and splits its work in two: `add(metrics)` only
writes numbers into arrays (called for every chunk the bridge drained), `redraw()` pushes them to
pyqtgraph once per UI tick, and only when something changed and the widget is visible. Lines are
width-1 cosmetic pens with `skipFiniteCheck`; images are uint8 through a <= 256-entry LUT with fixed
levels, so pyqtgraph never rescans the data.
"""

from __future__ import annotations

import math
from typing import Protocol

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QRectF, Qt
from PySide6.QtGui import QColor, QFont, QFontMetrics
from PySide6.QtWidgets import QWidget

from app.audio.metrics import FrameMetrics
from app.config import FRAME_RATE_HZ, SAMPLE_RATE_HZ
from app.ui import theme

HISTORY_S = 10.0
HISTORY_FRAMES = int(HISTORY_S * FRAME_RATE_HZ)  # 125 code frames = Mimi's 10 s attention context
HISTORY_CHUNKS = HISTORY_FRAMES  # at most one point per frame (80 ms chunks)
DEFAULT_CODEBOOK_SIZE = 2048
NOT_SENT = 0  # heatmap value of a codebook that was not transmitted (LUT entry 0 = background)
CODEBOOK_TICK_PT = 8.0  # the codebook numbers: small enough for 16 rows in a short plot
CODEBOOK_PLOT_MIN = 190  # px, the activity plot's least height (8 codebooks or fewer)
CODEBOOK_CHROME_PX = 90  # px of that plot that are not rows: title, time axis and its label, margins
# Least heights of the other plots: with 16 codebooks numbered one per row, all of them still fit
# the window's minimum size (1000 x 680).
SPECTROGRAM_MIN = 135
HISTORY_PLOT_MIN = 120


class HistoryRing:
    """The last `capacity` rows of `width` floats; `view()` is contiguous (mirrored writes), oldest first."""

    def __init__(self, capacity: int, width: int = 1, dtype=np.float64):
        self.capacity = capacity
        self._buf = np.zeros((2 * capacity, width), dtype)
        self._next = 0
        self.count = 0

    def append(self, row) -> None:
        self._buf[self._next] = row
        self._buf[self._next + self.capacity] = row
        self._next = (self._next + 1) % self.capacity
        self.count += 1

    def view(self) -> np.ndarray:
        if self.count < self.capacity:
            return self._buf[: self.count]
        return self._buf[self._next : self._next + self.capacity]

    def reset(self) -> None:
        self._next = self.count = 0


def _visible(widget: QWidget) -> bool:
    return widget.isVisible() and not widget.window().isMinimized()


def _plot_widget(title: str) -> pg.PlotWidget:
    widget = pg.PlotWidget()
    item = widget.getPlotItem()
    item.setTitle(f"<span style='color:{theme.TEXT}'>{title}</span>", size="10pt")
    item.showGrid(x=True, y=True, alpha=theme.GRID_ALPHA)
    item.setMenuEnabled(False)
    item.hideButtons()
    widget.setMouseEnabled(x=False, y=False)
    widget.setMinimumHeight(HISTORY_PLOT_MIN)
    return widget


def code_lut(entries: int = 256) -> np.ndarray:
    """Colour per code bucket (uint8 RGBA, `entries` rows); entry 0 is the 'not sent' background."""
    lut = pg.colormap.get("turbo").getLookupTable(0.0, 1.0, entries, alpha=True).astype(np.ubyte)
    lut[NOT_SENT] = (*QColor(theme.PLOT_BG).getRgb()[:3], 255)
    return lut


def usage_entropy_bits(codes: np.ndarray, codebook_size: int) -> np.ndarray:
    """Empirical entropy (bits) of each row of `codes` [k, n]: what each codebook actually carries."""
    out = np.zeros(codes.shape[0])
    if codes.shape[1] == 0:
        return out
    for row, values in enumerate(codes):
        counts = np.bincount(values[values >= 0], minlength=codebook_size)
        p = counts[counts > 0] / values.size
        out[row] = float(-(p * np.log2(p)).sum())
    return out


class CodebookActivity(pg.GraphicsLayoutWidget):
    """Heatmap codebook x last 10 s of frames (colour = code index) and per-codebook usage entropy."""

    def __init__(self):
        super().__init__()
        self.setMinimumHeight(CODEBOOK_PLOT_MIN)
        self.ci.layout.setSpacing(4)
        self.codebook_size = DEFAULT_CODEBOOK_SIZE
        self.rows = 8
        self.frames_seen = 0
        self._codes = np.full((16, 2 * HISTORY_FRAMES), -1, np.int16)  # mirrored columns
        self._image = np.zeros((16, 2 * HISTORY_FRAMES), np.uint8)
        self._next = 0
        self._dirty = False

        self.heat = self.addPlot(row=0, col=0)
        self.heat.setTitle(f"<span style='color:{theme.TEXT}'>Codebook activity "
                           f"<span style='color:{theme.MUTED}'>(colour = code index, last 10 s)</span></span>",
                           size="10pt")
        self.image = pg.ImageItem(axisOrder="row-major")
        self.image.setLookupTable(code_lut())
        self.image.setLevels((0, 255))
        self.heat.addItem(self.image)
        self.heat.setMenuEnabled(False)
        self.heat.hideButtons()
        self.heat.setMouseEnabled(x=False, y=False)
        self.heat.setLabel("left", "codebook")
        self.heat.setLabel("bottom", "seconds ago")
        self.heat.invertY(True)  # codebook 1 (the coarsest) on top
        self.tick_font = QFont(self.font())
        self.tick_font.setPointSizeF(CODEBOOK_TICK_PT)
        self.heat.getAxis("left").setTickFont(self.tick_font)

        self.bars_plot = self.addPlot(row=0, col=1)
        self.bars_plot.setTitle(f"<span style='color:{theme.TEXT}'>Bits used</span>", size="10pt")
        self.bars_plot.setMenuEnabled(False)
        self.bars_plot.hideButtons()
        self.bars_plot.setMouseEnabled(x=False, y=False)
        self.bars_plot.setYLink(self.heat)
        self.bars_plot.invertY(True)
        self.bars_plot.hideAxis("left")
        self.bars_plot.setLabel("bottom", "bits / frame")
        self.bars_plot.showGrid(x=True, alpha=theme.GRID_ALPHA)
        self.bars = pg.BarGraphItem(x0=np.zeros(1), y=np.zeros(1), height=0.8, width=np.zeros(1),
                                    brush=theme.brush(theme.ACCENT, 200), pen=pg.mkPen(None))
        self.bars_plot.addItem(self.bars)
        self.max_line = pg.InfiniteLine(angle=90, pen=theme.pen(theme.BUDGET, style=Qt.DashLine))
        self.sample_line = pg.InfiniteLine(angle=90, pen=theme.pen(theme.MUTED, style=Qt.DotLine))
        self.bars_plot.addItem(self.max_line)
        self.bars_plot.addItem(self.sample_line)
        self.ci.layout.setColumnStretchFactor(0, 5)
        self.ci.layout.setColumnStretchFactor(1, 1)
        self.set_model(8, DEFAULT_CODEBOOK_SIZE)

    def set_model(self, max_codebooks: int, codebook_size: int | None) -> None:
        """Rows = the model's K (dropped codebooks show as background); entropy max = log2(size)."""
        self.codebook_size = int(codebook_size or DEFAULT_CODEBOOK_SIZE)
        rows = max(1, int(max_codebooks))
        if rows > self._codes.shape[0]:
            self._codes = np.full((rows, 2 * HISTORY_FRAMES), -1, np.int16)
            self._image = np.zeros((rows, 2 * HISTORY_FRAMES), np.uint8)
            self._next = 0
        self.rows = rows
        # setRect scales by the current image size: give it the right-shaped image first.
        self.image.setImage(np.ascontiguousarray(self._window(self._image)), autoLevels=False, levels=(0, 255))
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
        self._codes.fill(-1)
        self._image.fill(NOT_SENT)
        self._next = 0
        self.frames_seen = 0
        self._dirty = True

    def add(self, m: FrameMetrics) -> None:
        codes = m.codes
        k = min(codes.shape[0], self._codes.shape[0])
        scale = 255.0 / self.codebook_size
        for frame in range(codes.shape[1]):
            col = self._next
            for c in (col, col + HISTORY_FRAMES):
                self._codes[:, c] = -1
                self._codes[:k, c] = codes[:k, frame]
                self._image[:, c] = NOT_SENT
                self._image[:k, c] = 1 + (codes[:k, frame] * scale).astype(np.uint8) % 255
            self._next = (col + 1) % HISTORY_FRAMES
            self.frames_seen += 1
        self._dirty = True

    def _window(self, array: np.ndarray) -> np.ndarray:
        return array[: self.rows, self._next : self._next + HISTORY_FRAMES]

    def redraw(self) -> None:
        if not self._dirty or not _visible(self):
            return
        self._dirty = False
        self.image.setImage(np.ascontiguousarray(self._window(self._image)), autoLevels=False, levels=(0, 255))
        seen = min(self.frames_seen, HISTORY_FRAMES)
        codes = self._window(self._codes)[:, HISTORY_FRAMES - seen:]
        bits = usage_entropy_bits(codes, self.codebook_size)
        self.entropy_bits = bits
        rows = np.arange(self.rows) + 0.5
        self.bars.setOpts(x0=np.zeros(self.rows), y=rows, width=bits, height=0.8)
        # With n frames no codebook can show more than log2(n) bits: mark that ceiling too.
        self.sample_line.setValue(math.log2(seen) if seen > 1 else 0)


class HistoryPlot(pg.PlotWidget):
    """A plot of two per-chunk series over the last HISTORY_S seconds, redrawn only when dirty."""

    def __init__(self, title: str, y_label: str):
        super().__init__()
        item = self.getPlotItem()
        item.setTitle(title, size="10pt")
        _style(self)
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
        if not self._dirty or not _visible(self):
            return
        self._dirty = False
        data = self._ring.view()
        if not len(data):
            for curve in self.curves:
                curve.setData([], [])
            return
        x = data[:, 0] - data[-1, 0]
        for curve, y in zip(self.curves, self._shown(data)):
            curve.setData(x, y, skipFiniteCheck=True)
        self._rescale(data)


class LatencyPlot(HistoryPlot):
    """Encode and decode time per chunk, stacked, against the chunk's real-time budget."""

    def __init__(self):
        super().__init__(f"<span style='color:{theme.TEXT}'>Compute per chunk "
                         f"<span style='color:{theme.ENCODE}'>encode</span> + "
                         f"<span style='color:{theme.DECODE}'>decode</span> vs "
                         f"<span style='color:{theme.BUDGET}'>budget</span></span>", "ms")
        self.total = self.plot(pen=theme.pen(theme.DECODE), fillLevel=0, brush=theme.brush(theme.DECODE, 110),
                               skipFiniteCheck=True)
        self.encode = self.plot(pen=theme.pen(theme.ENCODE), fillLevel=0, brush=theme.brush(theme.ENCODE, 130),
                                skipFiniteCheck=True)
        self.budget = pg.InfiniteLine(angle=0, pen=theme.pen(theme.BUDGET, style=Qt.DashLine),
                                      label="budget {value:.0f} ms",
                                      labelOpts={"color": theme.BUDGET, "position": 0.02, "anchors": [(0, 1), (0, 1)]})
        self.addItem(self.budget)
        self.curves = (self.total, self.encode)
        self._budget_ms = 80.0
        self._y_max = 0.0
        self.set_budget(80)

    def set_budget(self, chunk_ms: float) -> None:
        self._budget_ms = float(chunk_ms)
        self.budget.setValue(self._budget_ms)
        self._set_y(self._budget_ms * 1.25)

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
        top = max(self._budget_ms * 1.25, peak * 1.1)
        if top > self._y_max or top < 0.6 * self._y_max:  # rescale rarely: steady axes read better
            self._set_y(top)


class KVPlot(HistoryPlot):
    """KV cache length of the encoder and decoder transformers, with the window line."""

    def __init__(self):
        super().__init__(f"<span style='color:{theme.TEXT}'>KV cache length "
                         f"<span style='color:{theme.ENCODE}'>encoder</span> / "
                         f"<span style='color:{theme.DECODE}'>decoder</span></span>", "tokens")
        self.encoder = self.plot(pen=theme.pen(theme.ENCODE), skipFiniteCheck=True)
        self.decoder = self.plot(pen=theme.pen(theme.DECODE, style=Qt.DashLine), skipFiniteCheck=True)
        self.window_line = pg.InfiniteLine(angle=0, pen=theme.pen(theme.BUDGET, style=Qt.DashLine),
                                           label="window {value:.0f}",
                                           labelOpts={"color": theme.BUDGET, "position": 0.02, "anchors": [(0, 1), (0, 1)]})
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


def _style(widget: pg.PlotWidget) -> None:
    item = widget.getPlotItem()
    item.showGrid(x=True, y=True, alpha=theme.GRID_ALPHA)
    item.setMenuEnabled(False)
    item.hideButtons()
    widget.setMouseEnabled(x=False, y=False)
    widget.setMinimumHeight(HISTORY_PLOT_MIN)


# -- spectrogram ---------------------------------------------------------------------------------


class AudioTapReader(Protocol):
    """What the spectrogram reads: the newest dry (input) and wet (codec output) 24 kHz samples.

    `latest(n)` returns copies of the newest min(n, available) samples of each and the total
    number of samples ever written; `written` is that total. `app.audio.metrics.AudioTap` is one.
    """

    written: int

    def latest(self, n: int) -> tuple[np.ndarray, np.ndarray, int]: ...


class NullTap:
    """Stand-in when the engine publishes no audio: the spectrogram stays empty."""

    written = 0

    def latest(self, n: int) -> tuple[np.ndarray, np.ndarray, int]:
        empty = np.zeros(0, np.float32)
        return empty, empty, 0


class _STFT:
    """Streaming magnitude STFT: feed samples, get dB columns (uint8 mapped to fixed levels)."""

    def __init__(self, n_fft: int, hop: int, floor_db: float, top_db: float):
        self.n_fft, self.hop = n_fft, hop
        self.window = np.hanning(n_fft).astype(np.float32)
        self.scale = 2.0 / self.window.sum()  # a full-scale sine reads 0 dB
        self.floor_db, self.top_db = floor_db, top_db
        self._pending = np.zeros(0, np.float32)

    def reset(self) -> None:
        self._pending = np.zeros(0, np.float32)

    def feed(self, pcm: np.ndarray) -> np.ndarray:
        """uint8 columns [bins, m] for the whole hops now available."""
        pending = np.concatenate([self._pending, pcm]) if len(self._pending) else pcm
        if len(pending) < self.n_fft:
            self._pending = pending
            return np.zeros((self.n_fft // 2 + 1, 0), np.uint8)
        frames = np.lib.stride_tricks.sliding_window_view(pending, self.n_fft)[:: self.hop]
        self._pending = pending[len(frames) * self.hop :]
        mag = np.abs(np.fft.rfft(frames * self.window, axis=1)) * self.scale
        db = 20.0 * np.log10(np.maximum(mag, 1e-10))
        span = self.top_db - self.floor_db
        return np.clip((db - self.floor_db) * (255.0 / span), 0, 255).astype(np.uint8).T


class Spectrogram(pg.GraphicsLayoutWidget):
    """Scrolling spectrograms of the codec's input and its reconstruction, same scale, side by side."""

    N_FFT = 512  # 21 ms at 24 kHz: 47 Hz bins
    HOP = 480  # 20 ms: 50 columns per second
    SECONDS = 6.0

    def __init__(self, tap: AudioTapReader | None = None):
        super().__init__()
        self.setMinimumHeight(SPECTROGRAM_MIN)
        self.ci.layout.setSpacing(4)
        self.tap: AudioTapReader = tap or NullTap()
        self.columns = int(self.SECONDS * SAMPLE_RATE_HZ / self.HOP)
        bins = self.N_FFT // 2 + 1
        self._images = {}
        self._stft = {}
        self._items = {}
        lut = pg.colormap.get("inferno").getLookupTable(0.0, 1.0, 256, alpha=True).astype(np.ubyte)
        for col, (key, title, colour) in enumerate((("dry", "Input spectrogram", theme.INPUT),
                                                    ("wet", "Codec output spectrogram", theme.OUTPUT))):
            plot = self.addPlot(row=0, col=col)
            plot.setTitle(f"<span style='color:{colour}'>{title}</span>", size="10pt")
            plot.setMenuEnabled(False)
            plot.hideButtons()
            plot.setMouseEnabled(x=False, y=False)
            plot.setLabel("left", "kHz")
            plot.setLabel("bottom", "seconds ago")
            image = pg.ImageItem(axisOrder="row-major")
            image.setLookupTable(lut)
            self._images[key] = np.zeros((bins, self.columns), np.uint8)
            image.setImage(self._images[key], autoLevels=False, levels=(0, 255))  # before setRect: it scales by size
            image.setRect(QRectF(-self.SECONDS, 0, self.SECONDS, SAMPLE_RATE_HZ / 2000))
            plot.addItem(image)
            plot.setXRange(-self.SECONDS, 0, padding=0)
            plot.setYRange(0, SAMPLE_RATE_HZ / 2000, padding=0)
            self._stft[key] = _STFT(self.N_FFT, self.HOP, floor_db=-100.0, top_db=-20.0)
            self._items[key] = image
            if col == 1:
                plot.setYLink(self._items_plot)
            self._items_plot = plot
        self._read = self.tap.written
        self.columns_drawn = 0

    def set_tap(self, tap: AudioTapReader | None) -> None:
        self.tap = tap or NullTap()
        self.reset()

    def reset(self) -> None:
        for key in self._images:
            self._images[key].fill(0)
            self._stft[key].reset()
        self._read = getattr(self.tap, "written", 0)
        self.columns_drawn = 0
        for key, item in self._items.items():
            item.setImage(self._images[key], autoLevels=False, levels=(0, 255))

    def redraw(self) -> None:
        """Pulls the audio written since the last call; called every UI tick (skipped when hidden)."""
        written = getattr(self.tap, "written", 0)
        if written < self._read:  # a new tap / a restarted engine
            self._read = 0
        fresh = written - self._read
        if fresh <= 0:
            return
        if not _visible(self):
            self._read = written  # nothing to catch up on later: a hidden spectrogram skips audio
            return
        dry, wet, end = self.tap.latest(fresh + SAMPLE_RATE_HZ // 10)  # margin: the worker may have appended
        fresh = min(end - self._read, len(dry))
        self._read = end
        if fresh <= 0:
            return
        for key, pcm in (("dry", dry[-fresh:]), ("wet", wet[-fresh:])):
            cols = self._stft[key].feed(pcm)
            m = cols.shape[1]
            if m == 0:
                continue
            image = self._images[key]
            m = min(m, self.columns)
            image[:, :-m] = image[:, m:]
            image[:, -m:] = cols[:, -m:]
            self._items[key].setImage(image, autoLevels=False, levels=(0, 255))
            if key == "dry":
                self.columns_drawn += m


# -- level meters --------------------------------------------------------------------------------


class PlotsPanel(QWidget):
    """The plot grid: codebooks on top, spectrograms, then latency and KV cache."""

    def __init__(self, tap: AudioTapReader | None = None):
        super().__init__()
        from PySide6.QtWidgets import QGridLayout

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
