"""Errors of the model catalogue and downloader: each one is one line the user can act on."""

from __future__ import annotations


class ModelError(Exception):
    """A model could not be found, downloaded or trusted; str() is one line for the user."""


class UnknownModel(ModelError):
    """Neither an existing folder nor a published variant name."""


class NotDownloaded(ModelError):
    """A published variant that is not (completely) in the local cache."""


class CorruptModel(ModelError):
    """A cached file does not match the hub's size or sha256: never loaded, offer a re-download."""


class DownloadError(ModelError):
    """Network, hub, disk or integrity problem while downloading."""


class DownloadCancelled(DownloadError):
    """The user cancelled; files already complete stay in the cache, the partial one is discarded."""
