"""Timeouts and a bounded number of tries for every request huggingface_hub's client sends during
a download (the downloading thread).

huggingface_hub 2.4 sends `model_info` and `paths-info` with no timeout at all and retries a
file's metadata (60 s a try) and body for minutes. While a download runs (`bounded(budget)`), no
request of the shared client waits longer than MIMI_LIVE_HUB_TIMEOUT_S (default 10 s) to connect
or for the next bytes, and HUB_TRIES failed tries in a row without progress end the download with
one line naming the host (HubUnresponsive).
"""

from __future__ import annotations

import logging
import math
import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import cache

from app.config import HUB_REPO
from app.models.errors import DownloadError, HubUnresponsive, one_line_reason

__all__ = ["DEFAULT_HUB_TIMEOUT_S", "HUB_TIMEOUT_ENV", "HUB_TRIES", "Budget", "bounded", "hub_timeout_s", "metadata"]

HUB_TIMEOUT_ENV = "MIMI_LIVE_HUB_TIMEOUT_S"
DEFAULT_HUB_TIMEOUT_S = 10.0  # per connect and per read: a working hub answers well within it
HUB_TRIES = 3  # failed tries in a row, with no byte received, before giving up
RETRY_PAUSE_S = 0.5  # between two tries of a metadata request




def hub_timeout_s() -> float:
    """Seconds allowed per connect and per read: MIMI_LIVE_HUB_TIMEOUT_S, or 10."""
    raw = os.environ.get(HUB_TIMEOUT_ENV, "").strip()
    if not raw:
        return DEFAULT_HUB_TIMEOUT_S
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise DownloadError(f"{HUB_TIMEOUT_ENV}={raw!r} is not a number of seconds above 0; unset it or set e.g. 10")
    return value


class Budget:
    """Failed tries in a row since the last progress: a whole answer, or file bytes kept.

    Bytes that arrive and are lost in the next stall (huggingface_hub keeps a file's bytes in 10 MB
    pieces) are not progress: a server that sends a little and stalls, again and again, runs out.
    """

    def __init__(self, timeout_s: float, tries: int) -> None:
        self.timeout_s = timeout_s
        self.tries = tries
        self.failures = 0
        self.what = f"the file list of {HUB_REPO}"
        self.received = False  # some bytes of `what` arrived: a stall, not silence

    def fetching(self, what: str) -> None:
        self.what, self.received = what, False

    def answered(self) -> None:
        """A whole answer, or file bytes kept (written to the cache): the tries start again."""
        self.failures = 0

    def failed(self, host: str, exc: BaseException, waited_s: float) -> None:
        """Counts a failed try (that waited up to `waited_s`); raises HubUnresponsive once they run out."""
        import httpx2

        self.failures += 1
        if self.failures < self.tries:
            return
        n = f"{self.failures} {'try' if self.failures == 1 else 'tries'}"
        t = f"{waited_s:g} s"
        if isinstance(exc, httpx2.ConnectError):
            message = (f"cannot reach {host} ({one_line_reason(exc)}; {n}): check your network or set "
                       "HF_ENDPOINT; models already downloaded still work")
        elif self.received:
            message = (f"{host} stopped sending {self.what} (nothing for {t}, {n}): check your network and "
                       "run the download again (completed files are kept)")
        elif isinstance(exc, httpx2.TimeoutException):
            message = f"{host} did not answer within {t} ({n}): check your network or set HF_ENDPOINT"
        else:
            message = (f"the connection to {host} kept dropping while downloading {self.what} "
                       f"({one_line_reason(exc)}; {n}): check your network and run the download again")
        raise HubUnresponsive(message) from exc


_active = threading.local()  # .budget: the download running on this thread, if any
# huggingface_hub's own best-effort lookups (it swallows their failures): not tries of the download
_BEST_EFFORT_PATHS = ("/api/agent-harnesses",)


def _host(url) -> str:
    return f"{url.host}:{url.port}" if url.port else url.host


def _capped(request, limit_s: float) -> float:
    """Caps the request's timeouts at `limit_s` (None, huggingface_hub's default, means no limit at all);
    returns the read timeout, what a silent server costs."""
    given = request.extensions.get("timeout") or {}
    timeout = {k: limit_s if given.get(k) is None else min(given[k], limit_s)
               for k in ("connect", "read", "write", "pool")}
    request.extensions = {**request.extensions, "timeout": timeout}
    return max(timeout["connect"], timeout["read"])


@cache
def _client_class() -> type:
    import httpx2

    transient = (httpx2.TimeoutException, httpx2.NetworkError, httpx2.RemoteProtocolError)

    class WatchedStream(httpx2.SyncByteStream):
        """A response body whose stalls count as failed tries (after bytes: "stopped sending")."""

        def __init__(self, inner, budget: Budget, host: str, read_s: float) -> None:
            self._inner, self._budget, self._host, self._read_s = inner, budget, host, read_s

        def __iter__(self):
            try:
                for chunk in self._inner:
                    self._budget.received = self._budget.received or bool(chunk)
                    yield chunk
            except transient as exc:
                self._budget.failed(self._host, exc, self._read_s)
                raise

        def close(self) -> None:
            self._inner.close()

    class BoundedClient(httpx2.Client):
        """huggingface_hub's client; no request waits longer than our timeout (its own: None to 60 s)."""

        def send(self, request, **kwargs):
            budget: Budget | None = getattr(_active, "budget", None)
            waits_s = _capped(request, budget.timeout_s if budget is not None else DEFAULT_HUB_TIMEOUT_S)
            if budget is None or request.url.path.endswith(_BEST_EFFORT_PATHS):
                return super().send(request, **kwargs)
            host = _host(request.url)
            try:
                response = super().send(request, **kwargs)
            except transient as exc:
                budget.failed(host, exc, waits_s)
                raise
            if kwargs.get("stream"):
                response.stream = WatchedStream(response.stream, budget, host, request.extensions["timeout"]["read"])
            else:
                budget.answered()
            return response

    return BoundedClient


def _install_bounded_client() -> None:
    """Makes huggingface_hub's shared client a BoundedClient (same hooks, proxies from the environment)."""
    from huggingface_hub import get_session, set_client_factory

    cls = _client_class()
    session = get_session()
    if isinstance(session, cls):
        return
    hooks = session.event_hooks  # offline mode, request ids: keep what huggingface_hub installs
    set_client_factory(lambda: cls(event_hooks=hooks, follow_redirects=True, timeout=None))


@contextmanager
def bounded(budget: Budget) -> Iterator[Budget]:
    """Runs the block with `budget` on this thread's hub requests and huggingface_hub's retry chatter quiet."""
    _install_bounded_client()
    hub_log = logging.getLogger("huggingface_hub")
    level = hub_log.level
    if not os.environ.get("HF_HUB_VERBOSITY"):  # our one line says it all; warnings would be extra lines
        hub_log.setLevel(logging.ERROR)
    _active.budget = budget
    try:
        yield budget
    finally:
        _active.budget = None
        hub_log.setLevel(level)


def metadata(budget: Budget, call: Callable[[], object]):
    """One metadata request, tried again after a timeout or a dropped connection (the budget counts)."""
    import httpx2

    for _ in range(budget.tries - 1):
        try:
            return call()
        except (httpx2.TimeoutException, httpx2.ReadError, httpx2.RemoteProtocolError):
            time.sleep(RETRY_PAUSE_S)  # a refused connection is not retried: it is an answer
    return call()
