"""`taskhub serve`: the hub served by granian."""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import subprocess
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
@click.option("--worker/--no-worker", "job_worker", default=True, show_default=True,
              help="also run one job worker (`taskhub worker`) for syncs, publishes, runs and events; --no-worker "
              "where workers run separately")  # fmt: skip
@pass_context
def serve(ctx: Context, host: str, port: int, workers: int, threads: int, access_log: bool, job_worker: bool) -> None:
    """Serve the hub (web UI and APIs) with granian; each worker builds the hub from the environment's settings.
    A job worker runs beside it as a child process unless --no-worker is given."""
    from hub.config import is_loopback_host
    from hub.wsgi.server import MULTIPROC_ENV, metrics_directory, remove_metrics_directory
    from hub.wsgi.server import serve as serve_wsgi

    given = os.environ.get(MULTIPROC_ENV)
    metrics = metrics_directory()  # before the workers fork: their metrics are summed at /metrics
    ctx.migrated_engine().dispose()
    os.environ["TASKHUB_LISTEN_HOST"] = host  # the workers' settings decide from it whether the API runs locally
    say = _messages(ctx)
    say(logging.INFO, f"taskhub serving on http://{host}:{port}/" + (" with a job worker" if job_worker else ""))
    if not is_loopback_host(host):
        say(
            logging.WARNING,
            f"warning: plain HTTP on {host}: API tokens and login cookies cross the network unencrypted. Put a "
            "TLS-terminating reverse proxy in front (README: TLS) and name it in TASKHUB_TRUSTED_PROXIES, or serve "
            "on 127.0.0.1 only.",
        )
    worker = _start_worker() if job_worker else None
    try:
        serve_wsgi(
            "hub.app:create_app", host=host, port=port, workers=workers, threads=threads, access_log=access_log,
            log_format=ctx.settings.log_format, grace=ctx.settings.shutdown_grace_seconds,
        )  # fmt: skip
    finally:
        if worker is not None:
            _stop_worker(worker, ctx.settings.shutdown_grace_seconds)
        if not given:
            remove_metrics_directory(metrics)
    sys.exit(0)


def _start_worker() -> subprocess.Popen[bytes]:
    """`taskhub worker` as a child process with serve's environment (a process of its own, not a thread of serve:
    granian forks its workers, and a fork must not copy a worker's threads). It gets SIGTERM when serve ends, also
    when serve is killed (PR_SET_PDEATHSIG)."""
    return subprocess.Popen([sys.executable, "-m", "hub.cli", "worker"], preexec_fn=_term_with_parent)


def _term_with_parent() -> None:
    pr_set_pdeathsig = 1  # linux/prctl.h
    ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)


def _stop_worker(worker: subprocess.Popen[bytes], grace: float) -> None:
    """SIGTERM: the worker gives its jobs the grace period, then hands them back (jobs.worker)."""
    from jobs.worker import CANCEL_SECONDS

    if worker.poll() is None:
        worker.send_signal(signal.SIGTERM)
    try:
        worker.wait(grace + CANCEL_SECONDS + 5)
    except subprocess.TimeoutExpired:
        worker.kill()
        worker.wait()


def _messages(ctx: Context) -> Callable[[int, str], None]:
    """How serve tells its operator things: lines on standard error, or JSON records (TASKHUB_LOG_FORMAT=json)."""
    if ctx.settings.log_format != "json":
        return lambda _level, message: click.echo(message, err=True)
    from hub.logs import configure_logging

    configure_logging("json", ctx.settings.log_level)
    log = logging.getLogger("taskhub.serve")
    return lambda level, message: log.log(level, message.removeprefix("warning: "))
