"""What a job's handler is given (JobContext) and what it may raise (JobFailed, JobCancelled)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from jobs.queue import Claim, Progress


class JobFailed(Exception):
    """A failure the handler explains in words a person can act on; retry=False when trying again cannot help
    (a catalog that does not exist), so the job fails at once instead of using up its attempts."""

    def __init__(self, message: str, *, retry: bool = True) -> None:
        super().__init__(message)
        self.retry = retry


class JobCancelled(Exception):
    """Raised by a handler (JobContext.check_cancelled) that stopped because it was asked to."""


class JobContext:
    """A running job as its handler sees it: what to do, where to report progress, and whether to stop.

    `cancel` is set when someone cancels the job, when its worker lost the lease (another worker may take it), and
    when the worker stops after its grace period; handlers that wait or loop pass it on or call check_cancelled().
    The worker renews the lease by itself and stores the progress with each renewal, so a handler never needs to
    heartbeat."""

    def __init__(self, claim: Claim, *, lease_seconds: float, on_progress: Callable[[], None] = lambda: None) -> None:
        self.claim = claim
        self.lease_seconds = lease_seconds
        self.cancel = threading.Event()
        self.cancel_requested = False  # by a person, not by the worker stopping or losing the lease
        self._progress = Progress()
        self._changed = False
        self._lock = threading.Lock()
        self._on_progress = on_progress

    @property
    def id(self) -> int:
        return self.claim.id

    @property
    def kind(self) -> str:
        return self.claim.kind

    @property
    def target(self) -> str:
        return self.claim.target

    @property
    def payload(self) -> dict[str, Any]:
        return self.claim.payload

    @property
    def worker(self) -> str:
        """The worker holding the job: the holder name of any lease the handler takes for it."""
        return self.claim.worker

    def progress(self, done: int, total: int | None = None, message: str | None = None) -> None:
        """Reports how far the work is: `done` of `total` (unknown when None), with a line saying what it does."""
        with self._lock:
            self._progress = Progress(done, total, self._progress.message if message is None else message)
            self._changed = True
        self._on_progress()

    def report(self, message: str) -> None:
        """Reports what the work does now, keeping the counts."""
        with self._lock:
            self._progress = Progress(self._progress.done, self._progress.total, message)
            self._changed = True
        self._on_progress()

    def take_progress(self) -> Progress | None:
        """The progress reported since the last call (None when nothing changed); for the worker."""
        with self._lock:
            if not self._changed:
                return None
            self._changed = False
            return self._progress

    def current_progress(self) -> Progress:
        with self._lock:
            return self._progress

    def check_cancelled(self) -> None:
        """Raises JobCancelled once the job is to stop."""
        if self.cancel.is_set():
            raise JobCancelled("cancelled")
