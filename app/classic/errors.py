"""Exceptions raised by the classic codecs (any thread; import-only, no side effects).

Every message is one line a user can act on, like the rest of the app's errors.
"""

from __future__ import annotations

from app.errors import AppError

__all__ = ["ClassicError", "MissingPackageError", "UnknownPathError"]


class ClassicError(AppError):
    """Base class of every error the classic codecs raise on purpose."""


class UnknownPathError(ClassicError, ValueError):
    """A key that names no classic path; the message lists the ones there are."""


class MissingPackageError(ClassicError, ImportError):
    """The Python package a path runs on (pycodec2, av) could not be imported; says what to install."""
