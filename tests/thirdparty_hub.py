"""A Hugging Face hub imitation NOT written by this project, serving the tiny fixture models.

The hub is olah (PyPI `olah`, pinned in the `dev` extra), a self-hosted Hugging Face mirror. Run
offline with `mirrors-path`, it serves local git repositories as hub repositories, with no upstream
(olah/mirror/repos.py). `OlahHub` builds such a repository for BMekiker/mimi-onnx-streaming in a
temporary folder, laid out as the published one (`streaming-8cb-fp16/encoder_model.onnx`, ...) with
the .onnx files in git LFS (pointer files in git, objects under .git/lfs/objects, as a `git lfs`
clone has them), then runs `python -m olah.server` on 127.0.0.1 as a subprocess.

What olah 0.5.4 answers from a local mirror (read from its source, checked with curl):

- `GET /api/models/{repo}/revision/{rev}`: id, sha (the git commit), siblings as `rfilename` only:
  no size, blobId or lfs, even with `?blobs=true` (the real hub sends them).
- `GET /api/models/{repo}` (no revision): 401 RepoNotFound offline (it looks for a latest commit
  in its proxy cache, never in the mirror). huggingface_hub's own snapshot_download always names a
  revision ("main") and so is not affected.
- `HEAD /{repo}/resolve/{rev}/{path}`: Content-Length (real size), X-Repo-Commit, and an unquoted
  ETag: sha256 of the object for LFS files, git blob sha1 otherwise. No X-Linked-Etag/X-Linked-Size
  (huggingface_hub falls back to ETag and Content-Length). 404 EntryNotFound for a missing file.
- `GET /{repo}/resolve/{rev}/{path}`: the bytes, chunked, without ETag/X-Repo-Commit; Range is
  ignored (200 and the whole file; huggingface_hub then restarts the file from byte 0).
- `POST /api/models/{repo}/paths-info/{rev}` and `GET /api/models/{repo}/tree/{rev}/{path}`: size,
  oid (git blob sha1) and lfs {oid (sha256), size, pointerSize}, as the real hub.

Faults olah cannot produce come from `FaultProxy`, a small reverse proxy of ours put in front of it:
`drop_once` (first GET of a file: headers and half the body, then the connection is closed) and
`corrupt` (GET bodies with one byte altered). Every answer, headers and framing included, is
olah's; the proxy only cuts or alters bodies. `requests` logs (method, path, Range header).
"""

from __future__ import annotations

import hashlib
import http.client
import importlib.util
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from urllib.parse import unquote, urlsplit

from fakehub import REPO_ID, LocalServer, fixture_files

OLAH_REQUIREMENT = "olah==0.5.4"  # keep equal to the pin in pyproject.toml's dev extra
START_TIMEOUT_S = 30.0
LFS_SUFFIX = ".onnx"


class HubUnavailable(RuntimeError):
    """olah is not installed or would not start."""


def olah_missing() -> str | None:
    """Why olah cannot be used here, or None if it is installed."""
    if importlib.util.find_spec("olah") is None:
        return f"olah is not installed (pip install -e \".[dev]\" installs {OLAH_REQUIREMENT})"
    return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def lfs_pointer(data: bytes) -> bytes:
    return (f"version https://git-lfs.github.com/spec/v1\noid sha256:{hashlib.sha256(data).hexdigest()}\n"
            f"size {len(data)}\n").encode()


def build_mirror_repo(mirrors: Path, files: dict[str, bytes]) -> str:
    """A git repository of `files` at mirrors/models/<org>/<name> (olah's layout); returns its commit.

    Files ending in .onnx are stored as git LFS pointers with their objects in .git/lfs/objects, as
    the published repository stores them. Needs only git (no git-lfs).
    """
    repo = mirrors / "models" / REPO_ID
    repo.mkdir(parents=True)
    env = dict(os.environ, GIT_CONFIG_NOSYSTEM="1", GIT_CONFIG_GLOBAL=os.devnull,
               GIT_AUTHOR_NAME="fixture", GIT_AUTHOR_EMAIL="fixture@example.invalid",
               GIT_COMMITTER_NAME="fixture", GIT_COMMITTER_EMAIL="fixture@example.invalid",
               GIT_AUTHOR_DATE="2025-01-01T00:00:00Z", GIT_COMMITTER_DATE="2025-01-01T00:00:00Z")

    def git(*args: str) -> str:
        return subprocess.run(["git", "-C", str(repo), *args], env=env, check=True, capture_output=True,
                              text=True).stdout.strip()

    git("init", "-q", "-b", "main")
    (repo / ".gitattributes").write_text(f"*{LFS_SUFFIX} filter=lfs diff=lfs merge=lfs -text\n")
    for path, data in files.items():
        dest = repo / path
        dest.parent.mkdir(parents=True, exist_ok=True)
        if path.endswith(LFS_SUFFIX):
            oid = hashlib.sha256(data).hexdigest()
            obj = repo / ".git" / "lfs" / "objects" / oid[:2] / oid[2:4] / oid
            obj.parent.mkdir(parents=True, exist_ok=True)
            obj.write_bytes(data)
            data = lfs_pointer(data)
        dest.write_bytes(data)
    git("add", "-A")
    git("commit", "-q", "-m", "tiny fixture models under their published names")
    return git("rev-parse", "HEAD")


