"""The peers of bench/registry.py: docker-registry with its access log counted, and plain http.client clients.

Each client talks over one keep-alive connection and does only what the taskhub operation it is compared with
must do over the wire, without checks: no digest verification, no retries, no limits.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import re
import secrets
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from api import fetch, free_port, stop, temp_dir, wait_until_up

from catalog.bundles import DOCKER_MANIFEST
from catalog.registry import MANIFEST_MEDIA_TYPES

REGISTRY_BIN = Path("/usr/bin/docker-registry")
ACCEPT = ", ".join(MANIFEST_MEDIA_TYPES)


# -- the registry and its access log -------------------------------------------------------------------------


_LOGGED = re.compile(r'"([A-Z]+) (\S+) HTTP/[\d.]+" (\d{3})')


@dataclass
class RegistryServer:
    host: str  # 127.0.0.1:<port>
    access_log: Path
    counted: int = 0  # bytes of the access log already counted
    marks: int = 0

    def requests_since_last(self) -> Counter[str]:
        """The requests the registry served since the last call, by method and kind ("GET blob": 210)."""
        self.marks += 1
        mark = f"/v2/?bench-mark={self.marks}"
        fetch(f"http://{self.host}{mark}")  # every earlier request was answered, so is logged before this one
        deadline = time.monotonic() + 10
        while True:
            with self.access_log.open("rb") as file:
                file.seek(self.counted)
                new = file.read().decode(errors="replace")
            if mark in new:
                break
            if time.monotonic() > deadline:
                sys.exit(f"the registry's access log ({self.access_log}) does not show {mark}")
            time.sleep(0.01)
        new = new[: new.index("\n", new.index(mark)) + 1]
        self.counted += len(new.encode())
        counts: Counter[str] = Counter()
        for match in _LOGGED.finditer(new):
            if "bench-mark=" not in match[2]:
                counts[f"{match[1]} {_kind(match[2])}"] += 1
        return counts


def _kind(path: str) -> str:
    path = path.split("?", 1)[0]
    for part, kind in (("/blobs/uploads/", "upload"), ("/blobs/", "blob"), ("/manifests/", "manifest")):
        if part in path:
            return kind
    return "tags" if path.endswith("/tags/list") else "catalog" if path == "/v2/_catalog" else path


def describe(counts: Counter[str]) -> str:
    return ", ".join(f"{kind} {n}" for kind, n in sorted(counts.items())) or "no requests"


def start_registry(stack: contextlib.ExitStack, name: str) -> RegistryServer:
    """docker-registry on a free loopback port with its own storage; its stdout is the access log."""
    if not REGISTRY_BIN.exists():
        sys.exit(f"{REGISTRY_BIN} not found: apt-get install docker-registry")
    tmp = temp_dir(stack, f"taskhub-bench-{name}-")
    host = f"127.0.0.1:{free_port()}"
    config = {
        "version": 0.1,
        "log": {"level": "error", "accesslog": {"disabled": False}},
        "storage": {"filesystem": {"rootdirectory": str(tmp / "data")}},
        "http": {"addr": host},
        "health": {"storagedriver": {"enabled": False}},
    }
    (tmp / "config.yml").write_text(json.dumps(config))  # JSON is YAML
    server = RegistryServer(host, tmp / "access.log")
    env = {**os.environ, "REGISTRY_HTTP_SECRET": secrets.token_hex(16)}
    with server.access_log.open("wb") as out, (tmp / "registry.log").open("wb") as err:
        # A session of its own: Ctrl-C reaches only this script, which then stops the registry.
        cmd = [str(REGISTRY_BIN), "serve", str(tmp / "config.yml")]
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, env=env, start_new_session=True)
    stack.callback(stop, proc, signal.SIGKILL)  # a graceful stop drains for seconds; the storage is thrown away
    wait_until_up(proc, f"http://{host}/v2/", tmp / "registry.log")
    server.requests_since_last()
    return server


# -- the peers: plain http.client over one keep-alive connection ---------------------------------------------


def _exchange(
    conn: http.client.HTTPConnection, method: str, path: str, expect: int, body: bytes | None = None, **headers: str
) -> http.client.HTTPResponse:
    conn.request(method, path, body, {name.replace("_", "-"): value for name, value in headers.items()})
    response = conn.getresponse()
    response.read()
    if response.status != expect:
        sys.exit(f"{method} {path}: HTTP {response.status}, expected {expect}")
    return response


def _get(conn: http.client.HTTPConnection, path: str, **headers: str) -> tuple[bytes, http.client.HTTPResponse]:
    conn.request("GET", path, headers=headers)
    response = conn.getresponse()
    body = response.read()
    if response.status != 200:
        sys.exit(f"GET {path}: HTTP {response.status}")
    return body, response


def connect(host: str) -> http.client.HTTPConnection:
    name, port = host.rsplit(":", 1)
    return http.client.HTTPConnection(name, int(port), timeout=30)


def _repositories(conn: http.client.HTTPConnection, prefix: str) -> list[str]:
    """The repositories under the prefix: every /v2/_catalog page."""
    repositories: list[str] = []
    path = "/v2/_catalog"
    while path:
        body, response = _get(conn, path)
        repositories += json.loads(body)["repositories"]
        next_page = re.search(r'<([^>]+)>;\s*rel="next"', response.getheader("Link") or "")
        path = next_page[1] if next_page else ""
    return [repo for repo in repositories if repo.startswith(f"{prefix}/")]


def _tagged(conn: http.client.HTTPConnection, prefix: str) -> Iterator[tuple[str, str]]:
    """(repository, tag) under the prefix: the repositories, then each one's tags/list."""
    for repo in _repositories(conn, prefix):
        for tag in json.loads(_get(conn, f"/v2/{repo}/tags/list")[0])["tags"]:
            yield repo, tag


