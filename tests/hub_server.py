"""A small Hugging Face Hub stand-in bound to 127.0.0.1, for exercising the real huggingface_hub client.

Speaks what ``hf_hub_download``, ``snapshot_download`` and ``HfApi.upload_folder`` use:

- ``HEAD/GET /{repo}/resolve/{rev}/{file}`` with ``ETag`` (sha256 for ``*.safetensors`` as for Git LFS
  files, git blob sha1 otherwise), ``X-Repo-Commit`` (40 hex) and ``Content-Length``;
- ``GET /api/models/{repo}/revision/{rev}`` and ``GET /api/models/{repo}/tree/{rev}``;
- ``POST /api/repos/create``, ``/api/validate-yaml``, ``/api/models/{repo}/preupload/{rev}``,
  ``/api/models/{repo}/commit/{rev}`` (ndjson, inline base64 files);
- errors as 404 + ``X-Error-Code`` (``RepoNotFound``, ``RevisionNotFound``, ``EntryNotFound``).

Every request is recorded in :attr:`MockHub.requests` so tests can prove a load made none.
"""

from __future__ import annotations

import base64
import hashlib
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote, urlsplit


def git_blob_sha1(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def etag_of(filename: str, data: bytes) -> str:
    """What the real hub publishes: the LFS sha256 for weights files, the git blob sha1 for small text."""
    return hashlib.sha256(data).hexdigest() if filename.endswith(".safetensors") else git_blob_sha1(data)


class QuietHandler(BaseHTTPRequestHandler):
    """A request handler that keeps pytest's output clean (no access log)."""

    def log_message(self, *args) -> None:
        pass


class LocalServer:
    """An HTTP server on 127.0.0.1 (an ephemeral port) in a daemon thread: ``start``/``stop`` or ``with``."""

    def __init__(self, handler: type[BaseHTTPRequestHandler]) -> None:
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)

    @property
    def root(self) -> str:
        """``http://127.0.0.1:<port>``."""
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self):
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


