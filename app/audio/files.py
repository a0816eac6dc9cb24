"""Audio files in and out, at the codec's 24 kHz mono (caller's thread; no Qt, no devices).

Reading accepts anything libsndfile reads (WAV, FLAC, OGG, MP3, AIFF, ... at any rate and channel
count) and returns 24 kHz mono float32. Writing is atomic: samples go to `<out>.part` in the same
folder and only a complete file is renamed onto `<out>`, so a failed or interrupted run never leaves
a half-written output behind.

Every user-facing failure is an `AudioFileError` (or a plain `OSError` from the output side) whose
message is one line that starts with the path.
"""

from __future__ import annotations

import os
from pathlib import Path
from types import TracebackType

import numpy as np
import soundfile as sf
import soxr

from app.config import SAMPLE_RATE_HZ

__all__ = [
    "AudioFileError",
    "AtomicWavWriter",
    "pad_to_frames",
    "read_audio_24k_mono",
    "write_wav_atomic",
]

PART_SUFFIX = ".part"


class AudioFileError(Exception):
    """An input audio file cannot be used; the message is one line naming the file."""


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def read_audio_24k_mono(path: str | os.PathLike[str]) -> np.ndarray:
    """Read an audio file as 24 kHz mono float32, shape [samples].

    Channels are averaged; other rates are resampled with soxr (quality "HQ").
    Raises AudioFileError for a missing file, a folder, a file libsndfile cannot read, or a file
    with no samples.
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
            f"{path}: not an audio file libsndfile can read ({_one_line(reason)})"
        ) from exc
    except (sf.SoundFileError, RuntimeError, ValueError) as exc:
        raise AudioFileError(
            f"{path}: not an audio file libsndfile can read ({_one_line(exc)})"
        ) from exc
    except OSError as exc:
        raise AudioFileError(f"{path}: cannot read ({exc.strerror or exc})") from exc

    if data.shape[0] == 0 or data.shape[1] == 0:
        raise AudioFileError(f"{path}: contains no audio samples")

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


class AtomicWavWriter:
    """Write mono float32 blocks to a WAV file that appears only when complete.

    Use as a context manager: on a clean exit the `.part` file is renamed onto the target
    (os.replace, same folder, so the rename is atomic); on an exception it is removed.

        with AtomicWavWriter(out_path) as writer:
            writer.write(block)

    subtype "PCM_16" (default) clips to [-1, 1] first; "FLOAT" keeps samples as they are.
    Errors opening or writing the output are OSError with the path in the message.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        sample_rate_hz: int = SAMPLE_RATE_HZ,
        subtype: str = "PCM_16",
    ) -> None:
        self.path = Path(path)
        if self.path.is_dir() or not self.path.name:
            raise IsADirectoryError(21, "is a folder, not a file name", str(self.path))
        self.part_path = self.path.with_name(self.path.name + PART_SUFFIX)
        self.sample_rate_hz = int(sample_rate_hz)
        self.subtype = subtype.upper()
        if not sf.check_format("WAV", self.subtype):
            raise ValueError(f"WAV cannot hold subtype {subtype!r}")
        self._clip = self.subtype.startswith("PCM")
        self._raw = None
        self._sound = None
        self.samples_written = 0

    def open(self) -> AtomicWavWriter:
        # A plain Python file object gives ordinary OSErrors (missing folder, no permission, ...),
        # reported against the target path rather than the hidden .part name.
        try:
            self._raw = open(self.part_path, "wb")
        except OSError as exc:
            raise type(exc)(exc.errno, exc.strerror, str(self.path)) from exc
        try:
            self._sound = sf.SoundFile(
                self._raw,
                mode="w",
                samplerate=self.sample_rate_hz,
                channels=1,
                format="WAV",
                subtype=self.subtype,
            )
        except BaseException:
            self.abort()
            raise
        return self

    def write(self, pcm: np.ndarray) -> None:
        if self._sound is None:
            raise RuntimeError("AtomicWavWriter.write() before open()")
        block = np.asarray(pcm, dtype=np.float32).reshape(-1)
        if self._clip:
            block = np.clip(block, -1.0, 1.0)
        try:
            self._sound.write(block)
        except (sf.SoundFileError, RuntimeError) as exc:
            raise OSError(f"{self.path}: cannot write audio ({_one_line(exc)})") from exc
        self.samples_written += block.shape[0]

    def commit(self) -> None:
        """Finish the file and move it onto the target path."""
        try:
            if self._sound is not None:
                self._sound.close()
                self._sound = None
            if self._raw is not None:
                self._raw.flush()
                os.fsync(self._raw.fileno())
                self._raw.close()
                self._raw = None
            os.replace(self.part_path, self.path)
        except BaseException:
            self.abort()
            raise

    def abort(self) -> None:
        """Drop everything written so far; never raises."""
        for handle in (self._sound, self._raw):
            if handle is not None:
                try:
                    handle.close()
                except Exception:
                    pass
        self._sound = None
        self._raw = None
        try:
            self.part_path.unlink()
        except FileNotFoundError:
            pass
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
