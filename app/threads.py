"""Thread helpers every room may use."""

from __future__ import annotations

import os
import threading

__all__ = ["BACKGROUND_NICENESS", "lower_thread_priority"]

BACKGROUND_NICENESS = 19  # background work yields the CPU to the audio worker and the audio server


def lower_thread_priority(niceness: int = BACKGROUND_NICENESS) -> None:
    """The calling thread only (Linux schedules threads as tasks) at `niceness`; no-op where the
    platform cannot (then the work still runs, at normal priority)."""
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), niceness)
    except (AttributeError, OSError):
        pass
