"""Exceptions raised by the codec layer.

Every message is one line a user can act on: what was wrong, and what to do
about it. The UI shows ``str(error)`` as is.
"""

from __future__ import annotations

__all__ = ["CodecError", "ModelError", "InputError", "one_line"]


class CodecError(Exception):
    """Base class of every error the codec layer raises on purpose."""


class ModelError(CodecError):
    """A model folder, file or graph does not follow the Mimi ONNX contract.

    The message names the file, the tensor (or line) and what was expected.
    """


class InputError(CodecError, ValueError):
    """A bad argument to the codec (audio, codes, codebook count, threads)."""


def one_line(text: object) -> str:
    """Collapse a foreign message (onnxruntime, protobuf) onto one line."""
    return " ".join(str(text).split())
