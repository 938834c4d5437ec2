"""A Hugging Face hub on loopback, in the hub's URL shape, for ``HF_ENDPOINT``: no model hub
is reachable from this machine, and a real one cannot break a download halfway on demand.

What ``huggingface_hub`` asks of the hub, answered as the hub answers it:
- ``GET /api/models/{repo}/revision/{revision}``: the repo at that revision (its ``sha``);
- ``GET /api/models/{repo}/tree/{revision}``: its files, with size, git blob id and LFS sha256;
- ``HEAD``/``GET /{repo}/resolve/{revision}/{path}``: ``ETag`` (the LFS sha256),
  ``X-Repo-Commit``, ``Content-Length``, and ``Range`` honoured with 206;
- 404 with ``X-Error-Code: RepoNotFound`` / ``RevisionNotFound`` / ``EntryNotFound``.

Faults, each for the next GET of a file: ``stall`` (some bytes, then nothing until released
or the hub goes down: a pull to kill halfway), ``corrupt`` (a byte flipped), ``pad`` (the
file, then more bytes than the listing says, announced in ``Content-Length``: how many
went out before the client hung up is in ``sent``). Every request is recorded with its Range header.
"""

from __future__ import annotations

import hashlib
import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlparse

CHUNK = 1 << 20


@dataclass
class HubFile:
    data: Path
    size: int = 0
    sha256: str = ""
    blob_id: str = ""

    def __post_init__(self) -> None:
        sha256, sha1 = hashlib.sha256(), hashlib.sha1(f"blob {self.data.stat().st_size}\0".encode())
        with self.data.open("rb") as file:
            while chunk := file.read(CHUNK):
                sha256.update(chunk)
                sha1.update(chunk)
        self.size, self.sha256, self.blob_id = self.data.stat().st_size, sha256.hexdigest(), sha1.hexdigest()


@dataclass
class Fault:
    kind: str  # stall | corrupt | pad
    after: int  # pad: how many bytes beyond the file


