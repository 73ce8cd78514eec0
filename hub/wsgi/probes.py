"""/livez and /metrics of a process that serves no HTTP otherwise (`taskhub worker`, `taskhub resolver serve`), on
an address of its own (`--metrics-address HOST:PORT`), for a kubelet's liveness probe and a Prometheus scrape."""

from __future__ import annotations

import threading
from collections.abc import Iterable
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from sqlalchemy import Engine

from hub.wsgi.server import Environ, StartResponse


class _Quiet(WSGIRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # a probe every few seconds is not news
        pass


def parse_address(text: str) -> tuple[str, int]:
    """HOST:PORT (or [IPv6]:PORT) as given to --metrics-address; ValueError saying what is expected."""
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not host or not 0 <= int(port) < 65536:
        raise ValueError(f"{text!r}: expected HOST:PORT, such as 0.0.0.0:9000 or 127.0.0.1:9000")
    return host.strip("[]"), int(port)


def serve_probes(address: str, engine: Engine) -> WSGIServer:
    """Answer /livez and /metrics on address from a daemon thread; returns the server (server_port: its port)."""
    from prometheus_client import CONTENT_TYPE_LATEST

    from hub.metrics import exposition

    def app(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path == "/livez":
            body, status, kind = b'{"status": "ok"}', "200 OK", "application/json"
        elif path == "/metrics":
            body, status, kind = exposition(engine), "200 OK", CONTENT_TYPE_LATEST
        else:
            body, status, kind = b"not found: /livez and /metrics are served here\n", "404 Not Found", "text/plain"
        start_response(status, [("Content-Type", kind), ("Content-Length", str(len(body)))])
        return [body]

    host, port = parse_address(address)
    server = make_server(host, port, app, handler_class=_Quiet)
    threading.Thread(target=server.serve_forever, name="probes", daemon=True).start()
    return server
