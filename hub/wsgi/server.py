"""Serving a WSGI app as `taskhub serve` does: granian, worker processes with threads in each.

granian's HTTP handling is native code, cheaper per request than gunicorn's threaded workers (bench/resolve.py
shows a cached resolve's latency and throughput, and serves a bare Flask view with it as the floor of a cold
resolve). Each worker imports the app itself, so the app is named by an import path and built by a factory that
reads its settings from the environment.
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

Environ = dict[str, Any]
StartResponse = Callable[..., Any]
WSGIApp = Callable[[Environ, StartResponse], Iterable[bytes]]
# The access log: the request line with its query (if it has one), the status, the time taken and the client.
ACCESS_LOG = '%(addr)s [%(time)s] "%(method)s %(path)s?%(query_string)s %(protocol)s" %(status)d %(dt_ms).1fms'
ACCESS_LOG_NO_QUERY = '%(addr)s [%(time)s] "%(method)s %(path)s %(protocol)s" %(status)d %(dt_ms).1fms'


class QueryInAccessLog(logging.Filter):
    """Writes the request line without a lone "?" when the request had no query string (granian offers one
    format for both)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, dict) and not record.args.get("query_string"):
            record.msg = ACCESS_LOG_NO_QUERY
        return True


# Server messages go to standard error, the access log to standard output.
LOGGING = {
    "filters": {"query": {"()": QueryInAccessLog}},
    "handlers": {
        "console": {"formatter": "generic", "class": "logging.StreamHandler", "stream": "ext://sys.stderr"},
        "access": {
            "formatter": "access",
            "class": "logging.StreamHandler",
            "stream": "ext://sys.stdout",
            "filters": ["query"],
        },
    },
}


def serve(
    factory: str,
    *,
    host: str,
    port: int,
    workers: int,
    threads: int,
    access_log: bool = False,
    working_dir: Path | None = None,
) -> None:
    """Serve the app `factory` ("module:function") builds until SIGINT or SIGTERM; each worker runs `threads`
    requests at once (a resolve waiting on a registry holds a thread, not a worker)."""
    from granian import Granian
    from granian.constants import Interfaces

    Granian(
        factory,
        address=host,
        port=port,
        interface=Interfaces.WSGI,
        workers=workers,
        blocking_threads=threads,
        websockets=False,  # WSGI has none: saying so spares a log line at start
        factory=True,
        log_access=access_log,
        log_access_format=ACCESS_LOG,
        log_dictconfig=LOGGING,
        workers_kill_timeout=30,  # a stop waits this long for requests still going (a sync through the API)
        working_dir=working_dir,
        respawn_failed_workers=True,
    ).serve()


def forwarded_scheme(app: WSGIApp) -> WSGIApp:
    """`X-Forwarded-Proto` honoured when a proxy on this machine sends it: behind a TLS proxy the hub's links say
    https and its login cookie is Secure. From anywhere else the header is ignored."""

    def honour(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        scheme = environ.get("HTTP_X_FORWARDED_PROTO", "")
        if scheme in ("http", "https") and _loopback(environ.get("REMOTE_ADDR", "")):
            environ["wsgi.url_scheme"] = scheme
        return app(environ, start_response)

    return honour


def _loopback(address: str) -> bool:
    """Whether a client address (REMOTE_ADDR: an IP without port, IPv6 without brackets) is this machine's."""
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False
