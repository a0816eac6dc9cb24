"""Dark Fusion palette and the matching pyqtgraph look (GUI thread).

One place for colours, so plots, meters and banners agree.
"""

from __future__ import annotations

import pyqtgraph as pg
from PySide6.QtGui import QColor, QFont, QPalette
from PySide6.QtWidgets import QApplication

WINDOW = "#1e2127"
BASE = "#16181d"
PLOT_BG = "#111317"
PANEL = "#262a31"
TEXT = "#d7dae0"
MUTED = "#8b919c"
ACCENT = "#4fa3ff"
GRID_ALPHA = 0.15

ENCODE = "#4fa3ff"  # blue
DECODE = "#ff9f43"  # orange
INPUT = "#5ad17a"  # green
OUTPUT = "#c78bff"  # violet
BUDGET = "#ff5c5c"  # red: limits (frame budget, KV window)
WARN_BG = "#5a4a14"
ERROR_BG = "#6b2020"
INFO_BG = "#1f3b5c"


def apply_dark_theme(app: QApplication) -> None:
    """Fusion style with a dark palette, and pyqtgraph defaults to match."""
    app.setStyle("Fusion")
    palette = QPalette()
    role = QPalette.ColorRole
    roles = {
        role.Window: WINDOW, role.WindowText: TEXT, role.Base: BASE,
        role.AlternateBase: PANEL, role.ToolTipBase: PANEL, role.ToolTipText: TEXT,
        role.Text: TEXT, role.Button: PANEL, role.ButtonText: TEXT,
        role.BrightText: "#ffffff", role.Highlight: ACCENT, role.HighlightedText: "#0b0d10",
        role.Link: ACCENT, role.PlaceholderText: MUTED,
    }
    for key, colour in roles.items():
        palette.setColor(key, QColor(colour))
    for key in (role.WindowText, role.Text, role.ButtonText):
        palette.setColor(QPalette.ColorGroup.Disabled, key, QColor("#5d626b"))
    app.setPalette(palette)
    font = QFont(app.font())
    if font.pointSizeF() < 9.5:
        font.setPointSizeF(9.5)
    app.setFont(font)
    configure_pyqtgraph()


def configure_pyqtgraph() -> None:
    # Row-major images: data[row=y, col=x] like numpy; no antialiasing (cheap width-1 lines).
    pg.setConfigOptions(background=PLOT_BG, foreground=MUTED, antialias=False, imageAxisOrder="row-major")


def pen(colour: str, width: int = 1, style=None) -> pg.QtGui.QPen:
    p = pg.mkPen(colour, width=width)
    if style is not None:
        p.setStyle(style)
    p.setCosmetic(True)
    return p


def brush(colour: str, alpha: int = 255) -> pg.QtGui.QBrush:
    c = QColor(colour)
    c.setAlpha(alpha)
    return pg.mkBrush(c)
