"""Work-arounds for bugs in the Qt binding (GUI thread, once at start-up).

PySide6 6.12.0 drops references to Python's singletons: every `SignalInstance.emit()` made from
Python loses one reference to `True` (its return value is not INCREF'd), and `QComboBox.currentData()`
on an item whose data is None loses one to `None`. pyqtgraph emits signals from Python on every
setData/setImage, so at 30 fps the count of `True` reaches zero within seconds and CPython aborts
("Fatal Python error: bool_dealloc"). From Python 3.12 these singletons are immortal and the bug is
harmless; before that we make them effectively immortal ourselves, exactly as 3.12 does, by giving
them a refcount no leak can exhaust. The probe runs the buggy call and applies the fix only if
references really go missing, so a fixed PySide6 is left alone.
"""

from __future__ import annotations

import ctypes
import logging
import sys

log = logging.getLogger(__name__)

_IMMORTAL_BOOST = 1 << 40  # ~10^12 lost references before trouble: days of 30 fps emits
_checked = False


def _signal_emit_leaks_true() -> bool:
    from PySide6.QtCore import QObject, Signal

    class _Probe(QObject):
        sig = Signal()

    probe = _Probe()
    before = sys.getrefcount(True)
    for _ in range(64):
        probe.sig.emit()
    return sys.getrefcount(True) <= before - 32


def guard_singleton_refcounts() -> bool:
    """Applies the fix once if this Python/PySide6 needs it; returns whether it did."""
    global _checked
    if _checked:
        return False
    _checked = True
    if sys.version_info >= (3, 12):
        return False  # immortal objects (PEP 683)
    if not _signal_emit_leaks_true():
        return False
    for singleton in (True, False, None):
        ctypes.c_ssize_t.from_address(id(singleton)).value += _IMMORTAL_BOOST
    log.warning("PySide6 drops references to True/False/None (signal emit); made them immortal as in Python 3.12")
    return True
