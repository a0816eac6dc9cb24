"""What the commands print: JSON, indented `key: value` lines, timing percentiles, bitrates (main thread).

numpy is imported only for percentiles (app.units), so a command that prints no timings never loads it.
"""

from __future__ import annotations

import json
from typing import Any

from app.config import APP_ID
from app.units import format_bps, percentiles

__all__ = ["PROG", "format_bps", "percentiles_ms", "print_json", "print_lines"]

PROG = APP_ID  # the name every usage line and error message starts with


def print_json(obj: Any) -> None:
    """One indented JSON document; paths and other objects print as their str()."""
    print(json.dumps(obj, indent=2, default=str))


def print_lines(summary: dict, indent: str = "") -> None:
    """`key: value` lines, nested dicts indented under their key."""
    for key, value in summary.items():
        if isinstance(value, dict):
            print(f"{indent}{key}:")
            print_lines(value, indent + "  ")
        else:
            print(f"{indent}{key}: {value}")


def percentiles_ms(values: list[float]) -> dict[str, float]:
    """p50 and p95 rounded to microseconds; NaN for an empty list (nothing was timed)."""
    return percentiles(values, digits=3)
