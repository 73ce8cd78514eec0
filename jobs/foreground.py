"""Work a person's command does itself (`taskhub catalog sync`, `taskhub run`), recorded as a job held under a
lease exactly as a worker holds one: it is listed with the others, `taskhub jobs cancel` reaches it, and when its
process is killed the lease lapses and any worker takes it back (a sync is finished there, a run abandoned)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from jobs.context import JobCancelled, JobContext
from jobs.queue import JobKind, JobQueue
from jobs.worker import worker_name

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass(frozen=True)
class Outcome:
    """How foreground work that returned is recorded: its summary, and the error when it ran to its end but failed
    (a run whose step failed, a publish with versions refused)."""

    result: Any = None
    error: str | None = None
    cancelled: bool = False


def run_here(
    queue: JobQueue,
    kind: JobKind,
    target: str,
    work: Callable[[JobContext], T],
    *,
    payload: dict[str, Any] | None = None,
    created_by: str = "",
    cancel: threading.Event | None = None,
    outcome: Callable[[T], Outcome] = Outcome,
) -> T:
    """Runs work(context) on this thread as job `kind` on `target`, renewing its lease from another thread, and
    records how it ended; returns what work returned, or raises what it raised (recorded failed, not retried).
    `cancel`: an event of the caller's (Ctrl-C) that the work sees as context.cancel."""
    claim = queue.start(kind, target, worker_name(), payload, created_by=created_by)
    context = JobContext(claim, lease_seconds=queue.times.lease)
    if cancel is not None:
        context.cancel = cancel
    done = threading.Event()
    renewer = threading.Thread(target=_renew, args=(queue, context, done), name=f"job-{claim.id}-lease", daemon=True)
    renewer.start()
    try:
        value = work(context)
    except JobCancelled as exc:
        _stop(done, renewer)
        queue.cancelled(claim, str(exc) or "cancelled", context.current_progress())
        raise
    except KeyboardInterrupt:
        _stop(done, renewer)
        queue.cancelled(claim, "interrupted", context.current_progress())
        raise
    except BaseException as exc:
        _stop(done, renewer)
        queue.fail(claim, str(exc) or type(exc).__name__, retry=False, progress=context.current_progress())
        raise
    _stop(done, renewer)
    ended = outcome(value)
    if ended.cancelled:
        queue.cancelled(claim, ended.error or "cancelled", context.current_progress())
    elif ended.error is not None:
        queue.fail(claim, ended.error, retry=False, progress=context.current_progress())
    else:
        queue.succeed(claim, ended.result, context.current_progress())
    return value


def _stop(done: threading.Event, renewer: threading.Thread) -> None:
    done.set()
    renewer.join()


def _renew(queue: JobQueue, context: JobContext, done: threading.Event) -> None:
    """Every third of a lease: renew it with the progress; a cancel asked for (`taskhub jobs cancel`) or a lost
    lease sets context.cancel."""
    while not done.wait(queue.times.lease / 3):
        try:
            answer = queue.heartbeat(context.claim, context.take_progress())
        except Exception:  # the database is away for a moment: the lease lasts until it is back, or lapses
            log.warning("could not renew the lease of job %s", context.id, exc_info=True)
            continue
        if answer is None:
            log.warning("job %s: lease lost; stopping", context.id)
            context.cancel.set()
            return
        if answer:
            context.cancel_requested = True
            context.cancel.set()
