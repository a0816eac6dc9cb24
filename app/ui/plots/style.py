"""What the plot views share: how long they look back, their least heights, one plot style (GUI thread)."""

from __future__ import annotations

import pyqtgraph as pg
from PySide6.QtWidgets import QWidget

from app.config import FRAME_RATE_HZ
from app.ui import theme

HISTORY_S = 10.0
HISTORY_FRAMES = int(HISTORY_S * FRAME_RATE_HZ)  # 125 code frames = Mimi's 10 s attention context
HISTORY_CHUNKS = HISTORY_FRAMES  # at most one point per frame (80 ms chunks)
TITLE_SIZE = "10pt"
# Least heights of the plots below the codebooks: with 16 codebooks numbered one per row, all of
# them still fit the window's minimum size (1000 x 680).
SPECTROGRAM_MIN = 135
HISTORY_PLOT_MIN = 120


def title(text: str, colour: str = theme.TEXT) -> str:
    return f"<span style='color:{colour}'>{text}</span>"


def style_plot(plot: pg.PlotItem, heading: str, grid_x: bool = False, grid_y: bool = False) -> None:
    """The one look of every plot: a title, an optional faint grid, no menu, buttons or mouse zoom
    (the axes follow the data; a stray drag would only hide it)."""
    plot.setTitle(heading, size=TITLE_SIZE)
    if grid_x or grid_y:
        plot.showGrid(x=grid_x, y=grid_y, alpha=theme.GRID_ALPHA)
    plot.setMenuEnabled(False)
    plot.hideButtons()
    plot.setMouseEnabled(x=False, y=False)


def visible(widget: QWidget) -> bool:
    """Worth redrawing: shown, in a window that is not minimized."""
    return widget.isVisible() and not widget.window().isMinimized()
