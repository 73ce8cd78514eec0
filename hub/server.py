"""Serving a WSGI app as `taskhub serve` does: granian, worker processes with threads in each.

granian's HTTP handling is native code: a request costs a worker about a third of what gunicorn's threaded
workers spend on it (bench/resolve.py serves a bare Flask view with it as the floor of a cold resolve). Each
worker imports the app itself, so the app is named by an import path and built by a factory that reads its
settings from the environment.
"""

from __future__ import annotations

from pathlib import Path


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
        working_dir=working_dir,
        respawn_failed_workers=True,
    ).serve()
