"""Which exceptions are the user's to fix, and the one line each becomes (main thread).

`main` prints that line as `mimi-live: error: <message>` with exit code 1; anything this module
does not recognise is a bug and keeps its traceback.
"""

from __future__ import annotations

import sys

__all__ = ["UserError", "user_error_message"]

# The app's own user-error classes, by module and name: looked up in sys.modules, never imported,
# because a module that was not loaded cannot have raised.
KNOWN_USER_ERRORS = (
    ("app.codec.errors", "CodecError"),
    ("app.audio.engine", "EngineError"),
    ("app.audio.devices", "DeviceError"),
    ("app.audio.recorder", "RecordingError"),
    ("app.models.errors", "ModelError"),
)


class UserError(Exception):
    """A problem with what the user asked for, reported as one line (exit code 1)."""


def user_error_message(exc: BaseException) -> str | None:
    """One-line message for a user error, or None if exc is a bug that keeps its traceback."""
    from app.audio.files import AudioFileError

    user_errors = tuple(
        cls for cls in (getattr(sys.modules.get(m), name, None) for m, name in KNOWN_USER_ERRORS)
        if isinstance(cls, type)
    )
    if isinstance(exc, (UserError, AudioFileError, *user_errors)):
        text = str(exc)
    elif isinstance(exc, OSError):
        text = f"{exc.filename}: {exc.strerror}" if exc.filename is not None and exc.strerror else str(exc)
    else:
        return None
    return " ".join(text.split()) or type(exc).__name__
