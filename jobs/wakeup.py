"""Waking an idle worker when a job is queued, instead of waiting for its next poll.

On PostgreSQL every enqueue sends NOTIFY in its own transaction, so it is delivered when the job is committed,
and each worker LISTENs on a connection of its own. On SQLite an enqueue made in the worker's own process (the
command line, tests) wakes it directly; other processes are found by polling, which costs SQLite one indexed read.
The poll interval stays the bound either way: a notification lost with a dropped connection delays a job by at
most that much. bench/jobs.py measures the wake-up against its floor.
"""

from __future__ import annotations

import contextlib
import os
import select
import threading
import weakref
from typing import Any

from sqlalchemy import Engine, text
from sqlalchemy.engine import Connection

CHANNEL = "taskhub_jobs"
_listeners: weakref.WeakSet[Listener] = weakref.WeakSet()
_listeners_lock = threading.Lock()


def notify(conn: Connection, kind: str) -> None:
    """Within an enqueue's transaction: tell the listening workers once it commits (PostgreSQL only)."""
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_notify(:channel, :kind)"), {"channel": CHANNEL, "kind": kind})


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
        with _listeners_lock:
            _listeners.add(self)

    def wake(self) -> None:
        """Ends the current or next wait at once (from any thread)."""
        with self._closing:
            if self._write < 0:
                return  # closed: nobody waits any more
            with contextlib.suppress(BlockingIOError):  # the pipe is full of wake-ups already
                os.write(self._write, b"!")

    def wait(self, timeout: float) -> None:
        """Returns once woken or after `timeout` seconds; raises the driver's error when the database is away."""
        waiting = [self._read]
        if self.engine.dialect.name == "postgresql":
            if self._pg is None:
                raw = self.engine.raw_connection()
                self._pg = raw.driver_connection
                raw.detach()  # ours for good: it stays out of the pool while it listens
                self._pg.autocommit = True
                self._pg.execute(f"LISTEN {CHANNEL}")
            waiting.append(self._pg.fileno())
        ready, _, _ = select.select(waiting, [], [], max(timeout, 0))
        if self._read in ready:
            os.read(self._read, 4096)
        if self._pg is not None and (len(ready) > 1 or (ready and ready[0] != self._read)):
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
