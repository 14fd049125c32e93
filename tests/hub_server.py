"""A local Hugging Face Hub on 127.0.0.1 for tests: the HTTP endpoints huggingface_hub and datasets call.

Repos live in memory as a list of commits, each a full snapshot {path: bytes}. Files the client uploads as LFS
go through the LFS batch endpoint and a PUT to this server. Point the clients at it with HF_ENDPOINT and
HF_HUB_DISABLE_XET=1 (both read at import). Set `fail_next_commit` to answer the next commit with a 500.
"""

from __future__ import annotations

import base64
import hashlib
import json
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

import yaml
from aiohttp import web

from .aio_server import BackgroundServer


def git_blob_sha(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


@dataclass
class Repo:
    repo_type: str
    private: bool
    commits: list[tuple[str, dict[str, bytes]]] = field(default_factory=list)  # (sha, snapshot)
    lfs_paths: set[str] = field(default_factory=set)

    def snapshot(self, revision: str) -> tuple[str, dict[str, bytes]] | None:
        if revision in ("main", "refs/heads/main") and self.commits:
            return self.commits[-1]
        return next((c for c in self.commits if c[0] == revision), None)


@dataclass
class LocalHub(BackgroundServer):
    token: str | None = None  # when set, writes need "Authorization: Bearer <token>"
    forbidden_token: str | None = None  # a valid token without write access: 403
    repos: dict[tuple[str, str], Repo] = field(default_factory=dict)
    blobs: dict[str, bytes] = field(default_factory=dict)  # LFS storage by sha256
    fail_next_commit: bool = False
    requests: list[tuple[str, str, int]] = field(default_factory=list)

    def make_app(self) -> web.Application:
        app = web.Application(client_max_size=1024**3, middlewares=[self._log])
        r = app.router
        r.add_post("/api/repos/create", self.create_repo)
        r.add_post("/api/validate-yaml", self.validate_yaml)
        r.add_get("/api/whoami-v2", self.whoami)
        prefix = "/api/{kind:datasets|models|spaces}/{ns}/{name}"
        r.add_get(prefix, self.repo_info)
        r.add_get(prefix + "/revision/{rev}", self.repo_info)
        r.add_post(prefix + "/preupload/{rev}", self.preupload)
        r.add_post(prefix + "/commit/{rev}", self.commit)
        r.add_get(prefix + "/tree/{rev}", self.tree)
        r.add_get(prefix + "/tree/{rev}/{path:.*}", self.tree)
        r.add_post(prefix + "/paths-info/{rev}", self.paths_info)
        r.add_post("/{kind:datasets|spaces}/{ns}/{name}.git/info/lfs/objects/batch", self.lfs_batch)
        r.add_post("/{ns}/{name}.git/info/lfs/objects/batch", self.lfs_batch)  # model repos have no prefix
        r.add_put("/lfs-upload/{oid}", self.lfs_upload)
        r.add_route("*", "/{kind:datasets|spaces}/{ns}/{name}/resolve/{rev}/{path:.*}", self.resolve)
        r.add_route("*", "/{tail:.*}", self.unknown)
        return app

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def head(self, repo_id: str, repo_type: str = "dataset") -> str | None:
        repo = self.repos.get((repo_type, repo_id))
        return repo.commits[-1][0] if repo and repo.commits else None

    def files(self, repo_id: str, repo_type: str = "dataset") -> dict[str, bytes]:
        return dict(self.repos[(repo_type, repo_id)].commits[-1][1])

    def put(self, repo_id: str, files: dict[str, bytes], repo_type: str = "dataset") -> None:
        """A commit holding exactly `files`, to a public repo made if missing: what a hostile repo would hold."""
        repo = self.repos.setdefault((repo_type, repo_id), Repo(repo_type, private=False))
        repo.commits.append((hashlib.sha1(f"{repo_id}{time.time_ns()}".encode()).hexdigest(), files))

    # ---- helpers ----

    @web.middleware
    async def _log(self, request: web.Request, handler):
        response = await handler(request)
        self.requests.append((request.method, request.path_qs, response.status))
        return response

    @staticmethod
    def _error(status: int, code: str, message: str) -> web.Response:
        return web.json_response(
            {"error": message}, status=status, headers={"X-Error-Code": code, "X-Error-Message": message}
        )

    def _auth(self, request: web.Request) -> web.Response | None:
        if self.token is None:
            return None
        given = request.headers.get("Authorization", "").removeprefix("Bearer ")
        if given == self.forbidden_token:
            return self._error(403, "Forbidden", "You don't have the rights to write to this repo")
        if given != self.token:
            return self._error(401, "Unauthorized", "Invalid credentials in Authorization header")
        return None

    def _repo(self, request: web.Request) -> tuple[str, Repo | None]:
        kind = request.match_info.get("kind", "models").removesuffix("s")
        repo_id = f"{request.match_info['ns']}/{request.match_info['name']}"
        return repo_id, self.repos.get((kind, repo_id))

    def _missing(self, repo_id: str) -> web.Response:
        return self._error(404, "RepoNotFound", f"Repository {repo_id} not found")

    def _writable(self, request: web.Request) -> tuple[str, Repo] | web.Response:
        """The repo a write goes to, or the Hub's 401, 403 or 404."""
        denied = self._auth(request)
        if denied:
            return denied
        repo_id, repo = self._repo(request)
        return self._missing(repo_id) if repo is None else (repo_id, repo)

    def _snapshot(self, request: web.Request) -> tuple[Repo, str, dict[str, bytes]] | web.Response:
        """The repo and the files at the request's revision, or the Hub's 404."""
        repo_id, repo = self._repo(request)
        if repo is None:
            return self._missing(repo_id)
        found = repo.snapshot(unquote(request.match_info.get("rev", "main")))
        if found is None:
            return self._error(404, "RevisionNotFound", "Invalid rev id")
        return repo, found[0], found[1]

    def _entry(self, path: str, data: bytes, repo: Repo) -> dict[str, Any]:
        entry: dict[str, Any] = {"type": "file", "oid": git_blob_sha(data), "size": len(data), "path": path}
        if path in repo.lfs_paths:
            entry["lfs"] = {"oid": hashlib.sha256(data).hexdigest(), "size": len(data), "pointerSize": 130}
        return entry

    @staticmethod
    def _dir_entry(path: str) -> dict[str, Any]:
        return {"type": "directory", "oid": hashlib.sha1(path.encode()).hexdigest(), "size": 0, "path": path}

    @staticmethod
    def _dirs(files: dict[str, bytes]) -> set[str]:
        dirs = set()
        for path in files:
            parts = path.split("/")[:-1]
            for i in range(1, len(parts) + 1):
                dirs.add("/".join(parts[:i]))
        return dirs

    # ---- repos ----

    async def unknown(self, request: web.Request) -> web.Response:
        return self._error(404, "NotFound", f"local hub: no route for {request.method} {request.path}")

    async def whoami(self, request: web.Request) -> web.Response:
        denied = self._auth(request)
        return denied or web.json_response({"type": "user", "name": "me", "auth": {"accessToken": {"role": "write"}}})

    async def create_repo(self, request: web.Request) -> web.Response:
        denied = self._auth(request)
        if denied:
            return denied
        body = await request.json()
        kind = body.get("type") or "model"
        repo_id = f"{body.get('organization') or 'user'}/{body['name']}"
        prefix = "" if kind == "model" else f"{kind}s/"
        if (kind, repo_id) in self.repos:
            return web.json_response(
                {"error": "You already created this repo", "url": f"{self.url}/{prefix}{repo_id}"}, status=409
            )
        repo = Repo(kind, bool(body.get("private")))
        initial = {".gitattributes": b"*.parquet filter=lfs diff=lfs merge=lfs -text\n"}
        repo.commits.append((hashlib.sha1(f"{repo_id}{time.time_ns()}".encode()).hexdigest(), initial))
        self.repos[(kind, repo_id)] = repo
        return web.json_response({"url": f"{self.url}/{prefix}{repo_id}", "name": repo_id, "id": repo_id})

    async def validate_yaml(self, request: web.Request) -> web.Response:
        """The Hub checks a card's YAML header before committing it; so does this server (syntax only)."""
        content = (await request.json()).get("content", "")
        if content.startswith("---"):
            try:
                yaml.safe_load(content.split("---")[1])
            except yaml.YAMLError as error:
                return web.json_response({"errors": [{"message": str(error)}]}, status=400)
        return web.json_response({"errors": [], "warnings": []})

    async def repo_info(self, request: web.Request) -> web.Response:
        found = self._snapshot(request)
        if isinstance(found, web.Response):
            return found
        repo, sha, files = found
        repo_id = f"{request.match_info['ns']}/{request.match_info['name']}"
        return web.json_response(
            {
                "_id": repo_id,
                "id": repo_id,
                "author": repo_id.split("/")[0],
                "sha": sha,
                "private": repo.private,
                "disabled": False,
                "gated": False,
                "downloads": 0,
                "likes": 0,
                "tags": [],
                "lastModified": "2026-01-01T00:00:00.000Z",
                "createdAt": "2026-01-01T00:00:00.000Z",
                "siblings": [{"rfilename": path} for path in sorted(files)],
            }
        )

    async def preupload(self, request: web.Request) -> web.Response:
        found = self._writable(request)
        if isinstance(found, web.Response):
            return found
        _, repo = found
        body = await request.json()
        files = [
            {
                "path": f["path"],
                "shouldIgnore": False,
                "uploadMode": "lfs"
                if f["path"].endswith((".parquet", ".png")) or f["size"] > 10 * 1024**2
                else "regular",
            }
            for f in body["files"]
        ]
        return web.json_response({"files": files, "commitOid": repo.commits[-1][0]})

    async def lfs_batch(self, request: web.Request) -> web.Response:
        denied = self._auth(request)
        if denied:
            return denied
        body = await request.json()
        objects = []
        for obj in body["objects"]:
            entry = {"oid": obj["oid"], "size": obj["size"], "authenticated": True}
            if obj["oid"] not in self.blobs:  # known content needs no upload
                entry["actions"] = {"upload": {"href": f"{self.url}/lfs-upload/{obj['oid']}", "header": {}}}
            objects.append(entry)
        return web.json_response(
            {"transfer": "basic", "objects": objects, "hash_algo": "sha256"},
            content_type="application/vnd.git-lfs+json",
        )

    async def lfs_upload(self, request: web.Request) -> web.Response:
        data = await request.read()
        oid = request.match_info["oid"]
        if hashlib.sha256(data).hexdigest() != oid:
            return self._error(400, "BadRequest", "sha256 mismatch")
        self.blobs[oid] = data
        return web.Response(status=200)

    async def commit(self, request: web.Request) -> web.Response:
        found = self._writable(request)
        if isinstance(found, web.Response):
            return found
        repo_id, repo = found
        if self.fail_next_commit:
            self.fail_next_commit = False
            return self._error(500, "InternalError", "scripted failure: nothing was committed")
        lines = [json.loads(line) for line in (await request.text()).splitlines() if line.strip()]
        head_sha, head_files = repo.commits[-1]
        header = next(line["value"] for line in lines if line["key"] == "header")
        if header.get("parentCommit") not in (None, head_sha):
            return self._error(412, "PreconditionFailed", "A commit has happened since. Please refresh and try again.")
        files = dict(head_files)
        lfs_paths = set(repo.lfs_paths)
        for line in lines:
            key, value = line["key"], line["value"]
            if key == "file":
                files[value["path"]] = base64.b64decode(value["content"])
                lfs_paths.discard(value["path"])
            elif key == "lfsFile":
                if value["oid"] not in self.blobs:
                    return self._error(400, "BadRequest", f"LFS object {value['oid']} was not uploaded")
                files[value["path"]] = self.blobs[value["oid"]]
                lfs_paths.add(value["path"])
            elif key == "deletedFile":
                files.pop(value["path"], None)
            elif key == "deletedFolder":
                folder = value["path"].rstrip("/") + "/"
                files = {p: d for p, d in files.items() if not p.startswith(folder)}
        if files == head_files:
            sha = head_sha  # nothing changed: no new commit, as the Hub does
        else:
            sha = hashlib.sha1(f"{head_sha}{header.get('summary')}{time.time_ns()}".encode()).hexdigest()
            repo.commits.append((sha, files))
            repo.lfs_paths = lfs_paths
        prefix = "" if repo.repo_type == "model" else f"{repo.repo_type}s/"
        return web.json_response(
            {
                "commitUrl": f"{self.url}/{prefix}{repo_id}/commit/{sha}",
                "commitOid": sha,
                "commitMessage": header.get("summary"),
                "pullRequestUrl": None,
                "success": True,
            }
        )

    # ---- reading ----

    async def tree(self, request: web.Request) -> web.Response:
        found = self._snapshot(request)
        if isinstance(found, web.Response):
            return found
        repo, _, files = found
        base = unquote(request.match_info.get("path", "")).strip("/")
        recursive = request.query.get("recursive", "false").lower() in ("1", "true")
        prefix = base + "/" if base else ""
        dirs = self._dirs(files)
        if base and base not in dirs:
            return self._error(404, "EntryNotFound", f"{base} does not exist on main")
        entries = []
        for d in sorted(dirs):
            if d.startswith(prefix) and (recursive or "/" not in d[len(prefix) :]):
                entries.append(self._dir_entry(d))
        for path, data in sorted(files.items()):
            if path.startswith(prefix) and (recursive or "/" not in path[len(prefix) :]):
                entries.append(self._entry(path, data, repo))
        return web.json_response(entries)

    async def paths_info(self, request: web.Request) -> web.Response:
        found = self._snapshot(request)
        if isinstance(found, web.Response):
            return found
        repo, _, files = found
        if request.content_type == "application/json":
            paths = (await request.json()).get("paths", [])
        else:
            form = await request.post()
            paths = form.getall("paths", [])
        dirs = self._dirs(files)
        out = []
        for path in paths:
            path = path.strip("/")
            if path in files:
                out.append(self._entry(path, files[path], repo))
            elif path in dirs:
                out.append(self._dir_entry(path))
        return web.json_response(out)

    async def resolve(self, request: web.Request) -> web.StreamResponse:
        found = self._snapshot(request)
        if isinstance(found, web.Response):
            return found
        repo, sha, files = found
        path = unquote(request.match_info["path"])
        if path not in files:
            return self._error(404, "EntryNotFound", f"{path} does not exist on {sha}")
        data = files[path]
        etag = hashlib.sha256(data).hexdigest() if path in repo.lfs_paths else git_blob_sha(data)
        headers = {"X-Repo-Commit": sha, "ETag": f'"{etag}"', "Accept-Ranges": "bytes"}
        if path in repo.lfs_paths:
            headers.update({"X-Linked-Etag": f'"{etag}"', "X-Linked-Size": str(len(data))})
        status, body = 200, data
        ranged = request.headers.get("Range", "")
        if ranged.startswith("bytes="):
            start_text, _, end_text = ranged[6:].partition("-")
            start = int(start_text) if start_text else max(0, len(data) - int(end_text))
            end = int(end_text) if end_text and start_text else len(data) - 1
            end = min(end, len(data) - 1)
            body = data[start : end + 1]
            status = 206
            headers["Content-Range"] = f"bytes {start}-{end}/{len(data)}"
        if request.method == "HEAD":
            headers["Content-Length"] = str(len(body))
            return web.Response(status=status, headers=headers)
        return web.Response(status=status, body=body, headers=headers)
