"""Audio files in and out, at the codec's 24 kHz mono (caller's thread; no Qt, no devices).

Reading accepts anything libsndfile reads (WAV, FLAC, OGG, MP3, AIFF, ... at any rate and channel
count) and returns 24 kHz mono float32. Writing is atomic: samples go to `<out>.part` in the same
folder and only a complete file is renamed onto `<out>`, so a failed or interrupted run never leaves
a half-written output behind.

Every user-facing failure is an `AudioFileError` (or a plain `OSError` from the output side) whose
message is one line that starts with the path.
"""

from __future__ import annotations

import contextlib
import errno
import os
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import BinaryIO

import numpy as np
import soundfile as sf
import soxr

from app.config import SAMPLE_RATE_HZ
from app.errors import AppError, one_line

__all__ = [
    "AudioFileError",
    "AtomicWavWriter",
    "pad_to_frames",
    "read_audio_24k_mono",
    "same_file",
    "write_error_reason",
    "write_wav_atomic",
]

PART_SUFFIX = ".part"


class AudioFileError(AppError):
    """An input audio file cannot be used; the message is one line naming the file."""


# Why a write failed, as a user would put it; the OS's own words for anything else.
_WRITE_REASONS: dict[int | None, str] = {  # an OSError's errno may be None
    errno.ENOSPC: "no space left on device",
    errno.EFBIG: "file too large for the file system or for this process's size limit (ulimit -f)",
    errno.EDQUOT: "disk quota exceeded",
}


def write_error_reason(exc: OSError) -> str:
    """One short phrase for a failed write: "no space left on device", ..."""
    return _WRITE_REASONS.get(exc.errno) or one_line(exc.strerror or exc)


def same_file(a: str | os.PathLike[str], b: str | os.PathLike[str]) -> bool:
    """True if both paths name one file (same spelling, another spelling, a symlink, a hard link)."""
    try:
        return os.path.samefile(a, b)
    except OSError:  # one of them does not exist (yet): only the spellings can be compared
        return Path(a).resolve() == Path(b).resolve()


def _first_non_finite(data: np.ndarray, rate_hz: int, path: Path) -> str | None:
    """Where the first NaN or infinite sample of [samples, channels] data is, or None if none."""
    if np.isfinite(data).all():  # the common case: one pass, no index arrays
        return None
    bad = ~np.isfinite(data)
    frame = int(np.flatnonzero(bad.any(axis=1))[0])
    channel = int(np.flatnonzero(bad[frame])[0])
    kind = "NaN" if np.isnan(data[frame, channel]) else "an infinite value"
    where = f", channel {channel + 1}" if data.shape[1] > 1 else ""
    return (f"{path}: sample {frame} ({frame / rate_hz:.3f} s{where}) is {kind}; "
            "the codec needs finite samples")


def read_audio_24k_mono(path: str | os.PathLike[str]) -> np.ndarray:
    """Read an audio file as 24 kHz mono float32, shape [samples].

    Channels are averaged; other rates are resampled with soxr (quality "HQ").
    Raises AudioFileError for a missing file, a folder, a file libsndfile cannot read, a file
    with no samples, or one with NaN or infinite samples (float WAVs can hold them; the message
    says where the first one is).
    """
    path = Path(path)
    if not path.exists():
        raise AudioFileError(f"{path}: no such file")
    if path.is_dir():
        raise AudioFileError(f"{path}: is a folder, not an audio file")
    try:
        data, rate_hz = sf.read(str(path), dtype="float32", always_2d=True)
    except sf.LibsndfileError as exc:
        # error_string is libsndfile's own reason, without soundfile's "Error opening 'path'" prefix.
        reason = getattr(exc, "error_string", None) or str(exc)
        raise AudioFileError(
            f"{path}: not an audio file libsndfile can read ({one_line(reason)})"
        ) from exc
    except (sf.SoundFileError, RuntimeError, ValueError) as exc:
        raise AudioFileError(
            f"{path}: not an audio file libsndfile can read ({one_line(exc)})"
        ) from exc
    except OSError as exc:
        raise AudioFileError(f"{path}: cannot read ({exc.strerror or exc})") from exc

    if data.shape[0] == 0 or data.shape[1] == 0:
        raise AudioFileError(f"{path}: contains no audio samples")
    problem = _first_non_finite(data, rate_hz, path)  # before resampling smears it over its neighbours
    if problem:
        raise AudioFileError(problem)

    mono = data.mean(axis=1, dtype=np.float32) if data.shape[1] > 1 else data[:, 0]
    if rate_hz != SAMPLE_RATE_HZ:
        mono = soxr.resample(mono, rate_hz, SAMPLE_RATE_HZ, quality="HQ")
    mono = np.ascontiguousarray(mono, dtype=np.float32)
    if mono.size == 0:  # a handful of samples at a high rate can resample to nothing
        raise AudioFileError(f"{path}: contains no audio samples")
    return mono


