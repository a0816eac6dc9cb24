"""A fake Hugging Face hub on 127.0.0.1 serving the tiny fixture models as BMekiker/mimi-onnx-streaming.

It answers the requests huggingface_hub really makes (read from its source, version 2.x):

- `GET /api/models/{repo}[/revision/{rev}]` (`HfApi.model_info`, `?blobs=true` for
  files_metadata): JSON with `id`, `sha` and `siblings` (`rfilename`, `size`, `blobId`, and `lfs`
  {`size`, `sha256`, `pointerSize`} for the .onnx files, which the real repository stores in LFS).
- `HEAD /{repo}/resolve/{rev}/{path}` (`get_hf_file_metadata`): `X-Repo-Commit`, `ETag` (git blob
  sha1 for regular files), `X-Linked-Etag` / `X-Linked-Size` (sha256 and size for LFS files),
  `Content-Length`; 404 with `X-Error-Code: EntryNotFound` / `RepoNotFound` / `RevisionNotFound`.
- `GET /{repo}/resolve/{rev}/{path}` (`http_get`), honouring `Range: bytes=N-` with 206.

Faults for tests: `drop_once` (paths whose first GET sends the headers and half the body, then
closes the connection), `corrupt` (paths whose body differs from the metadata), `fail_status`
(path -> HTTP status for every request). `requests` logs (method, path, Range header).
"""

from __future__ import annotations

import hashlib
import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit

REPO_ID = "BMekiker/mimi-onnx-streaming"
COMMIT = "0123456789abcdef0123456789abcdef01234567"
FIXTURES = Path(__file__).parent / "fixtures"
PUBLISHED = {"tiny-8cb": "streaming-8cb", "tiny-16cb": "streaming-16cb",
             "tiny-8cb-fp16": "streaming-8cb-fp16", "tiny-16cb-fp16": "streaming-16cb-fp16"}


def git_blob_sha1(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def fixture_files(variants: tuple[str, ...] | None = None) -> dict[str, bytes]:
    """Repository path -> bytes for the fixture folders present, under their published names."""
    files = {}
    for tiny, published in PUBLISHED.items():
        if variants is not None and published not in variants:
            continue
        folder = FIXTURES / tiny
        if not (folder / "state_spec.txt").is_file():
            continue
        for f in sorted(folder.iterdir()):
            files[f"{published}/{f.name}"] = f.read_bytes()
    files["README.md"] = b"# fake mimi-onnx-streaming\n"
    return files


class LocalServer:
    """A threaded HTTP server on 127.0.0.1 (a free port); its handler reaches this object as
    `<owner_attr>`. Subclasses set `handler`, `owner_attr` and `thread_name`."""

    handler: type[BaseHTTPRequestHandler]
    owner_attr = "owner"
    thread_name = "localserver"
    _server: ThreadingHTTPServer | None = None

    @property
    def endpoint(self) -> str:
        assert self._server is not None
        host, port = self._server.socket.getsockname()[:2]
        return f"http://{host}:{port}"

    def start(self):
        handler = type("Handler", (self.handler,), {self.owner_attr: self})
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, name=self.thread_name, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


class FakeHub(LocalServer):
    owner_attr, thread_name = "fake", "fakehub"

    def __init__(self, files: dict[str, bytes] | None = None) -> None:
        self.files = fixture_files() if files is None else files
        self.drop_once: set[str] = set()
        self.corrupt: set[str] = set()
        self.fail_status: dict[str, int] = {}
        self.requests: list[tuple[str, str, str | None]] = []
        self._dropped: set[str] = set()

    @staticmethod
    def is_lfs(path: str) -> bool:
        return path.endswith(".onnx")

    def model_info(self) -> dict:
        siblings = []
        for path, data in self.files.items():
            s = {"rfilename": path, "size": len(data), "blobId": git_blob_sha1(data)}
            if self.is_lfs(path):
                s["lfs"] = {"size": len(data), "sha256": hashlib.sha256(data).hexdigest(), "pointerSize": 134}
            siblings.append(s)
        return {"id": REPO_ID, "modelId": REPO_ID, "sha": COMMIT, "private": False, "siblings": siblings}


class _Handler(BaseHTTPRequestHandler):
    fake: FakeHub
    protocol_version = "HTTP/1.1"

    def log_message(self, *args) -> None:  # quiet
        pass

    def _error(self, status: int, code: str | None = None) -> None:
        body = json.dumps({"error": code or "error"}).encode()
        self.send_response(status)
        if code:
            self.send_header("X-Error-Code", code)
        self.send_header("X-Repo-Commit", COMMIT)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def do_HEAD(self) -> None:
        self._handle()

    def do_GET(self) -> None:
        self._handle()

    def _handle(self) -> None:
        url = urlsplit(self.path)
        path = unquote(url.path)
        self.fake.requests.append((self.command, path, self.headers.get("Range")))
        api = f"/api/models/{REPO_ID}"
        if path == api or path.startswith(api + "/revision/"):
            rev = path[len(api + "/revision/"):] if path != api else "main"
            if rev not in ("main", COMMIT):
                return self._error(404, "RevisionNotFound")
            return self._json(self.fake.model_info())
        if path.startswith("/api/models/"):
            return self._error(404, "RepoNotFound")
        prefix = f"/{REPO_ID}/resolve/"
        if not path.startswith(prefix):
            return self._error(404, "RepoNotFound")
        rev, _, file_path = path[len(prefix):].partition("/")
        if rev not in ("main", COMMIT):
            return self._error(404, "RevisionNotFound")
        if file_path in self.fake.fail_status:
            return self._error(self.fake.fail_status[file_path])
        if file_path not in self.fake.files:
            return self._error(404, "EntryNotFound")
        self._file(file_path)

    def _json(self, obj: dict) -> None:
        body = json.dumps(obj).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _file(self, file_path: str) -> None:
        data = self.fake.files[file_path]
        lfs = FakeHub.is_lfs(file_path)
        self_headers = {"X-Repo-Commit": COMMIT, "Accept-Ranges": "bytes"}
        if lfs:
            self_headers["X-Linked-Etag"] = f'"{hashlib.sha256(data).hexdigest()}"'
            self_headers["X-Linked-Size"] = str(len(data))
            self_headers["ETag"] = f'"{hashlib.sha256(data).hexdigest()}"'
        else:
            self_headers["ETag"] = f'"{git_blob_sha1(data)}"'
        if self.command == "GET" and file_path in self.fake.corrupt:
            data = bytes([data[0] ^ 0xFF]) + data[1:]
        start = 0
        rng = self.headers.get("Range")
        if self.command == "GET" and rng and rng.startswith("bytes="):
            start = int(rng[len("bytes="):].split("-")[0] or 0)
        body = data[start:]
        self.send_response(206 if start else 200)
        for k, v in self_headers.items():
            self.send_header(k, v)
        if start:
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command == "HEAD":
            return
        if file_path in self.fake.drop_once and file_path not in self.fake._dropped:
            self.fake._dropped.add(file_path)
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            return
        self.wfile.write(body)


FakeHub.handler = _Handler


if __name__ == "__main__":  # manual use: python tests/fakehub.py, then HF_ENDPOINT=<printed url>
    import time

    with FakeHub() as hub:
        print(hub.endpoint, flush=True)
        while True:
            time.sleep(3600)

