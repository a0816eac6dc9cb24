"""Session recording: what went into the codec and what came out, as two 24 kHz WAV files.

Threads: `SessionRecorder(...)`, `write()` and `close()` run on the caller's thread (the engine's
real-time worker); the files are written only on the recorder's own writer thread ("mimi-recorder").
`write()` copies the chunk into a bounded queue and returns: it never waits for the disk and never
raises. A full queue (a disk that does not keep up) drops the chunk pair and counts it.

The WAV files are written with plain os calls (not libsndfile) so every failure carries its errno
(ENOSPC, EFBIG, EIO...) and so a half-written chunk can be cut off exactly. Each chunk is written
first, then the header's two sizes: the files are valid WAVs at every chunk boundary, and a crash
or a failure never loses a chunk already written. After a failure both files are cut back to the
last chunk written to both, writing stops, and `error` is one line naming the file and the reason.

File names never collide: they are created with O_EXCL, with a counter after the time stamp when
another recorder (in this process or another) took the name first.
"""

from __future__ import annotations

import errno
import os
import queue
import struct
import threading
import time
from pathlib import Path

import numpy as np

from app.config import SAMPLE_RATE_HZ
from app.errors import AppError, one_line

QUEUE_CHUNKS = 128  # ~10 s of 80 ms chunks waiting for a slow disk before any is dropped
CLOSE_TIMEOUT_S = 5.0  # close() gives up on a stuck writer after this long
_POLL_S = 0.1  # how often an idle writer looks for close()
_HEADER_BYTES = 44  # RIFF + fmt (PCM) + data chunk header
_BYTES_PER_FRAME = 2  # mono PCM_16
_STOP = object()


class RecordingError(AppError):
    """The recording folder or files could not be created (raised by the constructor only)."""


def _wav_header(frames: int) -> bytes:
    data = frames * _BYTES_PER_FRAME
    return (b"RIFF" + struct.pack("<I", 36 + data) + b"WAVE"
            + b"fmt " + struct.pack("<IHHIIHH", 16, 1, 1, SAMPLE_RATE_HZ, SAMPLE_RATE_HZ * _BYTES_PER_FRAME,
                                    _BYTES_PER_FRAME, 16)
            + b"data" + struct.pack("<I", data))


def to_pcm16(x: np.ndarray) -> bytes:
    """Float samples -> little-endian PCM_16, scaled and clipped exactly as libsndfile does."""
    return np.clip(np.rint(np.asarray(x, np.float64) * 32768.0), -32768, 32767).astype("<i2").tobytes()


class _WavFile:
    """One mono PCM_16 WAV on a file descriptor; `frames` is what its header describes (writer thread)."""

    def __init__(self, path: Path, fd: int) -> None:
        self.path, self.fd, self.frames = path, fd, 0
        self._pwrite_all(_wav_header(0), 0)

    def _pwrite_all(self, data: bytes, offset: int) -> None:
        view = memoryview(data)
        while view:  # a short write (the disk filled up mid-chunk) continues until it raises
            n = os.pwrite(self.fd, view, offset)
            if n == 0:
                raise OSError(errno.EIO, os.strerror(errno.EIO), str(self.path))
            view, offset = view[n:], offset + n

    def append(self, pcm: bytes) -> None:
        if os.fstat(self.fd).st_nlink == 0:  # deleted (its folder removed): writes would vanish
            raise OSError(errno.ENOENT, "the file was deleted", str(self.path))
        self._pwrite_all(pcm, _HEADER_BYTES + self.frames * _BYTES_PER_FRAME)
        frames = self.frames + len(pcm) // _BYTES_PER_FRAME
        self._set_frames(frames)  # only now does the header claim the chunk

    def _set_frames(self, frames: int) -> None:
        header = _wav_header(frames)
        self._pwrite_all(header[4:8], 4)
        self._pwrite_all(header[40:44], 40)
        self.frames = frames

    def cut_back(self, frames: int) -> None:
        """Drop everything after `frames` (a partial chunk, or a chunk the other file lacks)."""
        os.ftruncate(self.fd, _HEADER_BYTES + frames * _BYTES_PER_FRAME)  # shrinking needs no space
        self._set_frames(frames)

    def close(self) -> None:
        os.close(self.fd)


