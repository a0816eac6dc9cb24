"""The classic codecs Mimi is compared with: Codec2 (1200, 3200 bps) and Opus (6, 12 kbps), streaming.

Knows nothing of audio devices or the UI: float32 mono 24 kHz in, as much out, a constant
`delay_samples` late. Importing the package imports neither pycodec2 nor av (see `paths`).
"""

from __future__ import annotations

from .base import StreamingCodec, run_file
from .errors import ClassicError, MissingPackageError, UnknownPathError
from .paths import CLASSIC_PATHS, ClassicPath, open_codec

__all__ = ["CLASSIC_PATHS", "ClassicError", "ClassicPath", "MissingPackageError", "StreamingCodec",
           "UnknownPathError", "open_codec", "run_file"]
