"""The job queue: enqueue, claim under a lease, heartbeat, finish, retry with backoff, take back expired leases,
cancel, and read jobs back. Every change is one statement, so it is safe with any number of workers on any number
of hosts: claims use FOR UPDATE SKIP LOCKED on PostgreSQL; SQLite runs one writer at a time, so its claim, a
single UPDATE ... RETURNING, is atomic too. Every write that ends or takes back an attempt names the worker and the
attempt it belongs to, so a worker that lost its lease cannot overwrite what the next holder did.
"""

from __future__ import annotations

import functools
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine, Select, and_, func, insert, literal, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from catalog.errors import Conflict, NotFound
from jobs.clock import host_now, now_plus
from jobs.models import ABANDONED, CANCELLED, FAILED, FINISHED, QUEUED, RUNNING, SUCCEEDED, Job
from jobs.wakeup import notify, wake

MAX_ERROR_CHARS = 4000


@dataclass(frozen=True)
class JobKind:
    """What the queue needs to know of a kind of work, the same for whoever enqueues or takes it back."""

    name: str
    # Run again when its worker stops answering (the work is safe to repeat), else the job is abandoned.
    idempotent: bool = True
    # A second request while one is queued joins it (same kind and target).
    coalesce: bool = False
    max_attempts: int = 3


@dataclass(frozen=True)
class Claim:
    """A job a worker holds: enough to do the work and to prove, on every write, that it still holds it."""

    id: int
    kind: str
    target: str
    payload: dict[str, Any]
    attempt: int
    max_attempts: int
    idempotent: bool
    worker: str


@dataclass
class Progress:
    done: int = 0
    total: int | None = None
    message: str = ""


@dataclass(frozen=True)
class Enqueued:
    id: int
    # True when the request joined a job already queued for the same kind and target.
    coalesced: bool = False


@dataclass(frozen=True)
class Reclaimed:
    id: int
    kind: str
    target: str
    state: str  # queued again, failed (out of attempts) or abandoned


@dataclass(frozen=True)
class QueueTimes:
    """How long a lease lasts without a heartbeat, and how retries back off (seconds)."""

    lease: float = 30.0
    retry_base: float = 5.0
    retry_max: float = 600.0


def _retry_delay(times: QueueTimes, attempt: int) -> float:
    return min(times.retry_base * 2 ** max(attempt - 1, 0), times.retry_max)


def _error(message: str) -> str:
    return message if len(message) <= MAX_ERROR_CHARS else message[: MAX_ERROR_CHARS - 1] + "…"