def pad_to_frames(pcm: np.ndarray, frame_size: int) -> tuple[np.ndarray, int]:
    """Zero-pad a 1-D signal at the end to a multiple of frame_size.

    Returns (padded, original_len); padded is pcm itself when no padding is needed.
    """
    if frame_size <= 0:
        raise ValueError(f"frame_size must be positive, got {frame_size}")
    original_len = int(pcm.shape[0])
    remainder = original_len % frame_size
    if remainder == 0 and original_len > 0:
        return pcm, original_len
    padded_len = max(frame_size, original_len + (frame_size - remainder) % frame_size)
    padded = np.zeros(padded_len, dtype=pcm.dtype)
    padded[:original_len] = pcm
    return padded, original_len


class _KeptErrorFile:
    """The `.part` file as libsndfile sees it (soundfile's virtual I/O): the first OSError is kept
    and the call reports failure instead of raising.

    soundfile runs these methods from C callbacks, where an exception is only printed (a traceback
    on stderr, e.g. for a full disk) and libsndfile's write comes up short; the writer raises the
    kept error itself, with the output's path and a plain reason.
    """

    def __init__(self, file: BinaryIO) -> None:
        self.file = file
        self.error: OSError | None = None

    def _guard(self, call: Callable[[], int], failed: int) -> int:
        if self.error is None:
            try:
                return call()
            except OSError as exc:
                self.error = exc
        return failed

    def write(self, data: bytes) -> int:
        return self._guard(lambda: self.file.write(data), 0)

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        return self._guard(lambda: self.file.seek(offset, whence), -1)

    def tell(self) -> int:
        return self._guard(self.file.tell, -1)

    def close(self) -> None:
        self.file.close()