def raw_fetch(host: str, prefix: str) -> None:
    """Download what a cold registry sync needs: the listings, each manifest and each layer blob."""
    conn = connect(host)
    try:
        for repo, tag in _tagged(conn, prefix):
            manifest = json.loads(_get(conn, f"/v2/{repo}/manifests/{tag}", Accept=ACCEPT)[0])
            for layer in manifest["layers"]:
                _get(conn, f"/v2/{repo}/blobs/{layer['digest']}")
    finally:
        conn.close()


def raw_check(host: str, prefix: str, *, heads: bool = True) -> None:
    """The least an unchanged sync must ask: the listings, and a HEAD of each tag's manifest when tags may move."""
    conn = connect(host)
    try:
        for repo, tag in _tagged(conn, prefix):
            if heads:
                _exchange(conn, "HEAD", f"/v2/{repo}/manifests/{tag}", 200, Accept=ACCEPT)
    finally:
        conn.close()


def raw_list_parallel(host: str, prefix: str, connections: int) -> int:
    """The listings an unchanged sync needs, over `connections` keep-alive connections at once: the repositories,
    then each one's tags (a registry answers small requests faster in parallel: this is its own limit, not a
    client's). The number of tags listed."""
    conn = connect(host)
    try:
        repositories = _repositories(conn, prefix)
    finally:
        conn.close()
    local, opened = threading.local(), []

    def tags(repo: str) -> int:
        if not hasattr(local, "conn"):
            local.conn = connect(host)  # one per thread
            opened.append(local.conn)
        return len(json.loads(_get(local.conn, f"/v2/{repo}/tags/list")[0])["tags"])

    try:
        with ThreadPoolExecutor(connections) as pool:
            return sum(pool.map(tags, repositories))
    finally:
        for each in opened:
            each.close()


@dataclass
class RawBundle:
    repository: str  # under the prefix: task/<name>
    tag: str
    manifest: bytes
    blobs: dict[str, bytes]


def raw_upload(host: str, prefix: str, bundles: list[RawBundle]) -> None:
    """Upload every blob (POST, then PUT with the digest) and every manifest (PUT by tag) of the bundles."""
    conn = connect(host)
    try:
        for bundle in bundles:
            repo = f"/v2/{prefix}/{bundle.repository}"
            for digest, data in bundle.blobs.items():
                location = urlsplit(_exchange(conn, "POST", f"{repo}/blobs/uploads/", 202).getheader("Location", ""))
                query = "&".join(filter(None, [location.query, f"digest={digest}"]))
                put = f"{location.path}?{query}"
                _exchange(conn, "PUT", put, 201, data, Content_Type="application/octet-stream")
            _exchange(conn, "PUT", f"{repo}/manifests/{bundle.tag}", 201, bundle.manifest, Content_Type=DOCKER_MANIFEST)
    finally:
        conn.close()
