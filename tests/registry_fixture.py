"""OCI registries for tests: Debian's real docker-registry (distribution 2.8) on a free loopback port, with and
without htpasswd auth, and a scripted fake HTTP server for what the real one cannot do here (Bearer token auth,
chosen 5xx answers, bodies without a length)."""

from __future__ import annotations

import http.client
import json
import os
import secrets
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

__all__ = [
    "FakeRegistry",
    "FakeRequest",
    "Listener",
    "RegistryProcess",
    "auth_registry",
    "fake_registry",
    "listener",
    "registry",
    "self_signed_certificate",
]

REGISTRY_BIN = Path(os.environ.get("TASKHUB_TEST_REGISTRY_BIN", "/usr/bin/docker-registry"))
USERNAME, PASSWORD = "alice", "s3cret"
START_TIMEOUT_SECONDS = 15


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _htpasswd_line(username: str, password: str) -> str:
    try:
        import bcrypt  # type: ignore[import-not-found]
    except ImportError:
        if shutil.which("htpasswd") is None:
            pytest.fail("neither the bcrypt package nor htpasswd (apt-get install apache2-utils) is installed")
        done = subprocess.run(["htpasswd", "-Bbn", username, password], capture_output=True, text=True, check=True)
        return done.stdout.strip()
    return f"{username}:{bcrypt.hashpw(password.encode(), bcrypt.gensalt(10)).decode()}"