@dataclass
class FakeHub:
    repos: dict[str, dict[str, Path]]  # repo -> path in the repo -> file served
    requests: list[tuple[str, str, str | None]] = field(default_factory=list)  # (method, path, Range)
    stalled: threading.Event = field(default_factory=threading.Event)
    _release: threading.Event = field(default_factory=threading.Event)
    _faults: dict[str, Fault] = field(default_factory=dict)
    sent: dict[str, int] = field(default_factory=dict)  # path -> bytes of its last padded GET sent

    def __post_init__(self) -> None:
        self.files = {repo: {path: HubFile(data) for path, data in files.items()} for repo, files in self.repos.items()}
        self.commits = {repo: hashlib.sha1(repo.encode()).hexdigest() for repo in self.repos}
        hub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:
                pass

            def do_HEAD(self) -> None:
                hub._answer(self, body=False)

            def do_GET(self) -> None:
                hub._answer(self, body=True)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.endpoint = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> "FakeHub":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.down()

    def down(self) -> None:
        """Unreachable from now on: the port is closed."""
        self._release.set()
        self._server.shutdown()
        self._server.server_close()

    # --- faults ---

    def stall(self, path: str, after: int) -> None:
        self.stalled.clear()
        self._release.clear()
        self._faults[path] = Fault("stall", after)

    def corrupt(self, path: str, at: int) -> None:
        self._faults[path] = Fault("corrupt", at)

    def pad(self, path: str, extra: int) -> None:
        self._faults[path] = Fault("pad", extra)

    def release(self) -> None:
        self._release.set()

    def gets(self, path: str) -> list[str | None]:
        """The Range headers of the file downloads of ``path`` so far."""
        return [ranged for method, url, ranged in self.requests if method == "GET" and url.endswith("/" + path)]

    # --- answers ---

    def _answer(self, handler: BaseHTTPRequestHandler, body: bool) -> None:
        url = unquote(urlparse(handler.path).path)
        self.requests.append((handler.command, url, handler.headers.get("Range")))
        parts = url.strip("/").split("/")
        if parts[:2] == ["api", "models"] and len(parts) >= 6:
            repo, kind, revision = "/".join(parts[2:4]), parts[4], parts[5]
            if self._found(handler, repo, revision):
                if kind == "revision":
                    siblings = [{"rfilename": path} for path in self.files[repo]]
                    self._json(handler, {"id": repo, "modelId": repo, "sha": self.commits[repo], "siblings": siblings, "private": False})
                else:
                    self._json(handler, [
                        {"type": "file", "path": path, "size": file.size, "oid": file.blob_id,
                         "lfs": {"oid": file.sha256, "size": file.size, "pointerSize": 134}}
                        for path, file in self.files[repo].items()
                    ])
            return
        if len(parts) >= 5 and parts[2] == "resolve":
            repo, revision, path = "/".join(parts[:2]), parts[3], "/".join(parts[4:])
            if self._found(handler, repo, revision):
                if path not in self.files[repo]:
                    self._error(handler, 404, "EntryNotFound")
                else:
                    self._file(handler, repo, path, body)
            return
        self._error(handler, 404, "RepoNotFound")

    def _found(self, handler, repo: str, revision: str) -> bool:
        if repo not in self.files:
            self._error(handler, 404, "RepoNotFound")
            return False
        if revision not in ("main", self.commits[repo]):
            self._error(handler, 404, "RevisionNotFound")
            return False
        return True

    def _json(self, handler, value) -> None:
        data = json.dumps(value).encode()
        handler.send_response(200)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(data)))
        handler.end_headers()
        handler.wfile.write(data)

    def _error(self, handler, status: int, code: str) -> None:
        data = json.dumps({"error": code}).encode()
        handler.send_response(status)
        handler.send_header("X-Error-Code", code)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(data)))
        handler.end_headers()
        handler.wfile.write(data)

    def _file(self, handler, repo: str, path: str, body: bool) -> None:
        file = self.files[repo][path]
        start = 0
        ranged = handler.headers.get("Range")
        if ranged and ranged.startswith("bytes=") and body:
            start = int(ranged[len("bytes="):].split("-")[0])
        fault = self._faults.pop(path, None) if body else None
        extra = fault.after if fault and fault.kind == "pad" else 0
        handler.send_response(206 if start else 200)
        handler.send_header("ETag", f'"{file.sha256}"')
        handler.send_header("X-Repo-Commit", self.commits[repo])
        handler.send_header("Accept-Ranges", "bytes")
        handler.send_header("Content-Length", str(file.size - start + extra))
        if start:
            handler.send_header("Content-Range", f"bytes {start}-{file.size - 1}/{file.size}")
        handler.end_headers()
        if not body:
            return
        if extra:
            self._padded(handler, file, start, extra, path)
            return
        with file.data.open("rb") as data:
            data.seek(start)
            sent = start
            while chunk := data.read(CHUNK):
                if fault and fault.kind == "stall" and sent + len(chunk) >= fault.after:
                    handler.wfile.write(chunk[: max(fault.after - sent, 0)])
                    handler.wfile.flush()
                    self.stalled.set()
                    self._release.wait()
                    handler.close_connection = True
                    handler.connection.shutdown(2)
                    return
                if fault and fault.kind == "corrupt" and sent <= fault.after < sent + len(chunk):
                    index = fault.after - sent
                    chunk = chunk[:index] + bytes([chunk[index] ^ 0xFF]) + chunk[index + 1:]
                handler.wfile.write(chunk)
                sent += len(chunk)

    def _padded(self, handler, file: HubFile, start: int, extra: int, path: str) -> None:
        self.sent[path] = 0
        try:
            with file.data.open("rb") as data:
                data.seek(start)
                while chunk := data.read(CHUNK):
                    handler.wfile.write(chunk)
                    self.sent[path] += len(chunk)
            padding = bytes(CHUNK)
            while extra > 0:
                handler.wfile.write(padding[:extra])
                self.sent[path] += min(extra, CHUNK)
                extra -= CHUNK
        except OSError:  # the client stopped reading and hung up
            handler.close_connection = True


def split_gguf(source: Path, folder: Path, max_tensors: int) -> list[Path]:
    """``source`` rewritten as a split GGUF (gguf-split's ``-0000N-of-0000M.gguf`` parts of at
    most ``max_tensors`` tensors each, as llama.cpp's own tool writes them) into ``folder``."""
    import gguf
    from gguf.scripts.gguf_new_metadata import copy_with_new_metadata

    reader = gguf.GGUFReader(source)
    writer = gguf.GGUFWriter(folder / source.name, reader.fields["general.architecture"].contents(), split_max_tensors=max_tensors)
    copy_with_new_metadata(reader, writer, {}, [])
    return sorted(folder.glob(source.stem + "-*-of-*.gguf"))
