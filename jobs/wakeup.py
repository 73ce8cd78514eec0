"""Waking an idle worker when a job is queued, instead of waiting for its next poll.

On PostgreSQL every enqueue sends NOTIFY in its own transaction, so it is delivered when the job is committed,
and each worker LISTENs on a connection of its own. On SQLite an enqueue made in the worker's own process (the
command line, tests) wakes it directly, and the workers of other processes on this host through a FIFO each, kept
in a directory beside the database file (`taskhub.db.wake/`): the enqueuer writes a byte to every one, and a FIFO
nobody reads any more (its worker died) is removed by the first enqueuer that finds it so. That is how a webhook
taken by `taskhub serve`'s web workers reaches its job worker at once, not at its next poll.
The poll interval stays the bound either way: a notification lost with a dropped connection delays a job by at
most that much. bench/jobs.py measures the wake-up against its floor.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import logging
import os
import secrets
import select
import threading
import weakref
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, text
from sqlalchemy.engine import Connection

from catalog.db import sqlite_file

CHANNEL = "taskhub_jobs"
log = logging.getLogger(__name__)
_listeners: weakref.WeakSet[Listener] = weakref.WeakSet()
_listeners_lock = threading.Lock()


def notify(conn: Connection, kind: str) -> None:
    """Within an enqueue's transaction: tell the listening workers once it commits (PostgreSQL only)."""
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_notify(:channel, :kind)"), {"channel": CHANNEL, "kind": kind})


def wake(engine: Engine) -> None:
    """After an enqueue commits: wake the waiting workers of this process, and on SQLite those of other processes
    (on PostgreSQL, NOTIFY has woken them)."""
    wake_local()
    directory = wake_directory(engine)
    if directory is None:
        return
    try:
        fifos = list(os.scandir(directory))
    except FileNotFoundError:  # no worker has listened on this database yet
        return
    for fifo in fifos:
        try:
            fd = os.open(fifo.path, os.O_WRONLY | os.O_NONBLOCK)
        except FileNotFoundError:  # removed meanwhile
            continue
        except OSError as exc:
            if exc.errno == errno.ENXIO:  # no reader: its worker died without removing it
                with contextlib.suppress(OSError):
                    os.unlink(fifo.path)
            continue
        try:
            os.write(fd, b"!")
        except BlockingIOError:  # full of wake-ups already
            pass
        finally:
            os.close(fd)


def wake_directory(engine: Engine) -> Path | None:
    """Where the workers of a SQLite database file listen for other processes' wake-ups; None for PostgreSQL and
    in-memory databases."""
    database = sqlite_file(engine.url)
    return None if database is None else _beside(database)


@functools.lru_cache(maxsize=64)
def _beside(database: str) -> Path:
    """The wake-up directory of a database file; resolved once per process (every enqueue asks)."""
    path = Path(database).resolve()
    return path.with_name(path.name + ".wake")


def wake_local() -> None:
    """After an enqueue commits: wake the waiting workers of this process."""
    with _listeners_lock:
        listeners = list(_listeners)
    for listener in listeners:
        listener.wake()


class Listener:
    """What an idle worker waits on: a notification, a wake-up from its own process, or the poll interval."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._read, self._write = os.pipe()
        self._closing = threading.Lock()
        os.set_blocking(self._write, False)
        self._pg: Any = None  # a psycopg.Connection listening on CHANNEL
        self._fifo, self._fifo_fd = self._open_fifo(wake_directory(engine)), -1
        if self._fifo is not None:
            # Read and write: never at end of file, whoever comes and goes on the other side.
            self._fifo_fd = os.open(self._fifo, os.O_RDWR | os.O_NONBLOCK)
        with _listeners_lock:
            _listeners.add(self)

    @staticmethod
    def _open_fifo(directory: Path | None) -> Path | None:
        """A FIFO of this listener's own in `directory`, for other processes' wake-ups; None without one."""
        if directory is None:
            return None
        try:
            directory.mkdir(mode=0o700, exist_ok=True)
            fifo = directory / f"{os.getpid()}-{secrets.token_hex(4)}"  # unique in containers sharing the directory
            os.mkfifo(fifo, 0o600)
        except OSError as exc:  # a read-only data directory, say: then other processes are found by polling
            log.warning("job wake-ups from other processes are off (%s); the poll interval bounds them", exc)
            return None
        return fifo

    def wake(self) -> None:
        """Ends the current or next wait at once (from any thread)."""
        with self._closing:
            if self._write < 0:
                return  # closed: nobody waits any more
            with contextlib.suppress(BlockingIOError):  # the pipe is full of wake-ups already
                os.write(self._write, b"!")

    def wait(self, timeout: float) -> None:
        """Returns once woken or after `timeout` seconds; raises the driver's error when the database is away."""
        waiting = [self._read] + ([self._fifo_fd] if self._fifo_fd >= 0 else [])
        if self.engine.dialect.name == "postgresql":
            if self._pg is None:
                raw = self.engine.raw_connection()
                self._pg = raw.driver_connection
                raw.detach()  # ours for good: it stays out of the pool while it listens
                self._pg.autocommit = True
                self._pg.execute(f"LISTEN {CHANNEL}")
            waiting.append(self._pg.fileno())
        ready, _, _ = select.select(waiting, [], [], max(timeout, 0))
        for fd in (self._read, self._fifo_fd):
            if fd >= 0 and fd in ready:
                with contextlib.suppress(BlockingIOError):
                    os.read(fd, 4096)
        if self._pg is not None and self._pg.fileno() in ready:
            try:
                for _ in self._pg.notifies(timeout=0):  # read what arrived, so the socket is quiet again
                    pass
            except Exception:
                self.close_connection()
                raise

    def close_connection(self) -> None:
        """Drops the listening connection (it is opened again by the next wait)."""
        if self._pg is not None:
            pg, self._pg = self._pg, None
            with contextlib.suppress(Exception):  # already broken
                pg.close()

    def close(self) -> None:
        self.close_connection()
        with _listeners_lock:
            _listeners.discard(self)
        with self._closing:
            os.close(self._read)
            os.close(self._write)
            self._read = self._write = -1
        if self._fifo is not None:
            with contextlib.suppress(OSError):
                os.unlink(self._fifo)
            os.close(self._fifo_fd)
            self._fifo, self._fifo_fd = None, -1
