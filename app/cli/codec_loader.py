"""Opening a model for `info` and `roundtrip` (main thread).

onnxruntime is imported only here, when a command actually loads a model.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from app.codec import StreamingCodec

__all__ = ["open_codec"]


def open_codec(model: Path, codebooks: int | None = None, threads: int | None = None) -> StreamingCodec:
    """The model's codec with `threads`, or the count `tune` measured fastest for it here."""
    from app.codec import StreamingCodec
    from app.codec.tuning import tuned_threads

    return StreamingCodec(model, codebooks=codebooks, threads=threads or tuned_threads(model))