@dataclass
class JobQueue:
    """The jobs table of one database, with the lease and retry times of its workers."""

    engine: Engine
    times: QueueTimes = field(default_factory=QueueTimes)

    # -- enqueueing -----------------------------------------------------------------------------------------

    def enqueue(
        self, kind: JobKind, target: str = "", payload: dict[str, Any] | None = None, *, created_by: str = ""
    ) -> Enqueued:
        """Queues a job of `kind` on `target`, or joins the one already queued when the kind coalesces."""
        key = f"{kind.name}:{target}" if kind.coalesce else None
        values = _job_values(kind, target, payload, created_by, key)
        for _ in range(5):  # a queued job can be claimed between the conflict and the read: then insert again
            with self.engine.begin() as conn:
                now = now_plus(conn)
                insert = _insert_for(self.engine).values(**values, run_after=now, created_at=now)
                if key is not None:
                    insert = insert.on_conflict_do_nothing(
                        index_elements=[Job.dedupe_key], index_where=Job.state == QUEUED
                    )
                job_id = conn.scalar(insert.returning(Job.id))
                if job_id is not None:
                    notify(conn, kind.name)
                    enqueued = Enqueued(job_id)
                else:
                    existing = conn.scalar(select(Job.id).where(Job.dedupe_key == key, Job.state == QUEUED))
                    if existing is None:
                        continue
                    enqueued = Enqueued(existing, coalesced=True)
            if not enqueued.coalesced:
                wake(self.engine)
            return enqueued
        raise Conflict(f"could not queue {kind.name} {target}: the queue is changing too fast, try again")

    def start(
        self, kind: JobKind, target: str, worker: str, payload: dict[str, Any] | None = None, *, created_by: str = ""
    ) -> Claim:
        """Records a job that its requester does itself, at once (the command line's foreground work): running,
        held by `worker` under a lease like a claimed job, so a killed requester's job is taken back the same way."""
        with self.engine.begin() as conn:
            now = now_plus(conn)
            values = {
                "kind": kind.name, "target": target, "payload": payload or {}, "state": RUNNING, "attempts": 1,
                "idempotent": kind.idempotent, "max_attempts": max(kind.max_attempts, 1), "worker": worker,
                "created_by": created_by[:63], "run_after": now, "created_at": now, "started_at": now,
                "heartbeat_at": now, "lease_expires_at": now_plus(conn, self.times.lease),
            }  # fmt: skip
            job_id = conn.scalar(_insert_for(self.engine).values(**values).returning(Job.id))
        return Claim(job_id, kind.name, target, payload or {}, 1, max(kind.max_attempts, 1), kind.idempotent, worker)

    def enqueue_in(
        self, conn: Connection, kind: JobKind, target: str = "", payload: dict[str, Any] | None = None, *,
        created_by: str = "",
    ) -> int:  # fmt: skip
        """Queues a job within the caller's transaction on `conn`, so the job exists exactly when what the caller
        writes beside it does; returns its id. For kinds that do not coalesce. Call `committed()` after the
        commit, to wake the idle workers."""
        if kind.coalesce:
            raise ValueError(f"{kind.name} jobs coalesce: queue them with enqueue()")
        values = _job_values(kind, target, payload, created_by, None)
        if (now := host_now(conn)) is not None:
            values["run_after"] = values["created_at"] = now
        job_id: int = conn.execute(self._insert_job, values).scalar_one()
        notify(conn, kind.name)
        return job_id

    @functools.cached_property
    def _insert_job(self) -> Any:
        """INSERT of one job, built once: at a sink's rate building it costs more than running it. A plain INSERT
        (no ON CONFLICT), whose compiled form SQLAlchemy caches; stamped by the database's clock on PostgreSQL."""
        if host_now(self.engine) is not None:
            return insert(Job).returning(Job.id)
        now = now_plus(self.engine)
        return insert(Job).values(run_after=now, created_at=now).returning(Job.id)

    def committed(self) -> None:
        """After a transaction that queued jobs with `enqueue_in` commits: wake the idle workers."""
        wake(self.engine)

    # -- a worker's side --------------------------------------------------------------------------------------

    def claim(self, worker: str, kinds: Collection[str] | None = None, limit: int = 1) -> list[Claim]:
        """Takes up to `limit` due queued jobs (of `kinds`, or any) for `worker`, oldest first, under a lease."""
        with self.engine.begin() as conn:
            due: Select[Any] = (
                select(Job.id)
                .where(Job.state == QUEUED, Job.run_after <= now_plus(conn))
                .order_by(Job.run_after, Job.id)
                .limit(limit)
            )
            if kinds is not None:
                due = due.where(Job.kind.in_(sorted(kinds)))
            if conn.dialect.name == "postgresql":
                due = due.with_for_update(skip_locked=True)
            # Materialized, so it is read once: PostgreSQL may otherwise run a LIMITed subquery of an IN again
            # for every row it compares, and take more jobs than asked.
            chosen = due.cte("due").prefix_with("MATERIALIZED")
            rows = conn.execute(
                update(Job)
                .where(Job.id.in_(select(chosen.c.id)), Job.state == QUEUED)
                .values(
                    state=RUNNING,
                    worker=worker,
                    attempts=Job.attempts + 1,
                    dedupe_key=None,
                    cancel_requested=False,
                    started_at=now_plus(conn),
                    heartbeat_at=now_plus(conn),
                    lease_expires_at=now_plus(conn, self.times.lease),
                )
                .returning(Job.id, Job.kind, Job.target, Job.payload, Job.attempts, Job.max_attempts, Job.idempotent)
            ).all()
        claims = [
            Claim(row.id, row.kind, row.target, row.payload, row.attempts, row.max_attempts, row.idempotent, worker)
            for row in rows
        ]
        return sorted(claims, key=lambda c: c.id)

    def _held(self, claim: Claim) -> Any:
        return and_(Job.id == claim.id, Job.worker == claim.worker, Job.attempts == claim.attempt, Job.state == RUNNING)

    def heartbeat(self, claim: Claim, progress: Progress | None = None) -> bool | None:
        """Extends the lease (and stores progress); returns whether a cancel was asked, None if the lease is lost."""
        values: dict[str, Any] = {}
        if progress is not None:
            values = {"progress_done": progress.done, "progress_total": progress.total,
                      "progress_message": progress.message[:1000]}  # fmt: skip
        with self.engine.begin() as conn:
            row = conn.execute(
                update(Job)
                .where(self._held(claim))
                .values(**values, heartbeat_at=now_plus(conn), lease_expires_at=now_plus(conn, self.times.lease))
                .returning(Job.cancel_requested)
            ).first()
        return None if row is None else bool(row[0])

    def cancel_requests(self, claims: Collection[Claim]) -> set[int]:
        """Which of these held jobs someone asked to cancel: one read, made as often as the worker polls."""
        if not claims:
            return set()
        with self.engine.connect() as conn:
            asked = select(Job.id).where(Job.id.in_([c.id for c in claims]), Job.cancel_requested)
            return set(conn.scalars(asked))

    def succeed(self, claim: Claim, result: Any = None, progress: Progress | None = None) -> bool:
        """Records the job done with its summary; False if the lease was lost (the write is refused)."""
        return self._end(claim, SUCCEEDED, result=result, error=None, progress=progress)

    def cancelled(self, claim: Claim, message: str = "cancelled", progress: Progress | None = None) -> bool:
        return self._end(claim, CANCELLED, error=_error(message), progress=progress)

    def fail(self, claim: Claim, error: str, *, retry: bool = True, progress: Progress | None = None) -> str | None:
        """Records a failed attempt: queued again after a backoff while attempts remain and `retry`, else failed.
        Returns the new state, None if the lease was lost."""
        if retry and claim.attempt < claim.max_attempts:
            delay = _retry_delay(self.times, claim.attempt)
            requeued = self._requeue(claim, delay, error=_error(error), **_progress_values(progress))
            return QUEUED if requeued else None
        return FAILED if self._end(claim, FAILED, error=_error(error), progress=progress) else None

    def release(self, claim: Claim, reason: str) -> str | None:
        """Hands a job back unfinished (its worker is stopping): queued again, this attempt not counted, when it is
        idempotent; abandoned otherwise. Returns the new state, None if the lease was already lost."""
        if not claim.idempotent:
            return ABANDONED if self._end(claim, ABANDONED, error=_error(reason)) else None
        return QUEUED if self._requeue(claim, 0, attempts=Job.attempts - 1) else None

    def _requeue(self, claim: Claim, delay: float, **values: Any) -> bool:
        with self.engine.begin() as conn:
            done = conn.execute(
                update(Job)
                .where(self._held(claim))
                .values(state=QUEUED, worker=None, lease_expires_at=None, run_after=now_plus(conn, delay), **values)
            ).rowcount
        return bool(done)

    def _end(self, claim: Claim, state: str, *, progress: Progress | None = None, **values: Any) -> bool:
        with self.engine.begin() as conn:
            done = conn.execute(
                update(Job)
                .where(self._held(claim))
                .values(
                    state=state,
                    lease_expires_at=None,
                    finished_at=now_plus(conn),
                    **values,
                    **_progress_values(progress),
                )
            ).rowcount
        return bool(done)

    def reclaim_expired(self) -> list[Reclaimed]:
        """Takes back the running jobs whose lease has expired, whoever held them: idempotent ones are queued again
        (or failed once out of attempts), the others abandoned. Returns what was taken back."""
        reclaimed: list[Reclaimed] = []
        with self.engine.begin() as conn:
            now = now_plus(conn)
            expired = and_(Job.state == RUNNING, Job.lease_expires_at < now)
            why = literal("its worker ") + func.coalesce(Job.worker, "") + literal(" stopped renewing its lease")
            outcomes = (
                (QUEUED, and_(Job.idempotent, Job.attempts < Job.max_attempts), {"run_after": now}),
                (FAILED, and_(Job.idempotent, Job.attempts >= Job.max_attempts), {"finished_at": now}),
                (ABANDONED, ~Job.idempotent, {"finished_at": now}),
            )
            for state, which, extra in outcomes:
                rows = conn.execute(
                    update(Job)
                    .where(expired, which)
                    .values(state=state, worker=None, lease_expires_at=None, error=why, **extra)
                    .returning(Job.id, Job.kind, Job.target)
                ).all()
                reclaimed.extend(Reclaimed(id_, kind, target, state) for id_, kind, target in rows)
            if any(r.state == QUEUED for r in reclaimed):
                notify(conn, "reclaimed")
        return reclaimed

    # -- a person's side --------------------------------------------------------------------------------------

    def cancel(self, job_id: int) -> str:
        """Cancels a queued job at once; asks a running one to stop (its worker sees it at the next heartbeat).
        Returns the state it is in now; NotFound, or Conflict once it has ended."""
        with self.engine.begin() as conn:
            queued = conn.execute(
                update(Job)
                .where(Job.id == job_id, Job.state == QUEUED)
                .values(state=CANCELLED, dedupe_key=None, finished_at=now_plus(conn), error="cancelled while queued")
            ).rowcount
            if queued:
                return CANCELLED
            asked = conn.execute(
                update(Job).where(Job.id == job_id, Job.state == RUNNING).values(cancel_requested=True)
            ).rowcount
            if asked:
                notify(conn, "cancel")
            state = conn.scalar(select(Job.state).where(Job.id == job_id))
        if state is None:
            raise NotFound(f"job {job_id} not found")
        if state in FINISHED:
            raise Conflict(f"job {job_id} already ended: {state}")
        return state

    def get(self, job_id: int) -> Job | None:
        with Session(self.engine, expire_on_commit=False) as session:
            return session.get(Job, job_id)

    def list(
        self,
        *,
        kind: str | None = None,
        kinds: Collection[str] | None = None,
        state: str | None = None,
        target: str | None = None,
        limit: int = 20,
        offset: int = 0,
    ) -> tuple[Sequence[Job], int]:
        """The newest jobs first, filtered (`kinds`: only these); and how many match in all."""
        query = select(Job)
        if kinds is not None:
            query = query.where(Job.kind.in_(sorted(kinds)))
        for column, value in ((Job.kind, kind), (Job.state, state), (Job.target, target)):
            if value is not None:
                query = query.where(column == value)
        with Session(self.engine, expire_on_commit=False) as session:
            total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
            jobs = session.scalars(query.order_by(Job.id.desc()).limit(limit).offset(offset)).all()
        return jobs, total


def _progress_values(progress: Progress | None) -> dict[str, Any]:
    if progress is None:
        return {}
    return {"progress_done": progress.done, "progress_total": progress.total, "progress_message": progress.message}


def _job_values(
    kind: JobKind, target: str, payload: dict[str, Any] | None, created_by: str, key: str | None
) -> dict[str, Any]:
    return {
        "kind": kind.name, "target": target, "payload": payload or {}, "dedupe_key": key, "state": QUEUED,
        "idempotent": kind.idempotent, "max_attempts": max(kind.max_attempts, 1), "created_by": created_by[:63],
    }  # fmt: skip


def _insert_for(engine: Engine) -> Any:
    """The dialect's INSERT, which knows ON CONFLICT DO NOTHING on a partial index (both dialects have it)."""
    insert = postgresql.insert if engine.dialect.name == "postgresql" else sqlite.insert
    return insert(Job)
