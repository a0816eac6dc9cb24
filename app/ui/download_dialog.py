"""Downloading a published variant from the window: progress (bytes, rate, time left) and Cancel (GUI thread).

The transfer runs on a plain thread ("mimi-download") through app.models.download_variant; its
progress callback only stores the latest report, which a timer (GUI thread) shows at its own pace.
A hub that stops answering ends the download within its timeouts (about 30 s) with one line, shown
by the window. Cancel ends the dialog at once: it sets an event the download checks after every
chunk, and a request already waiting on a silent hub ends within those timeouts, its result unused.
Nothing partial is ever kept or loaded.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QTimer, Signal
from PySide6.QtWidgets import QProgressDialog, QWidget

from app.errors import one_line
from app.models.download import DownloadProgress, download_variant

REFRESH_MS = 100
MB = 1e6


def describe_progress(p: DownloadProgress | None, name: str) -> str:
    if p is None or not p.total_bytes:
        return f"Downloading {name}…"
    text = f"Downloading {name}: {p.done_bytes / MB:.1f} of {p.total_bytes / MB:.1f} MB"
    if p.rate_bps:
        text += f" · {p.rate_bps / MB:.1f} MB/s"
    if p.eta_s is not None:
        text += f" · {p.eta_s:.0f} s left"
    return text


class DownloadDialog(QProgressDialog):
    """Modal-looking progress for one variant; emits sigDone(folder or None, error text or "")."""

    sigDone = Signal(object, str)

    def __init__(self, name: str, parent: QWidget | None = None,
                 download: Callable[..., Path] = download_variant):
        super().__init__(f"Downloading {name}…", "Cancel", 0, 1000, parent)
        self.setWindowTitle("Download model")
        self.setMinimumDuration(0)
        self.setAutoClose(False)
        self.setAutoReset(False)
        self.name = name
        self._latest: DownloadProgress | None = None
        self._result: tuple[Path | None, str] | None = None
        self._finished = False
        self._cancel = threading.Event()
        self.canceled.connect(self._on_cancel)
        self._thread = threading.Thread(target=self._work, args=(download,), name="mimi-download", daemon=True)
        self._timer = QTimer(self)
        self._timer.setInterval(REFRESH_MS)
        self._timer.timeout.connect(self._refresh)

    def start(self) -> None:
        self._thread.start()
        self._timer.start()
        self.show()

    def _work(self, download: Callable[..., Path]) -> None:
        try:
            folder = download(self.name, progress=self._store, cancel=self._cancel)
            self._result = (folder, "")
        except Exception as exc:  # noqa: BLE001 - every failure is a message in the window
            self._result = (None, one_line(exc) or type(exc).__name__)

    def _store(self, progress: DownloadProgress) -> None:
        self._latest = progress  # one attribute write: the GUI reads it on its timer

    def _on_cancel(self) -> None:
        # Do not wait for the download thread: it may be blocked on a hub that says nothing.
        self._cancel.set()
        self._finish(None, f"download of {self.name} cancelled; nothing was kept")

    def _refresh(self) -> None:
        progress = self._latest
        self.setLabelText(describe_progress(progress, self.name))
        if progress is not None and progress.total_bytes:
            self.setValue(int(1000 * progress.fraction))
        if self._result is not None:
            self._finish(*self._result)

    def _finish(self, folder: Path | None, error: str) -> None:
        if self._finished:  # close() below emits canceled() once more
            return
        self._finished = True
        self._timer.stop()
        self.close()
        self.sigDone.emit(folder, error)
