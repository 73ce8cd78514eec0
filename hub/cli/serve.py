"""`taskhub serve`: the hub served by granian."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable

import click

from hub.cli.context import Context, pass_context


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
@click.option("--workers", default=2, show_default=True, type=int, help="worker processes")
@click.option("--threads", default=4, show_default=True, type=int,
              help="threads per worker: a resolve waiting on a registry holds a thread, not a worker")  # fmt: skip
@click.option("--access-log/--no-access-log", default=False, show_default=True, help="log every request")
@pass_context
def serve(ctx: Context, host: str, port: int, workers: int, threads: int, access_log: bool) -> None:
    """Serve the hub (web UI and APIs) with granian; each worker builds the hub from the environment's settings."""
    from hub.config import is_loopback_host
    from hub.wsgi.server import MULTIPROC_ENV, metrics_directory, remove_metrics_directory
    from hub.wsgi.server import serve as serve_wsgi

    given = os.environ.get(MULTIPROC_ENV)
    metrics = metrics_directory()  # before the workers fork: their metrics are summed at /metrics
    ctx.migrated_engine().dispose()
    os.environ["TASKHUB_LISTEN_HOST"] = host  # the workers' settings decide from it whether the API runs locally
    say = _messages(ctx)
    say(logging.INFO, f"taskhub serving on http://{host}:{port}/")
    if not is_loopback_host(host):
        say(
            logging.WARNING,
            f"warning: plain HTTP on {host}: API tokens and login cookies cross the network unencrypted. Put a "
            "TLS-terminating reverse proxy in front (README: TLS) and name it in TASKHUB_TRUSTED_PROXIES, or serve "
            "on 127.0.0.1 only.",
        )
    try:
        serve_wsgi(
            "hub.app:create_app", host=host, port=port, workers=workers, threads=threads, access_log=access_log,
            log_format=ctx.settings.log_format, grace=ctx.settings.shutdown_grace_seconds,
        )  # fmt: skip
    finally:
        if not given:
            remove_metrics_directory(metrics)
    sys.exit(0)


def _messages(ctx: Context) -> Callable[[int, str], None]:
    """How serve tells its operator things: lines on standard error, or JSON records (TASKHUB_LOG_FORMAT=json)."""
    if ctx.settings.log_format != "json":
        return lambda _level, message: click.echo(message, err=True)
    from hub.logs import configure_logging

    configure_logging("json", ctx.settings.log_level)
    log = logging.getLogger("taskhub.serve")
    return lambda level, message: log.log(level, message.removeprefix("warning: "))