class RegistryProcess:
    """A docker-registry process with its own storage under `base`; `stop()` and `start()` it for fault tests.

    `host` is "127.0.0.1:<port>" and `url` "http://127.0.0.1:<port>"; with auth, `username`/`password` log in.
    The port and the storage stay the same across restarts.
    """

    def __init__(self, base: Path, *, auth: bool = False) -> None:
        if not REGISTRY_BIN.exists():
            pytest.fail(f"{REGISTRY_BIN} not found: apt-get install docker-registry (or set TASKHUB_TEST_REGISTRY_BIN)")
        self.base, self.root, self.log = base, base / "data", base / "registry.log"
        base.mkdir(parents=True, exist_ok=True)
        self.port = _free_port()
        self.host = f"127.0.0.1:{self.port}"
        self.url = f"http://{self.host}"
        self.username: str | None = USERNAME if auth else None
        self.password: str | None = PASSWORD if auth else None
        config: dict[str, object] = {
            "version": 0.1,
            "log": {"level": "error", "accesslog": {"disabled": True}},
            "storage": {"filesystem": {"rootdirectory": str(self.root)}, "delete": {"enabled": True}},
            "http": {"addr": self.host, "headers": {"X-Content-Type-Options": ["nosniff"]}},
            "health": {"storagedriver": {"enabled": False}},
        }
        if auth:
            (base / "htpasswd").write_text(_htpasswd_line(USERNAME, PASSWORD) + "\n")
            config["auth"] = {"htpasswd": {"realm": "taskhub-test", "path": str(base / "htpasswd")}}
        self.config = base / "config.yml"
        self.config.write_text(json.dumps(config))  # JSON is YAML
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Start the registry and return once GET /v2/ answers."""
        env = {**os.environ, "REGISTRY_HTTP_SECRET": secrets.token_hex(16)}
        with self.log.open("ab") as log:
            self._process = subprocess.Popen(
                [str(REGISTRY_BIN), "serve", str(self.config)], stdout=log, stderr=subprocess.STDOUT, env=env
            )
        give_up = time.monotonic() + START_TIMEOUT_SECONDS
        while not self._answers():
            if self._process.poll() is not None or time.monotonic() > give_up:
                self.stop()
                pytest.fail(f"docker-registry did not start on {self.host}:\n{self.log.read_text()[-3000:]}")
            time.sleep(0.02)

    def stop(self) -> None:
        """Kill the registry (SIGKILL: a graceful stop drains for 1-2 s) and wait until it is gone."""
        if self._process is not None and self._process.poll() is None:
            self._process.send_signal(signal.SIGKILL)
            self._process.wait(timeout=10)
        self._process = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def blob_path(self, digest: str) -> Path:
        """Where the registry's filesystem storage keeps a blob's bytes (to tamper with them)."""
        algorithm, hexdigest = digest.split(":", 1)
        return self.root / "docker/registry/v2/blobs" / algorithm / hexdigest[:2] / hexdigest / "data"

    def _answers(self) -> bool:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=1)
        try:
            connection.request("GET", "/v2/")
            return connection.getresponse().status in (200, 401)
        except OSError:
            return False
        finally:
            connection.close()


def _serve(base: Path, *, auth: bool) -> Iterator[RegistryProcess]:
    process = RegistryProcess(base, auth=auth)
    process.start()
    try:
        yield process
    finally:
        process.stop()


@pytest.fixture
def registry(tmp_path: Path) -> Iterator[RegistryProcess]:
    """A fresh docker-registry without auth, running on a free 127.0.0.1 port; stopped afterwards."""
    yield from _serve(tmp_path / "registry", auth=False)


@pytest.fixture
def auth_registry(tmp_path: Path) -> Iterator[RegistryProcess]:
    """A fresh docker-registry with htpasswd (bcrypt) Basic auth for alice / s3cret."""
    yield from _serve(tmp_path / "auth-registry", auth=True)


@dataclass
class FakeRequest:
    method: str
    path: str  # with the query string
    headers: dict[str, str]  # names in lower case
    body: bytes


# status, headers, body: bytes are sent with a Content-Length, an iterable is streamed until the connection closes
FakeAnswer = tuple[int, dict[str, str], bytes | Iterable[bytes]]


class _QuietServer(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        if not isinstance(sys.exc_info()[1], ConnectionError):  # the client hung up on purpose (limits, timeouts)
            super().handle_error(request, client_address)


class FakeRegistry:
    """A scripted HTTP server on a free loopback port: every request goes to `handler`, and is kept in
    `requests`. For unit tests of protocol details the real registry cannot show here. With `tls` (certificate
    and key files), it serves https."""

    def __init__(self, handler: Callable[[FakeRequest], FakeAnswer], tls: tuple[Path, Path] | None = None) -> None:
        self.requests: list[FakeRequest] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                request = FakeRequest(
                    self.command, self.path, {k.lower(): v for k, v in self.headers.items()}, self.rfile.read(length)
                )
                fake.requests.append(request)
                status, headers, body = handler(request)
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                if isinstance(body, bytes):
                    self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if self.command != "HEAD":
                    for chunk in [body] if isinstance(body, bytes) else body:
                        self.wfile.write(chunk)

            do_GET = do_HEAD = do_POST = do_PUT = do_DELETE = _answer

        self._server = _QuietServer(("127.0.0.1", 0), Handler)
        if tls is not None:  # (certificate, key): serve https
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(*tls)
            self._server.socket = context.wrap_socket(self._server.socket, server_side=True)
        self.host = f"127.0.0.1:{self._server.server_address[1]}"
        self.url = f"{'https' if tls else 'http'}://{self.host}"
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def fake_registry() -> Iterator[Callable[..., FakeRegistry]]:
    """Make scripted fake registries (`fake_registry(handler, tls=None)`); all are shut down after the test."""
    made: list[FakeRegistry] = []

    def make(handler: Callable[[FakeRequest], FakeAnswer], tls: tuple[Path, Path] | None = None) -> FakeRegistry:
        made.append(FakeRegistry(handler, tls))
        return made[-1]

    yield make
    for fake in made:
        fake.close()


def self_signed_certificate(directory: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 signed by itself, and its key, made with openssl: (certificate, key)."""
    if shutil.which("openssl") is None:
        pytest.fail("openssl is not installed (apt-get install openssl)")
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return cert, key


SECRET = b"internal-service-secret-body"


class Listener:
    """A TCP listener on host that counts the connections it accepts (and answers each with SECRET): where a
    request must not go, it shows that none went."""

    def __init__(self, host: str) -> None:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            self.sock.bind((host, 0))
        except OSError as exc:
            self.sock.close()
            pytest.skip(f"cannot listen on {host}: {exc}")
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            conn.sendall(b"HTTP/1.1 500 Oops\r\nContent-Length: %d\r\n\r\n%s" % (len(SECRET), SECRET))
            conn.close()

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def listener() -> Iterator[Callable[[str], Listener]]:
    """Make Listeners (`listener(host)`); all are closed after the test."""
    made: list[Listener] = []

    def make(host: str) -> Listener:
        made.append(Listener(host))
        return made[-1]

    yield make
    for one in made:
        one.close()
