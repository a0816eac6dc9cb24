"""Session recording: what went into the codec and what came out, as two 24 kHz WAV files (worker thread).

libsndfile is told to rewrite the WAV header after every write and each chunk is flushed, so a
stop, a crash or a killed process never loses audio already written: the files are valid WAVs at
every chunk boundary.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import soundfile as sf

from app.config import SAMPLE_RATE_HZ

# libsndfile's SFC_SET_UPDATE_HEADER_AUTO (sndfile.h); soundfile does not name it.
_SFC_SET_UPDATE_HEADER_AUTO = 0x1061


class RecordingError(Exception):
    """The recording folder or files could not be written."""


def _open_wav(path: Path) -> sf.SoundFile:
    handle = sf.SoundFile(str(path), "w", SAMPLE_RATE_HZ, 1, "PCM_16", format="WAV")
    sf._snd.sf_command(handle._file, _SFC_SET_UPDATE_HEADER_AUTO, sf._ffi.NULL, 1)
    return handle


class SessionRecorder:
    """Writes `<stamp>-input.wav` and `<stamp>-codec.wav` into a folder."""

    def __init__(self, folder: Path):
        self.folder = Path(folder)
        stamp = time.strftime("%Y%m%d-%H%M%S")
        self.input_path = self.folder / f"mimi-{stamp}-input.wav"
        self.output_path = self.folder / f"mimi-{stamp}-codec.wav"
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            self._input = _open_wav(self.input_path)
            self._output = _open_wav(self.output_path)
        except (OSError, sf.LibsndfileError) as exc:
            raise RecordingError(f"{self.folder}: cannot record there ({exc}); choose a writable folder") from exc

    def write(self, dry: np.ndarray, wet: np.ndarray) -> None:
        for handle, pcm in ((self._input, dry), (self._output, wet)):
            handle.write(np.clip(pcm, -1.0, 1.0))
            handle.flush()

    def close(self) -> None:
        self._input.close()
        self._output.close()
