"""The worker: claims jobs of the kinds it handles, runs up to `concurrency` of them on threads, renews their
leases, takes back jobs whose worker stopped answering, and stops gracefully.

One control thread does all the talking to the queue (claims, heartbeats with progress, take-backs, periodic
tasks such as the scheduler); the handlers run on threads of their own. While the database cannot be reached the
control thread backs off (doubling up to `max_backoff`) and carries on once it answers again. On stop (SIGTERM,
SIGINT) it claims nothing more, gives the running jobs `grace` seconds to end, then hands back those still going:
idempotent ones are queued again for another worker; the others (runs) are told to stop and given CANCEL_SECONDS
to record how they ended (a run records itself cancelled), else recorded abandoned.
"""

from __future__ import annotations

import logging
import os
import secrets
import signal
import socket
import threading
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from jobs import metrics
from jobs.context import JobCancelled, JobContext, JobFailed
from jobs.queue import Claim, JobQueue
from jobs.wakeup import Listener

log = logging.getLogger(__name__)

Handler = Callable[[JobContext], Any]
# How long a job that cannot be handed back (a run) has to record its end once told to stop after the grace.
CANCEL_SECONDS = 10.0


def worker_name() -> str:
    """This process as a lease holder: host, pid and a nonce (a reused pid is another holder)."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


@dataclass
class Periodic:
    """Something the control thread does every `interval` seconds (the scheduler's tick)."""

    interval: float
    action: Callable[[], None]
    due: float = 0.0


@dataclass
class _Running:
    claim: Claim
    context: JobContext
    thread: threading.Thread
    heartbeat_due: float


@dataclass
class Worker:
    queue: JobQueue
    handlers: Mapping[str, Handler]
    concurrency: int = 1
    # The kinds this worker takes; None: every kind it has a handler for.
    kinds: Collection[str] | None = None
    # The longest a queued job waits for an idle worker that was not woken (seconds).
    poll_interval: float = 1.0
    # How long running jobs get to end once the worker is told to stop (seconds).
    grace: float = 30.0
    max_backoff: float = 30.0
    periodic: Sequence[Periodic] = ()
    name: str = field(default_factory=worker_name)

    def __post_init__(self) -> None:
        unknown = set(self.kinds or ()) - set(self.handlers)
        if unknown:
            raise ValueError(f"no handler for job kinds: {', '.join(sorted(unknown))}")
        self.kinds = sorted(self.kinds or self.handlers)
        self.stop = threading.Event()
        self._running: dict[int, _Running] = {}
        self._lock = threading.Lock()
        self._listener: Listener | None = None
        self._cancels_due = 0.0
        self._reclaim = Periodic(max(min(self.queue.times.lease / 4, 5.0), 0.05), self._take_back_expired)

    # -- the control thread ---------------------------------------------------------------------------------------

    def run(self) -> None:
        """Works until `stop` is set, then stops gracefully; returns once no job of this worker is left running."""
        self._listener = Listener(self.queue.engine)
        log.info("worker %s: taking %s, %d at a time", self.name, ", ".join(self.kinds or ()), self.concurrency)
        backoff = 0.0
        try:
            while not self.stop.is_set():
                try:
                    self._tick()
                    if backoff:
                        log.warning("worker %s: the database answers again", self.name)
                    backoff = 0.0
                    self._listener.wait(self._next_wait())
                except Exception as exc:  # the database is away (or failing): try again later
                    backoff = min(max(backoff * 2, 0.25), self.max_backoff)
                    log.warning("worker %s: database unreachable (%s); trying again in %.2f s", self.name,
                                " ".join(str(exc).split())[:300], backoff)  # fmt: skip
                    self._listener.close_connection()
                    self.stop.wait(backoff)
        finally:
            self._stop_gracefully()
            self._listener.close()

    def request_stop(self) -> None:
        """Stops the worker gracefully (from any thread): `run` returns once its jobs ended or were handed back."""
        self.stop.set()
        if self._listener is not None:
            self._listener.wake()

    def install_signal_handlers(self) -> None:
        """SIGTERM and SIGINT stop the worker gracefully (call from the main thread)."""

        def on_signal(signum: int, _frame: object) -> None:
            log.info("worker %s: %s: stopping", self.name, signal.Signals(signum).name)
            self.request_stop()

        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)

    def _next_wait(self) -> float:
        now = time.monotonic()
        deadlines = [now + self.poll_interval, self._reclaim.due]
        deadlines += [p.due for p in self.periodic]
        with self._lock:
            deadlines += [r.heartbeat_due for r in self._running.values()]
        return max(min(deadlines) - now, 0.0)

    def _tick(self) -> None:
        now = time.monotonic()
        self._heartbeat(now)
        for task in (self._reclaim, *self.periodic):
            if now >= task.due:
                task.action()
                task.due = now + task.interval
        with self._lock:
            free = self.concurrency - len(self._running)
        if free > 0 and not self.stop.is_set():
            for claim in self.queue.claim(self.name, self.kinds, limit=free):
                self._start(claim)

    def _take_back_expired(self) -> None:
        for job in self.queue.reclaim_expired():
            log.warning("job %s (%s %s): its worker stopped renewing its lease; now %s", job.id, job.kind,
                        job.target, job.state)  # fmt: skip

    def _heartbeat(self, now: float) -> None:
        with self._lock:
            running = list(self._running.values())
        if now >= self._cancels_due:  # once a poll interval, not on every claim: short jobs never need it
            self._cancels_due = now + self.poll_interval
            for job_id in self.queue.cancel_requests([r.claim for r in running if not r.context.cancel.is_set()]):
                log.info("job %s: cancel requested", job_id)
                item = next(r for r in running if r.claim.id == job_id)
                item.context.cancel_requested = True
                item.context.cancel.set()
        for item in running:
            progress = item.context.take_progress()
            if progress is None and now < item.heartbeat_due:
                continue
            answer = self.queue.heartbeat(item.claim, progress)
            item.heartbeat_due = now + self.queue.times.lease / 3
            if answer is None:
                with self._lock:
                    if item.claim.id not in self._running:
                        continue  # it ended meanwhile
                log.warning("job %s: lease lost (taken back while the database was away); stopping it", item.claim.id)
                item.context.cancel.set()
            elif answer and not item.context.cancel.is_set():
                log.info("job %s: cancel requested", item.claim.id)
                item.context.cancel_requested = True
                item.context.cancel.set()

    def _start(self, claim: Claim) -> None:
        listener = self._listener
        assert listener is not None
        context = JobContext(claim, lease_seconds=self.queue.times.lease)
        thread = threading.Thread(target=self._work, args=(context,), name=f"job-{claim.id}", daemon=True)
        with self._lock:
            self._running[claim.id] = _Running(claim, context, thread, time.monotonic() + self.queue.times.lease / 3)
        log.info("job %s: %s %s (attempt %d of %d)", claim.id, claim.kind, claim.target, claim.attempt,
                 claim.max_attempts)  # fmt: skip
        thread.start()

    # -- a job's thread ---------------------------------------------------------------------------------------------

    def _work(self, context: JobContext) -> None:
        claim = context.claim
        started = time.monotonic()
        try:
            outcome, ended = self._outcome(context)
            metrics.JOBS.labels(claim.kind, ended).inc()
            metrics.JOB_SECONDS.labels(claim.kind, ended).observe(time.monotonic() - started)
            self._record(claim, outcome)
        finally:
            with self._lock:
                self._running.pop(claim.id, None)
            if self._listener is not None:
                self._listener.wake()  # a slot is free

    def _outcome(self, context: JobContext) -> tuple[Callable[[], object], str]:
        """Runs the handler; returns the queue write that records how it ended, and the outcome's name."""
        claim, queue = context.claim, self.queue
        try:
            result = self.handlers[claim.kind](context)
        except JobCancelled as exc:
            message = str(exc) or "cancelled"
            return lambda: queue.cancelled(claim, message, context.current_progress()), "cancelled"
        except Exception as exc:
            if context.cancel_requested:
                message = f"cancelled: {exc}"
                return lambda: queue.cancelled(claim, message, context.current_progress()), "cancelled"
            retry = exc.retry if isinstance(exc, JobFailed) else True
            error = str(exc) if isinstance(exc, JobFailed) else f"{type(exc).__name__}: {exc}"
            if not isinstance(exc, JobFailed):
                log.exception("job %s: %s %s failed", claim.id, claim.kind, claim.target)
            return lambda: queue.fail(claim, error, retry=retry, progress=context.current_progress()), "failed"
        log.info("job %s: %s %s succeeded", claim.id, claim.kind, claim.target)
        return lambda: queue.succeed(claim, result, context.current_progress()), "succeeded"

    def _record(self, claim: Claim, write: Callable[[], object]) -> None:
        """Records how a job ended, retrying while the database is away for up to one lease (after that another
        worker takes the job back anyway)."""
        deadline = time.monotonic() + self.queue.times.lease
        delay = 0.25
        while True:
            try:
                if write() in (False, None):
                    log.warning("job %s: its lease was lost; the outcome of this attempt is not recorded", claim.id)
                return
            except Exception as exc:
                if time.monotonic() + delay > deadline:
                    log.error("job %s: could not record its outcome: %s", claim.id, exc)
                    return
                time.sleep(delay)
                delay = min(delay * 2, 5.0)

    # -- stopping ---------------------------------------------------------------------------------------------------

    def _stop_gracefully(self) -> None:
        with self._lock:
            running = list(self._running.values())
        if running:
            log.info("worker %s: waiting up to %.0f s for %d running jobs", self.name, self.grace, len(running))
        deadline = time.monotonic() + self.grace
        for item in running:
            item.thread.join(max(deadline - time.monotonic(), 0))
        with self._lock:
            left = list(self._running.values())
        for item in left:
            if not item.claim.idempotent:
                # A run cannot be handed back: told to stop, it records how it ended (cancelled) if it can in time.
                item.context.cancel.set()
                item.thread.join(CANCEL_SECONDS)
            try:
                state = self.queue.release(item.claim, f"its worker {self.name} stopped before it ended")
                if state is not None:
                    log.warning("job %s: handed back unfinished: %s", item.claim.id, state)
            except Exception as exc:  # the database is away: the lease lapses and another worker takes it back
                log.warning("job %s: could not hand it back (%s); its lease will lapse", item.claim.id, exc)
            item.context.cancel.set()  # after the hand-back: what the handler records now is refused
