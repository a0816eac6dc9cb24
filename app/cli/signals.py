"""SIGTERM and SIGHUP handled like Ctrl-C (main thread).

A service manager, `kill` or a closed terminal must not lose what Ctrl-C keeps: `run` prints its
summary and flushes its metrics, `roundtrip` removes its `.part` file, the window saves its settings
and stops the engine. So all three signals raise `Interrupted` (a KeyboardInterrupt) in the main
thread and take the path Ctrl-C already takes.

Two exceptions to raising at once:
- inside `deferred()` the signal is held until the block ends, so a block that must not be cut in
  half (a metrics line being written) finishes first;
- while a Qt event loop runs, an exception raised in a slot would only be printed by the excepthook,
  so the windows are closed instead (their closeEvent does the cleanup) and the loop quits;
  `raise_pending()` raises the interrupt once the loop has returned.
"""

from __future__ import annotations

import contextlib
import signal
import sys
import threading
from collections.abc import Iterable, Iterator
from types import FrameType
from typing import Any, TypeVar

__all__ = ["Interrupted", "deferred", "deferred_steps", "handled", "raise_pending"]

# SIGHUP does not exist on Windows.
SIGNALS = tuple(getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name))

T = TypeVar("T")

_deferring = 0  # nesting depth of deferred()
_pending: int | None = None  # a signal held back, to raise when the block or the Qt loop ends


class Interrupted(KeyboardInterrupt):
    """Ctrl-C, SIGTERM or SIGHUP; `label` says which, as a user would."""

    def __init__(self, signum: int) -> None:
        self.signum = signum
        super().__init__(self.label)

    @property
    def label(self) -> str:
        return "Ctrl-C" if self.signum == signal.SIGINT else signal.Signals(self.signum).name


def _running_qt_app():  # a QCoreApplication, or None (Qt is only looked up, never imported)
    qtcore = sys.modules.get("PySide6.QtCore")
    if qtcore is None:
        return None
    app = qtcore.QCoreApplication.instance()
    if app is None or qtcore.QThread.currentThread().loopLevel() == 0:
        return None
    return app


def _close_windows() -> None:
    qtwidgets = sys.modules.get("PySide6.QtWidgets")
    if qtwidgets is not None and qtwidgets.QApplication.instance() is not None:
        qtwidgets.QApplication.closeAllWindows()  # each window's closeEvent saves and shuts down
    qtcore = sys.modules["PySide6.QtCore"]
    qtcore.QCoreApplication.quit()  # also leaves a nested loop (a dialog's exec)


def _on_signal(signum: int, frame: FrameType | None) -> None:
    global _pending
    if _deferring:
        _pending = _pending or signum
        return
    if _running_qt_app() is not None:
        _pending = _pending or signum
        # Not from inside whatever slot the signal landed in: from the event loop, next.
        sys.modules["PySide6.QtCore"].QTimer.singleShot(0, _close_windows)
        return
    raise Interrupted(signum)


@contextlib.contextmanager
def handled() -> Iterator[None]:
    """Routes SIGINT, SIGTERM and SIGHUP to `Interrupted` for the duration; restores the old handlers.

    Only from the main thread (Python's rule) and only for signals left at their default: an
    ignored SIGHUP (nohup) or SIGINT (a background job) stays ignored.
    """
    global _pending
    previous: dict[int, Any] = {}  # whatever signal.getsignal returned
    if threading.current_thread() is threading.main_thread():
        for signum in SIGNALS:
            current = signal.getsignal(signum)
            if current in (signal.SIG_DFL, signal.default_int_handler):
                previous[signum] = current
                signal.signal(signum, _on_signal)
    _pending = None
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        _pending = None


@contextlib.contextmanager
def deferred() -> Iterator[None]:
    """Holds a signal that arrives inside the block; raises it as `Interrupted` when the block ends."""
    global _deferring
    _deferring += 1
    try:
        yield
    finally:
        _deferring -= 1
    if not _deferring:
        raise_pending()


def deferred_steps(items: Iterable[T]) -> Iterator[T]:
    """`items` with each step taken inside `deferred()`: a signal lands between two items.

    For generators that start threads or must run their own cleanup (app.codec.pipeline starts its
    encoder thread inside the first step): interrupted half way, a thread could be left running in
    ONNX Runtime while the interpreter shuts down, which aborts the process.
    """
    iterator = iter(items)
    while True:
        with deferred():
            try:
                item = next(iterator)
            except StopIteration:
                return
        yield item


def raise_pending() -> None:
    """Raises `Interrupted` for a signal that was held back (see the module docstring), if any."""
    global _pending
    signum, _pending = _pending, None
    if signum is not None:
        raise Interrupted(signum)
