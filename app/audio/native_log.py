"""The C libraries' messages (ALSA, PortAudio, JACK) go to the log, counted, not to the terminal.

ALSA and PortAudio print straight to the process's stderr (file descriptor 2): `ALSA lib
pcm.c:8570:(snd_pcm_recover) underrun occurred`, `Expression '...' failed in
'src/hostapi/alsa/pa_linux_alsa.c'`. PortAudio offers no hook for its lines, so while a
`NativeMessages` is installed, descriptor 2 is a pipe read by a thread: lines from those libraries
are counted and logged (the first ones verbatim, then a count now and then, so hours of xruns do
not grow the log without bound); every other line (Python's own messages, tracebacks) is passed
on to the real stderr unchanged and in order. Python's own `sys.stderr` gets a descriptor of its
own on the real stderr meanwhile: ALSA writes one line in several pieces, and a Python line
landing between them would be taken for a library's.
"""

from __future__ import annotations

import io
import logging
import os
import re
import sys
import threading
import time

log = logging.getLogger(__name__)

# A line from one of the audio C libraries. ALSA prefixes its own; PortAudio's ALSA host API
# reports failed checks as "Expression '...' failed in '...pa_...c'"; JACK's client library,
# which PortAudio may probe, prints "Cannot connect to server ..." and "jack server ...".
NATIVE_LINE = re.compile(rb"^(ALSA lib |Expression '.*' failed in |PaAlsa|PortAudio|Cannot connect to server|"
                         rb"jack server|JackShmReadWritePtr|Cannot lock down)")
UNDERRUN = re.compile(rb"underrun occurred|xrun", re.IGNORECASE)
VERBATIM_LINES = 20  # logged as they are; after that a count every SUMMARY_EVERY_S
SUMMARY_EVERY_S = 60.0
PIPE_BYTES = 1 << 20  # room for bursts while the reader waits for the interpreter lock


class NativeMessages:
    """Installs the stderr pipe on `start()`, restores stderr on `stop()` (also a context manager).

    `count` is the number of C-library lines seen, `underruns` those that report an xrun.
    """

    def __init__(self) -> None:
        self.count = 0
        self.underruns = 0
        self._saved: int | None = None
        self._python_stderr = sys.stderr
        self._thread: threading.Thread | None = None
        self._unlogged = 0
        self._summarized_at = time.monotonic()

    def __enter__(self) -> NativeMessages:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        if self._saved is not None or sys.platform == "win32":  # ALSA is Linux's; Windows has no fd 2 to share
            return
        try:
            sys.stderr.flush()
            saved = os.dup(2)
            read_end, write_end = os.pipe()
        except OSError as exc:  # no stderr at all (a windowed launcher): nothing to keep clean
            log.debug("C-library messages stay where they are: %s", exc)
            return
        try:
            import fcntl

            fcntl.fcntl(write_end, fcntl.F_SETPIPE_SZ, PIPE_BYTES)
        except (ImportError, AttributeError, OSError):  # a smaller pipe only means less room for bursts
            pass
        os.dup2(write_end, 2)
        os.close(write_end)
        self._saved = saved
        self._python_stderr = sys.stderr
        sys.stderr = io.TextIOWrapper(io.FileIO(os.dup(saved), "w"), encoding=getattr(sys.stderr, "encoding", None),
                                      errors="backslashreplace", line_buffering=True)
        self._thread = threading.Thread(target=self._read, args=(read_end, saved), name="native-messages",
                                        daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Puts the real stderr back; lines already written are still sorted and passed on."""
        if self._saved is None:
            return
        ours, sys.stderr = sys.stderr, self._python_stderr
        try:
            ours.close()
        except (OSError, ValueError):
            pass
        os.dup2(self._saved, 2)  # closes our copy of the write end: the reader sees the end
        # Child processes (model preparation) may hold the write end a little longer: do not wait.
        if self._thread is not None:
            self._thread.join(timeout=1.0)
        os.close(self._saved)
        self._saved = None
        if self._unlogged:
            self._summarize()

    def _read(self, read_end: int, saved: int) -> None:
        pending = b""
        try:
            while True:
                data = os.read(read_end, 65536)
                if not data:
                    break
                lines = (pending + data).split(b"\n")
                pending = lines.pop()
                for line in lines:
                    self._sort(line, saved)
            if pending:
                self._sort(pending, saved)
        finally:
            os.close(read_end)

    def _sort(self, line: bytes, saved: int) -> None:
        if not NATIVE_LINE.match(line):
            try:
                os.write(saved, line + b"\n")
            except OSError:  # the terminal went away: nothing to show it on
                pass
            return
        self.count += 1
        if UNDERRUN.search(line):
            self.underruns += 1
        if self.count <= VERBATIM_LINES:
            log.info("audio library: %s", line.decode(errors="replace").strip())
            if self.count == VERBATIM_LINES:
                log.info("audio library: further lines are counted, and summed up every %.0f s",
                            SUMMARY_EVERY_S)
            return
        self._unlogged += 1
        if time.monotonic() - self._summarized_at >= SUMMARY_EVERY_S:
            self._summarize()

    def _summarize(self) -> None:
        log.info("audio library: %d more lines (%d in all, %d of them xruns)", self._unlogged, self.count,
                    self.underruns)
        self._unlogged = 0
        self._summarized_at = time.monotonic()
