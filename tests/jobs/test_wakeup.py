"""A job queued in one process wakes an idle worker waiting in another at once, on SQLite (a FIFO per worker
beside the database file) as on PostgreSQL (NOTIFY): the waiting process below would otherwise sleep an hour."""

from __future__ import annotations

import os
import subprocess
import sys
import threading

from catalog.db import make_engine
from jobs import JobKind, JobQueue
from jobs.wakeup import wake, wake_directory
from tests.conftest import REPO
from tests.jobs.processes import wait_until

WAITER = """
import sys
from catalog.db import make_engine
from jobs.wakeup import Listener

listener = Listener(make_engine(sys.argv[1]))
listener.wait(0)  # on PostgreSQL: LISTEN before saying so
print("listening", flush=True)
listener.wait(3600)
print("woken", flush=True)
listener.close()
"""


def test_a_job_queued_in_another_process_wakes_a_waiting_worker(engine, database_url):
    waiter = subprocess.Popen([sys.executable, "-c", WAITER, database_url], cwd=REPO, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True)  # fmt: skip
    lines: list[str] = []
    threading.Thread(target=lambda: lines.extend(waiter.stdout), daemon=True).start()  # type: ignore[arg-type]
    try:
        wait_until(lambda: "listening\n" in lines or waiter.poll() is not None, "the waiter to listen")
        assert "listening\n" in lines, "".join(lines)
        JobQueue(engine).enqueue(JobKind("noop"), "x")
        wait_until(lambda: "woken\n" in lines, "the waiter to be woken")
        assert waiter.wait(timeout=60) == 0, "".join(lines)
    finally:
        if waiter.poll() is None:
            waiter.kill()
    directory = wake_directory(engine)
    assert directory is None or list(directory.iterdir()) == []  # its FIFO went with it


def test_a_fifo_whose_worker_died_is_removed_by_the_next_wake_up(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'taskhub.db'}")
    directory = wake_directory(engine)
    assert directory == tmp_path / "taskhub.db.wake"
    directory.mkdir()
    os.mkfifo(directory / "12345-dead")
    wake(engine)
    assert list(directory.iterdir()) == []
