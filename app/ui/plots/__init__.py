"""pyqtgraph views of what the codec does (GUI thread); the numbers behind them in analysis.py (no Qt).

One module per view; style.py holds what they share, and every view that scrolls keeps its
history in analysis.HistoryRing.
"""

from app.ui.plots.analysis import HistoryRing, StreamingSTFT, code_buckets, usage_entropy_bits
from app.ui.plots.codebooks import CodebookActivity, code_lut
from app.ui.plots.history_plot import HistoryPlot
from app.ui.plots.kv_cache import KVPlot
from app.ui.plots.latency import LatencyPlot
from app.ui.plots.panel import PlotsPanel
from app.ui.plots.spectrogram import AudioTapReader, NullTap, Spectrogram
from app.ui.plots.style import HISTORY_FRAMES, HISTORY_S

__all__ = [
    "HISTORY_FRAMES", "HISTORY_S", "AudioTapReader", "CodebookActivity", "HistoryPlot", "HistoryRing", "KVPlot",
    "LatencyPlot", "NullTap", "PlotsPanel", "Spectrogram", "StreamingSTFT", "code_buckets", "code_lut",
    "usage_entropy_bits",
]
