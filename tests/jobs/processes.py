"""Starting worker processes for the tests and waiting for what they do (events, never fixed sleeps)."""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from tests.conftest import REPO

T = TypeVar("T")
_numbers = itertools.count()
# The most a test waits for an event before it fails: a bound on a hang, not how long anything should take.
DEADLINE_SECONDS = 120.0


def wait_until(check: Callable[[], T], what: str, timeout: float = DEADLINE_SECONDS) -> T:
    """Polls check() until it returns something true; fails the test after `timeout` seconds."""
    end = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > end:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(0.02)


@dataclass
class WorkerProcess:
    process: subprocess.Popen[bytes]
    stderr: Path

    def output(self) -> str:
        return self.stderr.read_text(errors="replace")

    @property
    def name(self) -> str:
        """The worker's name, from its first log line ("worker NAME: taking ...")."""
        line = wait_until(lambda: next((ln for ln in self.output().splitlines() if ln.startswith("worker ")), None),
                          "the worker to start")  # fmt: skip
        return line.split()[1].rstrip(":")

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()


@contextmanager
def workers(
    url: str, log: Path, count: int = 1, env: dict[str, str] | None = None, **options: object
) -> Iterator[list[WorkerProcess]]:
    """Starts `count` worker processes (tests.jobs.worker_process) and stops them at the end."""
    started = []
    args = [f"--{key.replace('_', '-')}={value}" for key, value in options.items()]
    try:
        for _ in range(count):
            stderr = log.parent / f"worker-{next(_numbers)}.log"
            with stderr.open("wb") as err:
                process = subprocess.Popen(
                    [sys.executable, "-m", "tests.jobs.worker_process", url, str(log), *args],
                    cwd=REPO, stdout=err, stderr=err, env={**os.environ, **(env or {})},
                )  # fmt: skip
            started.append(WorkerProcess(process, stderr))
        for worker in started:
            _ = worker.name  # each is running
        yield started
    finally:
        for worker in started:
            if worker.process.poll() is None:
                worker.process.terminate()
        for worker in started:
            try:
                worker.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                worker.kill()


def log_lines(log: Path, event: str) -> list[tuple[int, int, str]]:
    """(job id, attempt, worker) of every `event` line the handlers wrote."""
    if not log.exists():
        return []
    lines = [line.split() for line in log.read_text().splitlines()]
    return [(int(job), int(attempt), worker) for ev, job, attempt, worker in lines if ev == event]
