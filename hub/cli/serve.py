"""`taskhub serve`: the hub served by granian."""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import subprocess
import sys
import threading
import time
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
    A job worker runs beside it as a child process unless --no-worker is given, and so does the mover of the
    sinks' spool (`taskhub events ingest --follow`) when it has one (TASKHUB_TRIGGERS_SPOOL)."""
    from hub.config import is_loopback_host
    from hub.wsgi.server import MULTIPROC_ENV, metrics_directory, remove_metrics_directory
    from hub.wsgi.server import serve as serve_wsgi

    given = os.environ.get(MULTIPROC_ENV)
    metrics = metrics_directory()  # before the workers fork: their metrics are summed at /metrics
    ctx.migrated_engine().dispose()
    os.environ["TASKHUB_LISTEN_HOST"] = host  # the workers' settings decide from it whether the API runs locally
    spool = ctx.settings.serve_spool()
    os.environ["TASKHUB_TRIGGERS_SPOOL"] = str(spool or "off")  # "auto" resolved, for the workers and the mover
    say = _messages(ctx)
    beside = [*(["a job worker"] if job_worker else []), *([f"the spool's mover ({spool})"] if spool else [])]
    say(logging.INFO, f"taskhub serving on http://{host}:{port}/" + (f" with {' and '.join(beside)}" if beside else ""))
    if not is_loopback_host(host):
        say(
            logging.WARNING,
            f"warning: plain HTTP on {host}: API tokens and login cookies cross the network unencrypted. Put a "
            "TLS-terminating reverse proxy in front (README: TLS) and name it in TASKHUB_TRUSTED_PROXIES, or serve "
            "on 127.0.0.1 only.",
        )
    worker = Supervised(say, "the job worker", ["worker"]) if job_worker else None
    # Started before the web workers, so the spool's first events find it listening.
    mover = Supervised(say, "the spool's mover", ["events", "ingest", "--follow"]) if spool else None
    try:
        serve_wsgi(
            "hub.app:create_app", host=host, port=port, workers=workers, threads=threads, access_log=access_log,
            log_format=ctx.settings.log_format, grace=ctx.settings.shutdown_grace_seconds,
        )  # fmt: skip
    finally:
        for child in (worker, mover):  # the mover last: it records what the web workers spooled before they ended
            if child is not None:
                child.stop(ctx.settings.shutdown_grace_seconds)
        if not given:
            remove_metrics_directory(metrics)
    sys.exit(0)


# A worker that keeps dying (a database that refuses it, a broken release) is started again at most this often.
FIRST_RESTART_DELAY = 1.0
LAST_RESTART_DELAY = 60.0


class Supervised:
    """A `taskhub` command (the job worker, the spool's mover) as a child process of serve, with serve's
    environment (a process of its own, not a thread of serve: granian forks its workers, and a fork must not copy
    a worker's threads), started again when it dies, as a process manager would restart it: otherwise syncs,
    publishes, runs and events would wait, unseen, until serve restarts. The delay doubles while it keeps dying and
    is back to the first once it ran a minute. It gets SIGTERM when serve ends, also when serve is killed
    (PR_SET_PDEATHSIG)."""

    def __init__(self, say: Callable[[int, str], None], what: str, args: list[str]) -> None:
        self.say, self.what, self.args = say, what, args
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._process: subprocess.Popen[bytes] | None = None
        # The thread that starts a child must outlive it: PR_SET_PDEATHSIG fires when that thread ends.
        self._thread = threading.Thread(target=self._supervise, name=f"taskhub-{args[0]}", daemon=True)
        self._thread.start()

    def _supervise(self) -> None:
        delay = FIRST_RESTART_DELAY
        while True:
            with self._lock:
                if self._stopping.is_set():
                    return
                process = self._process = _start(self.args)
            started = time.monotonic()
            code = process.wait()
            if self._stopping.is_set():
                return
            if time.monotonic() - started >= LAST_RESTART_DELAY:
                delay = FIRST_RESTART_DELAY
            ended = f"was killed by {_signal_name(-code)}" if code < 0 else f"exited with status {code}"
            self.say(logging.ERROR, f"{self.what} (pid {process.pid}) {ended}; starting another in {delay:g} s")
            if self._stopping.wait(delay):
                return
            delay = min(delay * 2, LAST_RESTART_DELAY)

    def stop(self, grace: float) -> None:
        """Stops the child (a worker gives its jobs the grace period) and starts no other."""
        with self._lock:
            self._stopping.set()
            process = self._process
        if process is not None:
            _stop(process, grace)
        self._thread.join()


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def _start(args: list[str]) -> subprocess.Popen[bytes]:
    """In a session of its own: a Ctrl-C on serve's terminal reaches serve, which stops its children in order
    (the mover after the web workers), not the children at once."""
    return subprocess.Popen(
        [sys.executable, "-m", "hub.cli", *args], preexec_fn=_term_with_parent, start_new_session=True
    )


def _term_with_parent() -> None:
    pr_set_pdeathsig = 1  # linux/prctl.h
    ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)


def _stop(child: subprocess.Popen[bytes], grace: float) -> None:
    """SIGTERM: a worker gives its jobs the grace period, then hands them back (jobs.worker)."""
    from jobs.worker import CANCEL_SECONDS

    if child.poll() is None:
        child.send_signal(signal.SIGTERM)
    try:
        child.wait(grace + CANCEL_SECONDS + 5)
    except subprocess.TimeoutExpired:
        child.kill()
        child.wait()


def _messages(ctx: Context) -> Callable[[int, str], None]:
    """How serve tells its operator things: lines on standard error, or JSON records (TASKHUB_LOG_FORMAT=json)."""
    if ctx.settings.log_format != "json":
        return lambda _level, message: click.echo(message, err=True)
    from hub.logs import configure_logging

    configure_logging("json", ctx.settings.log_level)
    log = logging.getLogger("taskhub.serve")
    return lambda level, message: log.log(level, message.removeprefix("warning: "))
