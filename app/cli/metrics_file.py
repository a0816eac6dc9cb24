"""`mimi-live run --metrics-out F.jsonl`: one JSON line per chunk, a write failure stops only the file
(main thread).

A full disk or a file size limit must not end a live session: the first failed write prints one
line naming the file and why, the file is cut back to its last whole line (so it stays valid JSON
lines), and the run goes on without metrics.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
from pathlib import Path
from typing import Any

from app.config import APP_ID

__all__ = ["MetricsFile"]


class MetricsFile:
    """Appends JSON lines to `path` (created or emptied). Opening errors are raised as OSError."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        # Unbuffered: each line reaches the OS at once (nothing to lose on exit), and a failed
        # write is seen at the line it belongs to.
        self._file = open(self.path, "wb", buffering=0)  # noqa: SIM115 - closed in close()
        self._size = 0  # bytes of whole lines written so far
        self.failed = False

    def write(self, row: dict[str, Any]) -> None:
        if self.failed:
            return
        data = memoryview((json.dumps(row) + "\n").encode("utf-8"))
        done = 0
        try:
            while done < len(data):  # a raw write may take only part of it (the last bytes of a disk)
                done += self._file.write(data[done:]) or 0
        except OSError as exc:
            self._fail(exc)
            return
        self._size += done

    def _fail(self, exc: OSError) -> None:
        from app.audio.files import write_error_reason

        self.failed = True
        with contextlib.suppress(OSError):
            os.ftruncate(self._file.fileno(), self._size)  # drop the half line; shrinking needs no space
        print(f"{APP_ID}: error: {self.path}: cannot write metrics: {write_error_reason(exc)}; "
              "streaming goes on without them", file=sys.stderr)

    def close(self) -> None:
        self._file.close()