class AtomicWavWriter:
    """Write mono float32 blocks to a WAV file that appears only when complete.

    Use as a context manager: on a clean exit the `.part` file is renamed onto the target
    (os.replace, same folder, so the rename is atomic); on an exception it is removed.

        with AtomicWavWriter(out_path) as writer:
            writer.write(block)

    subtype "PCM_16" (default) clips to [-1, 1] first; "FLOAT" keeps samples as they are.
    Errors opening or writing the output are OSError with the path in the message.

    `guard` (a context manager factory) wraps every call into libsndfile: libsndfile calls back
    into Python to write, and an exception raised in there (a KeyboardInterrupt from a signal) is
    only printed by cffi, so the CLI passes one that holds signals until the call returns.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        sample_rate_hz: int = SAMPLE_RATE_HZ,
        subtype: str = "PCM_16",
        guard: Callable[[], contextlib.AbstractContextManager] = contextlib.nullcontext,
    ) -> None:
        self.path = Path(path)
        self._guard = guard
        if self.path.is_dir() or not self.path.name:
            raise IsADirectoryError(21, "is a folder, not a file name", str(self.path))
        self.part_path = self.path.with_name(self.path.name + PART_SUFFIX)
        self.sample_rate_hz = int(sample_rate_hz)
        self.subtype = subtype.upper()
        if not sf.check_format("WAV", self.subtype):
            raise ValueError(f"WAV cannot hold subtype {subtype!r}")
        self._clip = self.subtype.startswith("PCM")
        self._raw: _KeptErrorFile | None = None
        self._sound: sf.SoundFile | None = None
        self.samples_written = 0

    def open(self) -> AtomicWavWriter:
        try:
            with self._guard():  # also covers creating the .part file: a signal there must not leave it
                try:
                    raw = open(self.part_path, "wb")  # noqa: SIM115 - kept open until close() or abort()
                except OSError as exc:
                    # A plain Python file object gives ordinary OSErrors (missing folder, no
                    # permission, ...), reported against the target path, not the hidden .part name.
                    raise type(exc)(exc.errno, exc.strerror, str(self.path)) from exc
                self._raw = _KeptErrorFile(raw)
                self._sound = sf.SoundFile(
                    self._raw,
                    mode="w",
                    samplerate=self.sample_rate_hz,
                    channels=1,
                    format="WAV",
                    subtype=self.subtype,
                )
        except BaseException as exc:
            if self._raw is None:  # the .part file was not made: nothing to remove
                raise
            kept = self._raw.error
            self.abort()
            if kept is not None and isinstance(exc, Exception):
                raise self._write_error(kept) from kept
            raise
        return self

    def _write_error(self, exc: OSError) -> OSError:
        """The output's OSError, one line naming the target: `out.wav: cannot write audio: <reason>`."""
        return OSError(exc.errno, f"cannot write audio: {write_error_reason(exc)}", str(self.path))

    def _raise_kept(self) -> None:
        if self._raw is not None and self._raw.error is not None:
            raise self._write_error(self._raw.error) from self._raw.error

    def write(self, pcm: np.ndarray) -> None:
        if self._sound is None:
            raise RuntimeError("AtomicWavWriter.write() before open()")
        block = np.asarray(pcm, dtype=np.float32).reshape(-1)
        if self._clip:
            block = np.clip(block, -1.0, 1.0)
        try:
            with self._guard():
                self._sound.write(block)
        except (sf.SoundFileError, RuntimeError, AssertionError) as exc:
            # soundfile asserts on a short write: the reason is the OSError the file kept.
            self._raise_kept()
            reason = one_line(exc) or "libsndfile wrote fewer samples than asked"
            raise OSError(f"{self.path}: cannot write audio ({reason})") from exc
        self._raise_kept()
        self.samples_written += block.shape[0]

    def commit(self) -> None:
        """Finish the file and move it onto the target path."""
        try:
            if self._sound is not None:
                with self._guard():
                    self._sound.close()  # rewrites the header (sizes) through the kept-error file
                self._sound = None
            self._raise_kept()
            if self._raw is not None:
                raw, self._raw = self._raw, None
                try:
                    raw.file.flush()
                    os.fsync(raw.file.fileno())
                finally:
                    raw.file.close()
            os.replace(self.part_path, self.path)
        except OSError as exc:
            self.abort()
            if exc.filename is not None or exc.errno is None:
                raise
            raise self._write_error(exc) from exc
        except BaseException:
            self.abort()
            raise

    def abort(self) -> None:
        """Drop everything written so far; never raises (but for a signal its guard held)."""
        try:
            with self._guard():
                for handle in (self._sound, self._raw):
                    if handle is not None:
                        try:
                            handle.close()
                        except Exception:  # noqa: BLE001 - abort() never raises: it runs while failing
                            pass
        finally:
            self._sound = None
            self._raw = None
            try:
                self.part_path.unlink()
            except OSError:
                pass

    def __enter__(self) -> AtomicWavWriter:
        return self.open()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self.commit()
        else:
            self.abort()


def write_wav_atomic(
    path: str | os.PathLike[str],
    pcm: np.ndarray,
    sample_rate_hz: int = SAMPLE_RATE_HZ,
    subtype: str = "PCM_16",
) -> Path:
    """Write a whole mono signal atomically (see AtomicWavWriter). Returns the path."""
    with AtomicWavWriter(path, sample_rate_hz, subtype) as writer:
        writer.write(pcm)
    return writer.path
