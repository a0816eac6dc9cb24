"""The strip above the plots: readout cards, level meters and the latency budget bar (GUI thread)."""

from __future__ import annotations

import numpy as np
from PySide6.QtWidgets import QFrame, QHBoxLayout, QSizePolicy, QVBoxLayout

from app.audio.metrics import FrameMetrics
from app.config import FRAME_MS
from app.quality.live import QualityReading
from app.ui import theme
from app.ui.budget_bar import LatencyBudgetBar
from app.ui.controls import format_bps
from app.ui.widgets import LevelMeter, Readout

MONITOR_COLOURS = {"codec": theme.OUTPUT, "bypass": theme.INPUT, "residual": theme.DECODE, "replay": theme.MUTED}
STOI_POOR = 0.6  # below this, speech is hard to follow: the card says so in colour
CLASSIC_COLOUR = theme.ENCODE  # every classic path (Codec2, Opus): not Mimi


def real_time_factor(recent: list[FrameMetrics]) -> float:
    """Compute time over audio time for these chunks (below 1 keeps up)."""
    return sum(m.compute_ms for m in recent) / sum(m.frames * float(FRAME_MS) for m in recent)


class ReadoutStrip:
    """Builds the cards and meters into `layout` (one row) and the budget bar below; refreshes them."""

    def __init__(self, layout: QHBoxLayout):
        self.readouts = {
            "bitrate": Readout("Bitrate", "Code bits sent per second: codebooks x 11 bits x 12.5 frames/s"),
            "rtf": Readout("RTF", "Compute time / audio time over the last second (below 1 keeps up)"),
            "latency": Readout("Latency", "End-to-end estimate: device latencies + buffering + compute"),
            "kv": Readout("KV cache", "Encoder KV cache length / window (tokens, 25 per second)"),
            "monitor": Readout("Hearing", "What the speaker plays: codec, bypass (input) or residual"),
            "quality": Readout("STOI", "Intelligibility (STOI, 0 to 1) of what you hear against the input, over the "
                                       "last 4 s that path played; the paths' delays are taken out"),
        }
        for card in self.readouts.values():
            card.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
            layout.addWidget(card)
        meters = QVBoxLayout()
        meters.setSpacing(2)
        self.input_meter = LevelMeter("In", theme.INPUT)
        self.output_meter = LevelMeter("Out", theme.OUTPUT)
        meters.addWidget(self.input_meter)
        meters.addWidget(self.output_meter)
        meter_box = QFrame()
        meter_box.setObjectName("meters")
        meter_box.setStyleSheet(f"#meters {{ background: {theme.PANEL}; border-radius: 4px; }}")
        meter_box.setLayout(meters)
        meters.setContentsMargins(6, 4, 6, 4)
        meter_box.setMinimumWidth(260)
        layout.addWidget(meter_box, 2)
        self.budget_bar = LatencyBudgetBar()

    def reset_meters(self) -> None:
        self.input_meter.reset()
        self.output_meter.reset()

    def set_levels(self, m: FrameMetrics) -> None:
        self.input_meter.set_level(m.input_level_db)
        self.output_meter.set_level(m.output_level_db)

    def refresh(self, bitrate_bps: float | None, monitor: str, recent: list[FrameMetrics], running: bool,
                kv_window: int | None, rtf: float | None, quality: QualityReading | None = None) -> None:
        """The cards; while streaming, from the recent chunks (none yet: they keep what they showed)."""
        r = self.readouts
        r["bitrate"].set(format_bps(bitrate_bps) if bitrate_bps else "–")
        r["monitor"].set(monitor.upper(), MONITOR_COLOURS.get(monitor, CLASSIC_COLOUR))
        if recent and running and rtf is not None:
            last = recent[-1]
            r["rtf"].set(f"{rtf:.2f}", theme.BUDGET if rtf > 0.9 else theme.DECODE if rtf > 0.7 else None)
            r["latency"].set(f"{last.latency_ms:.0f} ms")
            r["kv"].set(f"{last.kv_encoder}" + (f" / {kv_window}" if kv_window else ""))
            self.budget_bar.set_budget({stage: float(np.median([m.budget_ms[stage] for m in recent]))
                                        for stage in last.budget_ms})
        elif not running:
            for key in ("rtf", "latency", "kv"):
                r[key].set("–")
            if self.budget_bar.budget:
                self.budget_bar.set_budget({})
        self._show_quality(quality if running else None)

    def _show_quality(self, reading: QualityReading | None) -> None:
        """STOI of the path heard, or why there is none (quiet input, a path just switched to)."""
        card = self.readouts["quality"]
        if reading is None:
            card.set("–")
        elif reading.stoi is None:
            card.set(reading.why or "–", theme.MUTED)
        else:
            colour = theme.MUTED if reading.stale else theme.BUDGET if reading.stoi < STOI_POOR else None
            card.set(f"{reading.stoi:.2f}", colour)
