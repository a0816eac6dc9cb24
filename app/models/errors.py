"""Errors of the model catalogue and downloader: each one is one line the user can act on.

Also the translation of huggingface_hub / httpx failures into them (on the downloading thread).
"""

from __future__ import annotations

import errno
from collections.abc import Iterator

from app.config import HUB_REPO
from app.errors import AppError, one_line


class ModelUnavailable(AppError):
    """A model could not be found, downloaded or trusted; str() is one line for the user."""


class UnknownModel(ModelUnavailable):
    """Neither an existing folder nor a published variant name."""


class NotDownloaded(ModelUnavailable):
    """A published variant that is not (completely) in the local cache."""


class CorruptModel(ModelUnavailable):
    """A cached file does not match the hub's size or sha256: never loaded, offer a re-download."""


class DownloadError(ModelUnavailable):
    """Network, hub, disk or integrity problem while downloading."""


class DownloadCancelled(DownloadError):
    """The user cancelled; files already complete stay in the cache, the partial one is discarded."""


class HubUnresponsive(DownloadError):
    """The hub (or the host serving its files) did not answer, or kept stalling, for every try."""


# ---------------------------------------------------------------------------------------------
# Error translation: huggingface_hub / httpx exceptions -> one line


def _chain(exc: BaseException | None) -> Iterator[BaseException]:
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        yield exc
        exc = exc.__cause__ or exc.__context__


def _endpoint(endpoint: str | None) -> str:
    from huggingface_hub import constants

    return (endpoint or constants.ENDPOINT).rstrip("/")


def translate_download_error(exc: BaseException, name: str, what: str, endpoint: str | None,
                             cache_dir) -> DownloadError:
    """The one line for a failure of huggingface_hub or the network while downloading `what`."""
    from huggingface_hub import constants
    from huggingface_hub.errors import (
        GatedRepoError,
        HfHubHTTPError,
        OfflineModeIsEnabled,
        RemoteEntryNotFoundError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    hub = _endpoint(endpoint)
    for e in _chain(exc):
        if isinstance(e, DownloadError):
            return e
        if isinstance(e, OfflineModeIsEnabled):
            return DownloadError(f"offline mode (HF_HUB_OFFLINE=1): {name} cannot be downloaded; "
                                 "only models already in the cache can be used")
        if isinstance(e, OSError) and e.errno == errno.ENOSPC:
            where = cache_dir or constants.HF_HUB_CACHE
            return DownloadError(f"disk full while downloading {what}: free some space in {where} "
                                 "and run the download again (completed files are kept)")
        if isinstance(e, GatedRepoError):
            return DownloadError(f"{HUB_REPO} is gated on {hub}: log in (`hf auth login`) or set HF_TOKEN")
        if isinstance(e, RepositoryNotFoundError):
            return DownloadError(f"{HUB_REPO} was not found on {hub} (404; private repository or wrong "
                                 "HF_ENDPOINT?)")
        if isinstance(e, RevisionNotFoundError):
            return DownloadError(f"{HUB_REPO} has no such revision on {hub} (404)")
        if isinstance(e, RemoteEntryNotFoundError):
            return DownloadError(f"{what} was not found on {hub} (404)")
        if isinstance(e, HfHubHTTPError) and e.response is not None and e.response.status_code == 404:
            return DownloadError(f"{what} was not found on {hub} (404)")
        if isinstance(e, HfHubHTTPError) and e.response is not None and e.response.status_code in (401, 403):
            return DownloadError(f"{hub} refused access to {what} (HTTP {e.response.status_code}): "
                                 "log in (`hf auth login`) or set HF_TOKEN")
        if isinstance(e, HfHubHTTPError) and e.response is not None:
            return DownloadError(f"{hub} answered HTTP {e.response.status_code} for {what}; try again later")
        kind = type(e).__name__
        if kind in ("ConnectError", "ConnectionError", "ConnectTimeout", "ProxyError"):
            return DownloadError(f"cannot reach the Hugging Face hub at {hub} ({one_line_reason(e)}); "
                                 "models already downloaded still work")
        if kind in ("RemoteProtocolError", "ReadError", "ReadTimeout", "TimeoutException",
                    "ChunkedEncodingError", "IncompleteRead"):
            return DownloadError(f"the connection to {hub} dropped while downloading {what} "
                                 f"({one_line_reason(e)}); run the download again to continue")
    if isinstance(exc, OSError) and "Consistency check failed" in str(exc):
        return DownloadError(f"{what} arrived incomplete (the connection dropped); run the download again")
    if isinstance(exc, OSError):
        text = f"{exc.filename}: {exc.strerror}" if exc.filename and exc.strerror else str(exc)
        return DownloadError(f"cannot download {what}: {one_line(text)}")
    return DownloadError(f"cannot download {what}: {type(exc).__name__}: {one_line(exc)}")


def one_line_reason(e: BaseException) -> str:
    text = one_line(e)
    if "refused" in text.lower() or isinstance(e, ConnectionRefusedError):
        return "connection refused"
    return text[:120] or type(e).__name__
