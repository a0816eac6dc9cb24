"""The app's log file (any command that streams, and the window): one home for where it is and
how it is written.

A rotating file `mimi-live.log` (1 MB x 3) at INFO under platformdirs' user log folder, or
`MIMI_LIVE_LOG_DIR`. Commands run in a terminal keep showing warnings there as before; the
window (frozen, without a console) sends prints and tracebacks to the folder too.
"""

from __future__ import annotations

import logging
import logging.handlers
import os
import sys
from pathlib import Path
from typing import TextIO

from app.config import APP_ID

LOG_DIR_ENV = "MIMI_LIVE_LOG_DIR"
LOG_BYTES = 1_000_000
LOG_BACKUPS = 3


class _CurrentStderr(logging.StreamHandler):
    """Writes to whatever `sys.stderr` is at the time: it is swapped while the audio libraries'
    lines are sorted out (app.audio.native_log)."""

    @property
    def stream(self) -> TextIO:  # logging's own attribute
        return sys.stderr

    @stream.setter
    def stream(self, value: object) -> None:  # logging sets it once, from __init__
        pass


def log_dir() -> Path:
    override = os.environ.get(LOG_DIR_ENV)
    if override:
        return Path(override)
    import platformdirs

    return Path(platformdirs.user_log_dir(APP_ID, appauthor=False))


def setup_logging(folder: Path | None = None, console: bool = False) -> Path:
    """Adds the rotating log file to the root logger at INFO and returns its path (OSError if the
    folder cannot be written). With `console`, warnings are also printed on stderr, as Python
    does when no logging is set up."""
    folder = folder or log_dir()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{APP_ID}.log"
    handler = logging.handlers.RotatingFileHandler(path, maxBytes=LOG_BYTES, backupCount=LOG_BACKUPS,
                                                   encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(threadName)s %(name)s: %(message)s"))
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, "mimi_live", False)]:  # set up once per process
        root.removeHandler(old)
        old.close()
    handler.mimi_live = True  # type: ignore[attr-defined]  # our mark on a stdlib handler (no such attribute)
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    if console:
        terminal = _CurrentStderr()
        terminal.mimi_live = True  # type: ignore[attr-defined]  # our mark on a stdlib handler
        terminal.setLevel(logging.WARNING)
        root.addHandler(terminal)
    if getattr(sys, "frozen", False):  # no console: keep prints and tracebacks in the log
        stream = open(path.with_suffix(".stdio.log"), "a", encoding="utf-8", buffering=1)  # noqa: SIM115 - stdio for the whole run
        sys.stdout = sys.stderr = stream
    return path
