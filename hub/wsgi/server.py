"""Serving a WSGI app as `taskhub serve` does: granian, worker processes with threads in each.

granian's HTTP handling is native code, cheaper per request than gunicorn's threaded workers (bench/resolve.py
shows a cached resolve's latency and throughput, and serves a bare Flask view with it as the floor of a cold
resolve). Each worker imports the app itself, so the app is named by an import path and built by a factory that
reads its settings from the environment.
"""

from __future__ import annotations

import functools
import ipaddress
import logging
import os
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from werkzeug.middleware.proxy_fix import ProxyFix

Environ = dict[str, Any]
StartResponse = Callable[..., Any]
WSGIApp = Callable[[Environ, StartResponse], Iterable[bytes]]
# The URL rule Flask matched, which the hub's request (hub/wsgi/response_cache.py, HubRequest) leaves in the environ
# for the metrics layer outside Flask (hub/metrics.py): on a large catalog most paths are new to that layer's
# memory, and matching one again costs 20 us.
ROUTE_KEY = "taskhub.route"
# Where prometheus_client's multiprocess mode keeps each process's samples (hub/metrics.py sums them).
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
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
    log_format: str = "text",
    grace: float = 30.0,
) -> None:
    """Serve the app `factory` ("module:function") builds until SIGINT or SIGTERM; each worker runs `threads`
    requests at once (a resolve waiting on a registry holds a thread, not a worker). On SIGTERM the listening
    socket closes and requests in flight get `grace` seconds to end."""
    from granian import Granian
    from granian.constants import Interfaces

    from hub.logs import granian_formatters

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
        log_dictconfig={**LOGGING, **granian_formatters(log_format)},
        workers_kill_timeout=max(int(grace), 1),  # a stop waits this long for requests still going
        working_dir=working_dir,
        respawn_failed_workers=True,
    ).serve()


def behind_proxies(app: WSGIApp, trusted: str) -> WSGIApp:
    """The client's address and scheme taken from `X-Forwarded-For` and `X-Forwarded-Proto` (werkzeug's ProxyFix,
    one hop) when the request comes from a trusted proxy (`trusted`: addresses or networks, comma-separated, e.g.
    TASKHUB_TRUSTED_PROXIES); from anyone else those headers are the client's own claim and are ignored. Behind a
    TLS proxy the hub's links then say https, its login cookie is Secure, and rate limits key on each client."""
    networks = [ipaddress.ip_network(n.strip(), strict=False) for n in trusted.split(",") if n.strip()]
    if not networks:
        return app
    fixed = ProxyFix(app, x_for=1, x_proto=1)

    @functools.lru_cache(maxsize=4096)  # a few proxies and clients make most requests: parse each address once
    def trusted_address(address: str) -> bool:
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(ip in network for network in networks)

    def route(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        forwarded = "HTTP_X_FORWARDED_FOR" in environ or "HTTP_X_FORWARDED_PROTO" in environ
        if forwarded and trusted_address(environ.get("REMOTE_ADDR", "")):
            return fixed(environ, start_response)
        return app(environ, start_response)

    return route


def metrics_directory() -> Path:
    """Set up prometheus_client's multiprocess mode for a server about to start its processes: the directory
    PROMETHEUS_MULTIPROC_DIR names, emptied (as the client requires between runs), or a new temporary one; returns
    it. It must run before prometheus_client is first imported: a process that imported it earlier keeps its
    samples to itself, and so do its forks."""
    if "prometheus_client" in sys.modules:
        raise RuntimeError("prometheus_client was imported before its multiprocess mode was set up")
    given = os.environ.get(MULTIPROC_ENV)
    if given:
        directory = Path(given)
        directory.mkdir(parents=True, exist_ok=True)
        for stale in directory.glob("*.db"):
            stale.unlink()
    else:
        directory = Path(tempfile.mkdtemp(prefix="taskhub-metrics-"))
        os.environ[MULTIPROC_ENV] = str(directory)
    return directory


def remove_metrics_directory(directory: Path) -> None:
    """Remove a directory metrics_directory made."""
    shutil.rmtree(directory, ignore_errors=True)