def _create_pair(folder: Path) -> tuple[Path, int, Path, int]:
    """Creates `mimi-<stamp>[-n]-input.wav` and `-codec.wav` exclusively; n counts up past taken names."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
    for n in range(1, 10_000):
        stem = f"mimi-{stamp}" if n == 1 else f"mimi-{stamp}-{n}"
        made: list[tuple[Path, int]] = []
        try:
            for kind in ("input", "codec"):
                path = folder / f"{stem}-{kind}.wav"
                made.append((path, os.open(path, flags, 0o644)))
        except FileExistsError:
            for path, fd in made:  # ours, just created: give the name back
                os.close(fd)
                path.unlink(missing_ok=True)
            continue
        (input_path, input_fd), (output_path, output_fd) = made
        return input_path, input_fd, output_path, output_fd
    raise FileExistsError(errno.EEXIST, "no free recording name", str(folder))


# Why a write failed, as a user would put it (the wording of app.audio.files' write errors).
_WRITE_REASONS: dict[int | None, str] = {  # an OSError's errno may be None
    errno.ENOSPC: "no space left on device",
    errno.EFBIG: "file too large for the file system or for this process's size limit (ulimit -f)",
    errno.EDQUOT: "disk quota exceeded",
}


def _reason(exc: BaseException) -> str:
    if isinstance(exc, OSError):
        text = _WRITE_REASONS.get(exc.errno) or exc.strerror or str(exc)
    else:
        text = str(exc) or type(exc).__name__
    text = one_line(text)
    return text[:1].lower() + text[1:]


class SessionRecorder:
    """Records `<stamp>-input.wav` (into the codec) and `<stamp>-codec.wav` (out of it) into a folder.

    `error` is None, or one line saying why recording stopped; `dropped_chunks` counts chunk pairs
    dropped because the writer fell behind; `written_chunks` those in both files.
    """

    def __init__(self, folder: Path, queue_chunks: int = QUEUE_CHUNKS) -> None:
        self.folder = Path(folder)
        self.error: str | None = None
        self.dropped_chunks = 0
        self.written_chunks = 0
        self._queued = 0  # chunk pairs queued (caller's thread only) ...
        self._taken = 0  # ... and taken off the queue (writer thread only): no lock on write()
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            self.input_path, in_fd, self.output_path, out_fd = _create_pair(self.folder)
        except OSError as exc:
            raise RecordingError(f"{self.folder}: cannot record there ({_reason(exc)}); "
                                 "choose a writable folder") from exc
        try:
            self._files = (_WavFile(self.input_path, in_fd), _WavFile(self.output_path, out_fd))
        except OSError as exc:  # e.g. no room for a header: leave no empty files behind
            for fd, path in ((in_fd, self.input_path), (out_fd, self.output_path)):
                os.close(fd)
                path.unlink(missing_ok=True)
            raise RecordingError(f"{self.input_path}: cannot record there ({_reason(exc)}); "
                                 "choose a writable folder") from exc
        self._queue: queue.Queue = queue.Queue(maxsize=queue_chunks)
        self._closed = False
        self._abandon = threading.Event()  # close() timed out: the writer quits at its next chance
        self._thread = threading.Thread(target=self._run, name="mimi-recorder", daemon=True)
        self._thread.start()

    # -- caller's thread ---------------------------------------------------------------------

    def write(self, dry: np.ndarray, wet: np.ndarray) -> None:
        """Queues one chunk pair for the writer, as PCM bytes (a copy); never blocks, never raises."""
        if self._closed or self.error is not None:
            return
        try:
            # Converted here (microseconds): the writer then only calls the OS, and sooner.
            self._queue.put_nowait((to_pcm16(dry), to_pcm16(wet)))
            self._queued += 1
        except queue.Full:
            self.dropped_chunks += 1
        except Exception:  # noqa: BLE001 - e.g. out of memory for the copy: drop, never stop the stream
            self.dropped_chunks += 1

    def flush(self, timeout_s: float = CLOSE_TIMEOUT_S) -> bool:
        """Waits until every chunk queued so far is on disk (or dropped by a failure); False on timeout.

        Not for the real-time path (it waits): for tests and for readers of a live recording.
        """
        deadline = time.monotonic() + timeout_s
        target = self._queued
        while self._taken < target and self._thread.is_alive():
            if time.monotonic() > deadline:
                return False
            time.sleep(0.002)
        return True

    def close(self, timeout_s: float = CLOSE_TIMEOUT_S) -> None:
        """Writes what is queued and closes both files; returns within `timeout_s` even if the disk is stuck."""
        if self._closed:
            return
        self._closed = True
        deadline = time.monotonic() + timeout_s
        try:
            self._queue.put(_STOP, timeout=timeout_s)
        except queue.Full:
            pass  # the writer is stuck; join below times out too
        self._thread.join(max(0.0, deadline - time.monotonic()))
        if self._thread.is_alive():
            self._abandon.set()
            if self.error is None:
                self.error = (f"recording stopped: {self.input_path}: the disk did not take the last "
                              f"{self._queue.qsize()} chunks within {timeout_s:g} s")

    # -- writer thread -----------------------------------------------------------------------

    def _run(self) -> None:
        try:
            while not self._abandon.is_set():
                try:
                    item = self._queue.get(timeout=_POLL_S)
                except queue.Empty:
                    continue
                if item is _STOP:
                    break
                if self.error is None:
                    self._write_pair(*item)
                self._taken += 1
        finally:
            for f in self._files:
                try:
                    f.close()
                except OSError:
                    pass

    def _write_pair(self, dry: bytes, wet: bytes) -> None:
        current = self._files[0]
        try:
            for current, pcm in zip(self._files, (dry, wet), strict=False):
                current.append(pcm)
            self.written_chunks += 1
        except Exception as exc:  # noqa: BLE001 - a recording failure must never reach the stream
            self._fail(current, exc)

    def _fail(self, where: _WavFile, exc: BaseException) -> None:
        # Keep both files valid and alike: each holds exactly the chunks both received in full.
        frames = min(f.frames for f in self._files)
        for f in self._files:
            try:
                f.cut_back(frames)
            except OSError:
                pass  # the header still describes only complete chunks: the file stays valid
        self.error = f"recording stopped: {where.path}: {_reason(exc)}"
