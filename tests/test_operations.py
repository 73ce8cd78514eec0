"""Operating `taskhub serve` as a deployment does: SIGTERM drains the requests in flight, and the logs can be one
JSON object per line for a log collector."""

from __future__ import annotations

import json
import signal
import socket
import threading
import time
import urllib.parse
import urllib.request

import pytest

from tests.test_cli import _status, serving
from tests.test_cli import run as run  # the fixture

SQLITE_ONLY = pytest.mark.parametrize("empty_database_url", ["sqlite"], indirect=True)

DRAIN_DEADLINE_SECONDS = 60


@SQLITE_ONLY  # the server and its processes are what is tested, not the database
def test_sigterm_lets_a_request_in_flight_finish_and_takes_no_new_ones(run, fixture_catalog):
    run("db", "upgrade")
    registry = socket.create_server(("127.0.0.1", 0))  # accepts, and answers only when the test says so
    registry.settimeout(30)
    host = f"127.0.0.1:{registry.getsockname()[1]}"
    run.env |= {"TASKHUB_RESOLVE_REGISTRIES": host, "TASKHUB_RESOLVE_TIMEOUT": "120",
                "TASKHUB_SHUTDOWN_GRACE_SECONDS": "60"}  # fmt: skip
    with registry, serving(run, "--workers", "1") as (base, server, _, _):
        answered: list[int] = []
        query = urllib.parse.urlencode({"resolver": "bundles", "bundle": f"{host}/task/x:1", "name": "x"})
        waiting = threading.Thread(target=lambda: answered.append(_status(f"{base}/v1/resolve?{query}")))
        waiting.start()
        asked, _ = registry.accept()  # the resolve is in flight, waiting on the registry
        with asked:
            server.send_signal(signal.SIGTERM)
            port = int(base.rsplit(":", 1)[1])
            deadline = time.monotonic() + DRAIN_DEADLINE_SECONDS
            while _accepts(port):  # the server stops taking connections while the resolve still waits
                assert time.monotonic() < deadline, "the server still accepts connections after SIGTERM"
            assert waiting.is_alive() and server.poll() is None
            asked.recv(65536)
            asked.sendall(b"HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}")
            waiting.join(DRAIN_DEADLINE_SECONDS)
        assert answered == [404]  # the request in flight got its answer: the registry has no such tag
        assert server.wait(DRAIN_DEADLINE_SECONDS) == 0


def _accepts(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=5):
            return True
    except OSError:
        return False


@SQLITE_ONLY  # the server and its processes are what is tested, not the database
def test_json_logs_give_one_object_per_line_for_server_access_and_taskhub_messages(run, fixture_catalog):
    run("db", "upgrade")
    run.env["TASKHUB_LOG_FORMAT"] = "json"
    with serving(run, "--workers", "1", "--access-log") as (base, _, output, errors):
        with urllib.request.urlopen(f"{base}/v1/catalogs?x=1", timeout=10) as response:
            assert response.status == 200
        deadline = time.monotonic() + DRAIN_DEADLINE_SECONDS
        while not any('"/v1/catalogs"' in line for line in output):  # written once the answer is out
            assert time.monotonic() < deadline, output
            time.sleep(0.05)
    access = [json.loads(line) for line in output]
    request = next(entry for entry in access if entry.get("path") == "/v1/catalogs")
    assert request | {"time": "", "duration_ms": 0, "client": ""} == {
        "time": "", "level": "info", "logger": "granian.access", "message": "request", "client": "",
        "method": "GET", "path": "/v1/catalogs", "query": "x=1", "protocol": "HTTP/1.1", "status": 200,
        "duration_ms": 0,
    }  # fmt: skip
    messages = [json.loads(line) for line in "".join(errors).splitlines() if line.strip()]
    assert any(entry["message"].startswith("taskhub serving on ") for entry in messages)
    assert {entry["level"] for entry in messages} <= {"debug", "info", "warning", "error", "critical"}
