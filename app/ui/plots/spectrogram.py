"""The spectrogram view: the codec's input and its reconstruction over the last 6 s (GUI thread).

It reads the audio itself, from the engine's tap, once per UI tick; the chunk metrics carry none.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QRectF

from app.config import SAMPLE_RATE_HZ
from app.ui import theme
from app.ui.plots.analysis import HistoryRing, StreamingSTFT
from app.ui.plots.style import SPECTROGRAM_MIN, style_plot, title, visible

TOP_KHZ = SAMPLE_RATE_HZ / 2000  # Nyquist
TAP_MARGIN = SAMPLE_RATE_HZ // 10  # samples asked beyond what is new: the worker may have appended meanwhile


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
        self._history: dict[str, HistoryRing] = {}  # a row per STFT column, newest last
        self._stft: dict[str, StreamingSTFT] = {}
        self._items: dict[str, pg.ImageItem] = {}
        lut = pg.colormap.get("inferno").getLookupTable(0.0, 1.0, 256, alpha=True).astype(np.ubyte)
        first_plot = None
        for col, (key, heading, colour) in enumerate((("dry", "Input spectrogram", theme.INPUT),
                                                      ("wet", "Codec output spectrogram", theme.OUTPUT))):
            plot = self.addPlot(row=0, col=col)
            style_plot(plot, title(heading, colour))
            plot.setLabel("left", "kHz")
            plot.setLabel("bottom", "seconds ago")
            image = pg.ImageItem(axisOrder="row-major")
            image.setLookupTable(lut)
            self._stft[key] = StreamingSTFT(self.N_FFT, self.HOP, floor_db=-100.0, top_db=-20.0)
            self._history[key] = HistoryRing(self.columns, self._stft[key].bins, np.uint8)
            image.setImage(self._image(key), autoLevels=False, levels=(0, 255))  # before setRect: it scales by size
            image.setRect(QRectF(-self.SECONDS, 0, self.SECONDS, TOP_KHZ))
            plot.addItem(image)
            plot.setXRange(-self.SECONDS, 0, padding=0)
            plot.setYRange(0, TOP_KHZ, padding=0)
            self._items[key] = image
            if first_plot is not None:
                plot.setYLink(first_plot)
            first_plot = plot
        self._read = self.tap.written
        self.columns_drawn = 0

    def _image(self, key: str) -> np.ndarray:
        """The last SECONDS as an image: a row per frequency bin, a column per hop (oldest left)."""
        return np.ascontiguousarray(self._history[key].view(full=True).T)

    def set_tap(self, tap: AudioTapReader | None) -> None:
        self.tap = tap or NullTap()
        self.reset()

    def reset(self) -> None:
        for key in self._history:
            self._history[key].reset()
            self._stft[key].reset()
        self._read = getattr(self.tap, "written", 0)
        self.columns_drawn = 0
        for key, item in self._items.items():
            item.setImage(self._image(key), autoLevels=False, levels=(0, 255))

    def redraw(self) -> None:
        """Pulls the audio written since the last call; called every UI tick (skipped when hidden)."""
        written = getattr(self.tap, "written", 0)
        if written < self._read:  # a new tap / a restarted engine
            self._read = 0
        fresh = written - self._read
        if fresh <= 0:
            return
        if not visible(self):
            self._read = written  # nothing to catch up on later: a hidden spectrogram skips audio
            return
        dry, wet, end = self.tap.latest(fresh + TAP_MARGIN)
        fresh = min(end - self._read, len(dry))
        self._read = end
        if fresh <= 0:
            return
        for key, pcm in (("dry", dry[-fresh:]), ("wet", wet[-fresh:])):
            cols = self._stft[key].feed(pcm)
            m = min(cols.shape[1], self.columns)
            if m == 0:
                continue
            self._history[key].extend(cols[:, -m:].T)
            self._items[key].setImage(self._image(key), autoLevels=False, levels=(0, 255))
            if key == "dry":
                self.columns_drawn += m
