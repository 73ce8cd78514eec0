"""Hubs for the `taskhub hub` tests: taskhub itself serving the test catalog on a free port (both APIs), and a
scripted stub for answers a real hub does not give (404 pages, garbage, Artifact Hub shapes from the spec)."""

from __future__ import annotations

import json
import shutil
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from hub.app import create_app
from hub.config import Settings
from tests.conftest import served

__all__ = ["StubHub", "served_hub", "stub_hub"]


@pytest.fixture(scope="module")
def served_hub(sqlite_templates: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """taskhub serving the indexed test catalog ("tekton") over real HTTP; yields its base URL.

    One hub per test module: the tests only read from it.
    """
    base = tmp_path_factory.mktemp("served-hub")
    shutil.copy(sqlite_templates["indexed"], base / "taskhub.db")
    settings = Settings(data_dir=base, database_url=f"sqlite:///{base / 'taskhub.db'}", generation_check_interval=0)
    with served(create_app(settings)) as url:
        yield url


@dataclass
class StubHub:
    """Answers GET paths (query strings ignored) with scripted (status, content type, body); 404 otherwise."""

    url: str = ""
    routes: dict[str, tuple[int, str, bytes]] = field(default_factory=dict)
    requests: list[str] = field(default_factory=list)

    def json(self, path: str, body: object, status: int = 200) -> None:
        """Answer `path` with `body` as JSON."""
        self.routes[path] = (status, "application/json", json.dumps(body).encode())

    def raw(self, path: str, body: bytes, status: int = 200, content_type: str = "text/html") -> None:
        """Answer `path` with raw bytes."""
        self.routes[path] = (status, content_type, body)


@pytest.fixture
def stub_hub() -> Iterator[StubHub]:
    """A scripted HTTP server on a free loopback port."""
    stub = StubHub()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            stub.requests.append(self.path)
            status, content_type, body = stub.routes.get(
                self.path.split("?")[0], (404, "text/plain", b"404 page not found")
            )
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    stub.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield stub
    finally:
        server.shutdown()
        thread.join(timeout=10)
        server.server_close()
