"""The catalogue of classic paths Mimi is compared with, and how to open one (any thread).

Importing this module imports neither pycodec2 nor av: a path's package is imported when the
path is opened, so a missing one fails there with one line saying what to install.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from types import ModuleType
from typing import Literal

from .base import StreamingCodec
from .errors import MissingPackageError, UnknownPathError

__all__ = ["CLASSIC_PATHS", "ClassicPath", "open_codec"]

Family = Literal["codec2", "opus"]


@dataclass(frozen=True, slots=True)
class ClassicPath:
    """One classic codec at one bit rate, as a menu lists it."""

    key: str
    label: str
    family: Family
    target_bps: int


CLASSIC_PATHS: dict[str, ClassicPath] = {
    path.key: path
    for path in (
        ClassicPath("codec2-1200", "Codec2 1200", "codec2", 1200),
        ClassicPath("codec2-3200", "Codec2 3200", "codec2", 3200),
        ClassicPath("opus-6k", "Opus 6 kbps", "opus", 6000),
        ClassicPath("opus-12k", "Opus 12 kbps", "opus", 12000),
    )
}

# family -> (module of this package, the package it runs on, what a user installs)
_BACKENDS: dict[str, tuple[str, str, str]] = {
    "codec2": ("codec2", "pycodec2", "pycodec2"),
    "opus": ("opus", "av", "av"),
}


def _import_backend(family: Family, label: str) -> ModuleType:
    module, package, install = _BACKENDS[family]
    try:
        return importlib.import_module(f"{__package__}.{module}")
    except ImportError as error:
        # Only a missing backend package is the user's to fix; anything else is a bug, raised as is.
        if error.name is None or error.name.split(".")[0] != package:
            raise
        raise MissingPackageError(f"{label} needs the Python package {package}, which could not be imported "
                                  f"({error}); install it with: pip install {install}") from error


def open_codec(key: str) -> StreamingCodec:
    """A fresh streaming codec for the path `key` (one of CLASSIC_PATHS)."""
    path = CLASSIC_PATHS.get(key)
    if path is None:
        raise UnknownPathError(f"no classic codec path {key!r}; the paths are {', '.join(CLASSIC_PATHS)}")
    backend = _import_backend(path.family, path.label)
    if path.family == "codec2":
        codec: StreamingCodec = backend.Codec2Codec(path.target_bps, key=path.key)
    else:
        codec = backend.OpusCodec(path.target_bps, key=path.key)
    return codec