class OlahHub:
    """olah serving the fixture variants as BMekiker/mimi-onnx-streaming from a local git mirror."""

    def __init__(self, workdir: Path, variants: tuple[str, ...] | None = None) -> None:
        self.workdir = Path(workdir)
        self.files = fixture_files(variants)
        self.commit = ""
        self.port = 0
        self._proc: subprocess.Popen | None = None
        self.log = self.workdir / "olah.out"

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> OlahHub:
        why = olah_missing()
        if why:
            raise HubUnavailable(why)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.commit = build_mirror_repo(self.workdir / "mirrors", self.files)
        self.port = free_port()
        config = self.workdir / "olah.toml"
        # Offline: never contact an upstream (there is none); hf-netloc points at a closed port anyway.
        config.write_text(f"""\
[basic]
host = "127.0.0.1"
port = {self.port}
repos-path = "{self.workdir / 'cache'}"
mirrors-path = ["{self.workdir / 'mirrors'}"]
hf-scheme = "http"
hf-netloc = "127.0.0.1:{free_port()}"
hf-lfs-netloc = "127.0.0.1:{free_port()}"

[accessibility]
offline = true
""")
        with open(self.log, "wb") as out:
            self._proc = subprocess.Popen(
                [sys.executable, "-m", "olah.server", "--config", str(config),
                 "--log-path", str(self.workdir / "logs")],
                cwd=self.workdir, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True)
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_ready(self) -> None:
        url = f"{self.endpoint}/api/models/{REPO_ID}/revision/main"
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            proc = self._proc
            assert proc is not None  # started by the caller
            if proc.poll() is not None:
                raise HubUnavailable(f"olah exited with {proc.returncode}:\n{self.log_tail()}")
            try:
                with urllib.request.urlopen(url, timeout=2) as r:
                    if r.status == 200:
                        return
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise HubUnavailable(f"olah did not answer {url} within {START_TIMEOUT_S:.0f} s:\n{self.log_tail()}")
            time.sleep(0.1)

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGINT)  # uvicorn shuts down cleanly on SIGINT/SIGTERM
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)

    def __enter__(self) -> OlahHub:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


# ---------------------------------------------------------------------------------------------
# Fault-injecting reverse proxy

HOP_BY_HOP = {"connection", "keep-alive", "proxy-connection", "te", "trailer", "transfer-encoding", "upgrade"}
SERVER_SET = {"date", "server"}  # BaseHTTPRequestHandler.send_response writes its own


class FaultProxy(LocalServer):
    """HTTP/1.1 reverse proxy to `upstream`; cuts or alters the bodies of chosen repository files."""

    owner_attr, thread_name = "fault", "faultproxy"

    def __init__(self, upstream: str) -> None:
        u = urlsplit(upstream)
        self.upstream = (u.hostname or "127.0.0.1", u.port or 80)
        self.drop_once: set[str] = set()  # repository paths, e.g. "streaming-8cb-fp16/encoder_model.onnx"
        self.corrupt: set[str] = set()
        self.requests: list[tuple[str, str, str | None]] = []
        self._dropped: set[str] = set()
        self._lock = threading.Lock()

    def file_gets(self, repo_path: str | None = None) -> list[tuple[str, str, str | None]]:
        """GET /.../resolve/... requests, optionally only those of one repository path."""
        return [r for r in self.requests if r[0] == "GET" and "/resolve/" in r[1]
                and (repo_path is None or r[1].endswith("/" + repo_path))]

    def _take_drop(self, repo_path: str) -> bool:
        with self._lock:
            if repo_path in self.drop_once and repo_path not in self._dropped:
                self._dropped.add(repo_path)
                return True
            return False


class _ProxyHandler(BaseHTTPRequestHandler):
    fault: FaultProxy
    protocol_version = "HTTP/1.1"

    def log_message(self, *args) -> None:  # quiet
        pass

    def do_GET(self) -> None:
        self._relay()

    def do_HEAD(self) -> None:
        self._relay()

    def do_POST(self) -> None:
        self._relay()

    def _repo_path(self) -> str | None:
        path = unquote(urlsplit(self.path).path)
        prefix = f"/{REPO_ID}/resolve/"
        if not path.startswith(prefix):
            return None
        return path[len(prefix):].partition("/")[2]

    def _relay(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else None
        self.fault.requests.append((self.command, unquote(urlsplit(self.path).path), self.headers.get("Range")))
        headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP | {"host"}}
        conn = http.client.HTTPConnection(*self.fault.upstream, timeout=30)
        try:
            conn.request(self.command, self.path, body=body, headers=headers)
            resp = conn.getresponse()
            data = resp.read()  # empty for HEAD; the fixtures are small
            chunked = (resp.getheader("Transfer-Encoding") or "").lower() == "chunked"
            resp_headers = resp.getheaders()
        finally:
            conn.close()

        repo_path = self._repo_path()
        drop = False
        if self.command == "GET" and repo_path is not None and 200 <= resp.status < 300:
            if repo_path in self.fault.corrupt and data:
                i = len(data) // 2
                data = data[:i] + bytes([data[i] ^ 0x01]) + data[i + 1:]
            drop = self.fault._take_drop(repo_path)

        self.send_response(resp.status, resp.reason)
        for k, v in resp_headers:
            if k.lower() not in HOP_BY_HOP | SERVER_SET:
                self.send_header(k, v)
        if chunked:
            self.send_header("Transfer-Encoding", "chunked")
        if drop:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command == "HEAD":
            return
        payload = data[: len(data) // 2] if drop else data
        if chunked:
            for i in range(0, len(payload), 16384):
                piece = payload[i:i + 16384]
                self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
            if not drop:
                self.wfile.write(b"0\r\n\r\n")
        else:
            self.wfile.write(payload)
        self.wfile.flush()
        if drop:
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


FaultProxy.handler = _ProxyHandler


if __name__ == "__main__":  # manual use: python tests/thirdparty_hub.py, then HF_ENDPOINT=<printed url>
    import tempfile

    with tempfile.TemporaryDirectory() as tmp, OlahHub(Path(tmp)) as hub:
        print(hub.endpoint, hub.commit, flush=True)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass

