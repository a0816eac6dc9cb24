"""Exceptions raised by the codec layer.

Every message is one line a user can act on: what was wrong, and what to do
about it. The UI shows ``str(error)`` as is.
"""

from __future__ import annotations

from pathlib import Path

from app.errors import AppError, one_line

__all__ = ["CodecError", "DerivedFileError", "InputError", "ModelContractError", "ModelError"]


class CodecError(AppError):
    """Base class of every error the codec layer raises on purpose."""


class ModelContractError(CodecError):
    """A model folder, file or graph does not follow the Mimi ONNX contract.

    The message names the file, the tensor (or line) and what was expected.
    """


# The old name: the codec tests still catch it by this one.
ModelError = ModelContractError


class InputError(CodecError, ValueError):
    """A bad argument to the codec (audio, codes, codebook count, threads)."""


class DerivedFileError(ModelContractError):
    """A file the app made in its data folder is damaged and could not be made again.

    The model itself is fine: the message names the file and the folder to delete (the app makes
    its contents again from the model), never "re-download the model".
    """

    @classmethod
    def damaged(cls, path: object, problem: str, cause: object) -> DerivedFileError:
        # Built here, not in __init__: the error must pickle (prepare's child sends it back).
        folder = Path(str(path)).parent
        return cls(f"{path} (made by the app in its data folder) is damaged: {problem}, and making it again "
                   f"failed ({one_line(cause)}); delete the folder {folder} and load the model again")
