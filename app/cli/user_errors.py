"""Which exceptions are the user's to fix, and the one line each becomes (main thread).

`main` prints that line as `mimi-live: error: <message>` with exit code 1; anything this module
does not recognise is a bug and keeps its traceback.
"""

from __future__ import annotations

from app.errors import AppError, one_line

__all__ = ["UserError", "user_error_message"]


class UserError(AppError):
    """A problem with what the user asked for on the command line, reported as one line."""


def user_error_message(exc: BaseException) -> str | None:
    """One-line message for a user error, or None if exc is a bug that keeps its traceback."""
    if isinstance(exc, AppError):
        text = str(exc)
    elif isinstance(exc, OSError):
        text = f"{exc.filename}: {exc.strerror}" if exc.filename is not None and exc.strerror else str(exc)
    else:
        return None
    return one_line(text) or type(exc).__name__
