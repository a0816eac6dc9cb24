"""Numbers as the reports and the status line show them (any thread; no side effects; numpy is
imported only when a percentile is asked for, so the CLI's --help stays light)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

__all__ = ["format_bps", "percentile", "percentiles"]


def percentile(values: Sequence[float] | np.ndarray, q: float) -> float:
    """The q-th percentile (0..100) of `values`; NaN for none, so an empty run still reports."""
    import numpy as np

    if not len(values):
        return float("nan")
    return float(np.percentile(np.asarray(values, dtype=np.float64), q))


def percentiles(values: Sequence[float] | np.ndarray, qs: Iterable[int] = (50, 95),
                digits: int = 2) -> dict[str, float]:
    """{"p50": ..., "p95": ...} for each of `qs`, rounded to `digits` decimals."""
    return {f"p{q}": round(percentile(values, q), digits) for q in qs}


def format_bps(bps: float) -> str:
    """A bit rate as a menu shows it: "600 bps", "1.1 kbps"."""
    return f"{bps:.0f} bps" if bps < 1000 else f"{bps / 1000:.3g} kbps"