class MockHub(LocalServer):
    """In-memory model repos served over HTTP on 127.0.0.1 (an ephemeral port)."""

    def __init__(self) -> None:
        # repo_id -> {"branches": {name: commit}, "commits": {commit: {filename: bytes}}}
        self.repos: dict[str, dict] = {}
        # (repo_id, filename) -> bytes served instead of the committed ones (ETag unchanged): a tampered mirror
        self.tampered: dict[tuple[str, str], bytes] = {}
        self.requests: list[tuple[str, str]] = []
        self._lock = threading.Lock()
        hub = self

        class Handler(QuietHandler):
            protocol_version = "HTTP/1.1"

            def do_HEAD(self) -> None:
                hub._handle(self, "HEAD")

            def do_GET(self) -> None:
                hub._handle(self, "GET")

            def do_POST(self) -> None:
                hub._handle(self, "POST")

        super().__init__(Handler)

    @property
    def url(self) -> str:
        return self.root

    def commit(self, repo_id: str, files: dict[str, bytes], branch: str = "main") -> str:
        """Add a commit holding ``files`` (replacing the branch's previous files) and return its id."""
        with self._lock:
            repo = self.repos.setdefault(repo_id, {"branches": {}, "commits": {}})
            base = dict(repo["commits"].get(repo["branches"].get(branch), {}))
            base.update(files)
            digest = hashlib.sha1(repr((repo_id, len(repo["commits"]), sorted(base.items()))).encode()).hexdigest()
            repo["commits"][digest] = base
            repo["branches"][branch] = digest
            return digest

    # -- request handling -------------------------------------------------------------------------

    def _send(self, h: BaseHTTPRequestHandler, status: int, body: bytes = b"", headers: dict | None = None,
              head: bool = False) -> None:
        h.send_response(status)
        for k, v in (headers or {}).items():
            h.send_header(k, v)
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        if not head:
            h.wfile.write(body)

    def _json(self, h: BaseHTTPRequestHandler, obj, status: int = 200) -> None:
        self._send(h, status, json.dumps(obj).encode(), {"Content-Type": "application/json"})

    def _error(self, h: BaseHTTPRequestHandler, code: str, message: str, head: bool, commit: str | None = None) -> None:
        headers = {"X-Error-Code": code, "X-Error-Message": message, "Content-Type": "application/json"}
        if commit:
            headers["X-Repo-Commit"] = commit
        self._send(h, 404, json.dumps({"error": message}).encode(), headers, head=head)

    def _resolve_rev(self, repo: dict, rev: str) -> str | None:
        if rev in repo["commits"]:
            return rev
        return repo["branches"].get(rev)

    def _handle(self, h: BaseHTTPRequestHandler, method: str) -> None:
        path = unquote(urlsplit(h.path).path)
        with self._lock:
            self.requests.append((method, path))
        body = h.rfile.read(int(h.headers.get("Content-Length") or 0)) if method == "POST" else b""
        head = method == "HEAD"
        parts = path.strip("/").split("/")
        if method == "POST":
            return self._post(h, parts, body)
        if parts[:2] == ["api", "models"] and len(parts) >= 6 and parts[4] in ("revision", "tree"):
            return self._api(h, "/".join(parts[2:4]), parts[4], "/".join(parts[5:]), head)
        if len(parts) >= 5 and parts[2] == "resolve":
            return self._resolve(h, "/".join(parts[:2]), parts[3], "/".join(parts[4:]), head)
        self._send(h, 404, b"not found", head=head)

    def _commit_files(self, h, repo_id: str, rev: str, head: bool) -> tuple[str, dict] | None:
        """(commit, its files) of ``repo_id`` at ``rev``; None after answering 404 when either is unknown."""
        repo = self.repos.get(repo_id)
        if repo is None:
            self._error(h, "RepoNotFound", f"Repository {repo_id} not found", head)
            return None
        commit = self._resolve_rev(repo, rev)
        if commit is None:
            self._error(h, "RevisionNotFound", f"Invalid rev id: {rev}", head)
            return None
        return commit, repo["commits"][commit]

    def _api(self, h, repo_id: str, kind: str, rev: str, head: bool) -> None:
        found = self._commit_files(h, repo_id, rev, head)
        if found is None:
            return None
        commit, files = found
        if kind == "revision":
            return self._json(h, {"id": repo_id, "sha": commit, "siblings": [{"rfilename": f} for f in sorted(files)]})
        tree = []
        for f, data in sorted(files.items()):
            entry = {"type": "file", "path": f, "size": len(data), "oid": git_blob_sha1(data)}
            if f.endswith(".safetensors"):
                entry["lfs"] = {"oid": hashlib.sha256(data).hexdigest(), "size": len(data), "pointerSize": 134}
            tree.append(entry)
        self._json(h, tree)

    def _resolve(self, h, repo_id: str, rev: str, filename: str, head: bool) -> None:
        found = self._commit_files(h, repo_id, rev, head)
        if found is None:
            return None
        commit, files = found
        if filename not in files:
            return self._error(h, "EntryNotFound", f"{filename} does not exist at {rev}", head, commit)
        data = files[filename]
        served = self.tampered.get((repo_id, filename), data)
        headers = {"ETag": f'"{etag_of(filename, data)}"', "X-Repo-Commit": commit,
                   "Content-Type": "application/octet-stream", "Accept-Ranges": "none"}
        self._send(h, 200, served, headers, head=head)

    def _post(self, h, parts: list[str], body: bytes) -> None:
        if parts == ["api", "repos", "create"]:
            req = json.loads(body)
            repo_id = f"{req['organization']}/{req['name']}" if req.get("organization") else req["name"]
            with self._lock:
                exists = repo_id in self.repos
                self.repos.setdefault(repo_id, {"branches": {}, "commits": {}})
            if exists:
                return self._json(h, {"error": "You already created this model repo"}, status=409)
            return self._json(h, {"url": f"{self.url}/{repo_id}", "name": repo_id})
        if parts == ["api", "validate-yaml"]:
            return self._json(h, {"errors": [], "warnings": []})
        if parts[:2] == ["api", "models"] and len(parts) >= 6 and parts[4] in ("preupload", "commit"):
            repo_id = "/".join(parts[2:4])
            if repo_id not in self.repos:
                return self._error(h, "RepoNotFound", f"Repository {repo_id} not found", False)
            if parts[4] == "preupload":
                files = json.loads(body)["files"]
                return self._json(h, {"files": [{"path": f["path"], "uploadMode": "regular", "shouldIgnore": False,
                                                 "oid": None} for f in files]})
            added = {}
            for line in body.splitlines():
                item = json.loads(line)
                if item["key"] == "file":
                    added[item["value"]["path"]] = base64.b64decode(item["value"]["content"])
            commit = self.commit(repo_id, added, branch="/".join(parts[5:]))
            return self._json(h, {"commitUrl": f"{self.url}/{repo_id}/commit/{commit}", "commitOid": commit,
                                  "success": True, "pullRequestUrl": None})
        self._send(h, 404, b"not found")


class ReleaseServer(LocalServer):
    """Plain files over HTTP on 127.0.0.1, as a GitHub release serves them: ``GET /<path>`` -> bytes.

    :attr:`files` maps a path (``/download/weights/x.pt``) to what is served (change it to tamper);
    every request is recorded in :attr:`requests`, so a test can prove a load made none.
    """

    def __init__(self, files: dict[str, bytes] | None = None) -> None:
        self.files: dict[str, bytes] = dict(files or {})
        self.requests: list[tuple[str, str]] = []
        server = self

        class Handler(QuietHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                path = unquote(urlsplit(self.path).path)
                server.requests.append(("GET", path))
                body = server.files.get(path)
                self.send_response(200 if body is not None else 404)
                body = body if body is not None else b"Not Found"
                self.send_header("Content-Type", "application/octet-stream")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        super().__init__(Handler)

    def url(self, path: str) -> str:
        return self.root + path
