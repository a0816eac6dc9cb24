"""The comparison report's figure, drawn with QPainter on a QImage (main thread; no window).

Left: quality (STOI) against measured bitrate, on a log axis, one labelled point per path.
Right: a spectrogram per path, stacked in the report's order, on one colour scale.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from PySide6.QtCore import QBuffer, QByteArray, QIODevice, QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QFont, QGuiApplication, QImage, QPainter, QPen

__all__ = ["render_figure"]

WIDTH, HEIGHT = 1600, 900
FAMILY_COLOURS = {"original": "#444444", "mimi": "#1f77b4", "codec2": "#d62728", "opus": "#2ca02c"}


def _ensure_gui() -> QGuiApplication:
    app = QGuiApplication.instance()
    if app is None:  # the CLI: an offscreen platform is enough to render fonts
        # A QApplication, not a bare QGuiApplication: a process that draws a figure and later
        # opens a widget (a test session, a script) would abort on a QGuiApplication.
        from PySide6.QtWidgets import QApplication

        app = QApplication(["mimi-live", "-platform", "offscreen"])
    assert isinstance(app, QGuiApplication)
    return app


def _colourmap(db: np.ndarray, floor_db: float) -> QImage:
    """A dB image [freq, time] as a QImage, high frequencies at the top: black, purple, orange, yellow."""
    level = np.clip((db - floor_db) / -floor_db, 0.0, 1.0)[::-1]
    pixels = np.empty(level.shape + (4,), np.uint8)  # Format_RGB32 is B, G, R, A in memory
    pixels[..., 0] = 255 * np.clip(0.8 - 2.0 * np.abs(level - 0.35), 0, 1)  # blue: the middle levels
    pixels[..., 1] = 255 * np.clip(1.6 * level - 0.6, 0, 1)  # green: the top ones (orange, then yellow)
    pixels[..., 2] = 255 * np.clip(1.8 * level - 0.1, 0, 1)  # red: everything above the floor
    pixels[..., 3] = 255
    height, width = level.shape
    image = QImage(pixels.data, width, height, width * 4, QImage.Format.Format_RGB32)
    return image.copy()  # own the pixels: the array goes away


def _scatter(painter: QPainter, area: QRectF, paths: list[dict]) -> None:
    points = [p for p in paths if p.get("bitrate_bps") and p.get("stoi") is not None]
    painter.setPen(QPen(QColor("#000000"), 1))
    painter.drawRect(area)
    painter.drawText(QRectF(area.left(), area.top() - 34, area.width(), 28), Qt.AlignmentFlag.AlignCenter,
                     "quality (STOI) against bitrate")
    rates = [p["bitrate_bps"] for p in points] or [1000.0]
    low, high = math.log10(min(rates) / 1.6), math.log10(max(rates) * 1.6)
    ticks = [m * 10 ** e for e in range(0, 7) for m in (1, 2, 5) if low <= math.log10(m * 10 ** e) <= high]

    def x_of(bps: float) -> float:
        return area.left() + (math.log10(bps) - low) / (high - low) * area.width()

    def y_of(score: float) -> float:
        return area.bottom() - max(0.0, min(1.0, score)) * area.height()

    painter.setPen(QPen(QColor("#bbbbbb"), 1, Qt.PenStyle.DotLine))
    grid, text = QPen(QColor("#bbbbbb"), 1, Qt.PenStyle.DotLine), QPen(QColor("#333333"), 1)
    for bps in ticks:
        painter.setPen(grid)
        painter.drawLine(QPointF(x_of(bps), area.top()), QPointF(x_of(bps), area.bottom()))
        painter.setPen(text)
        painter.drawText(QPointF(x_of(bps) - 20, area.bottom() + 20), f"{bps / 1000:g} kbps")
    for score in (0.25, 0.5, 0.75, 1.0):
        painter.setPen(grid)
        painter.drawLine(QPointF(area.left(), y_of(score)), QPointF(area.right(), y_of(score)))
        painter.setPen(text)
        painter.drawText(QPointF(area.left() - 42, y_of(score) + 5), f"{score:.2f}")
    for i, path in enumerate(sorted(points, key=lambda p: p["bitrate_bps"])):
        colour = QColor(FAMILY_COLOURS.get(path["family"], "#000000"))
        centre = QPointF(x_of(path["bitrate_bps"]), y_of(path["stoi"]))
        painter.setPen(QPen(colour, 2))
        painter.setBrush(colour)
        painter.drawEllipse(centre, 6, 6)
        # Neighbours alternate above and below their point, so close ones do not overprint.
        painter.drawText(centre + QPointF(-30, -12 if i % 2 == 0 else 24), path["label"])
    painter.setBrush(Qt.BrushStyle.NoBrush)


def render_figure(report: dict, spectrograms: dict[str, np.ndarray], floor_db: float = -90.0) -> bytes:
    """The figure as PNG bytes."""
    _ensure_gui()
    image = QImage(WIDTH, HEIGHT, QImage.Format.Format_RGB32)
    image.fill(QColor("#ffffff"))
    painter = QPainter(image)
    try:
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.setFont(QFont("DejaVu Sans", 11))
        title = f"{Path(report['input']).name}: {report['duration_s']} s" + ("  (stand-in model: Mimi decodes noise)"
                                                                  if report.get("stand_in") else "")
        painter.drawText(QRectF(0, 8, WIDTH, 28), Qt.AlignmentFlag.AlignCenter, title)
        _scatter(painter, QRectF(80, 90, 560, 720), report["paths"])
        rows = [p for p in report["paths"] if p["key"] in spectrograms]
        top, left, width = 60.0, 720.0, WIDTH - 740.0
        row_height = (HEIGHT - top - 20) / max(1, len(rows))
        for i, path in enumerate(rows):
            target = QRectF(left, top + i * row_height, width, row_height - 18)
            painter.drawImage(target, _colourmap(spectrograms[path["key"]], floor_db))
            painter.setPen(QPen(QColor("#000000"), 1))
            rate = "" if not path.get("bitrate_bps") else f", {path['bitrate_bps'] / 1000:.2f} kbps"
            painter.drawText(QPointF(left, target.bottom() + 14), f"{path['label']}{rate}")
    finally:
        painter.end()
    data = QByteArray()
    buffer = QBuffer(data)
    buffer.open(QIODevice.OpenModeFlag.WriteOnly)
    image.save(buffer, "PNG")  # type: ignore[call-overload]  # PySide6 6.12: the stubs say bytes, it takes str only
    return bytes(data.data())
