"""The base of every error the app raises for a user to read (any thread; import-only, no side effects).

Each area (codec, audio, models) keeps its own classes, so a caller can still catch just one
area's failures; they all derive from `AppError`, so a front end that only shows the message
can catch them all at once.
"""

from __future__ import annotations

__all__ = ["AppError", "one_line"]


def one_line(text: object) -> str:
    """`text` with every run of white space (newlines included) made one space.

    Foreign messages (onnxruntime, protobuf, PortAudio, the OS) often span lines; the UI and the
    CLI show exactly one.
    """
    return " ".join(str(text).split())


class AppError(Exception):
    """An error meant for the user: its message says what went wrong and what to do about it."""

    def one_line(self) -> str:
        """The message, on one line."""
        return one_line(self)
