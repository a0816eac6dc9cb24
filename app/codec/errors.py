"""Exceptions raised by the codec layer.

Every message is one line a user can act on: what was wrong, and what to do
about it. The UI shows ``str(error)`` as is.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["CodecError", "ModelError", "InputError", "DerivedFileError", "one_line"]


class CodecError(Exception):
    """Base class of every error the codec layer raises on purpose."""


class ModelError(CodecError):
    """A model folder, file or graph does not follow the Mimi ONNX contract.

    The message names the file, the tensor (or line) and what was expected.
    """


class InputError(CodecError, ValueError):
    """A bad argument to the codec (audio, codes, codebook count, threads)."""


class DerivedFileError(ModelError):
    """A file the app made in its data folder is damaged and could not be made again.

    The model itself is fine: the message names the file and the folder to delete (the app makes
    its contents again from the model), never "re-download the model".
    """

    @classmethod
    def damaged(cls, path: object, problem: str, cause: object) -> "DerivedFileError":
        # Built here, not in __init__: the error must pickle (prepare's child sends it back).
        folder = Path(str(path)).parent
        return cls(f"{path} (made by the app in its data folder) is damaged: {problem}, and making it again "
                   f"failed ({one_line(cause)}); delete the folder {folder} and load the model again")


def one_line(text: object) -> str:
    """Collapse a foreign message (onnxruntime, protobuf) onto one line."""
    return " ".join(str(text).split())
