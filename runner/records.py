"""Run records: a run is stored when it is accepted, updated as it starts and ends, and its step logs kept, so its
history outlives the cluster's garbage collection and the local executor's work directory."""

from __future__ import annotations

import threading
from typing import Any

from sqlalchemy import Engine, String, and_, cast, func, or_, select, update
from sqlalchemy.orm import Session

from catalog.models import utcnow
from jobs.clock import now_plus
from jobs.kinds import RUN as RUN_JOB_KIND
from jobs.models import ABANDONED, Job
from jobs.models import RUNNING as JOB_RUNNING
from runner import metrics
from runner.models import CANCELLED, FAILED, FINISHED, PENDING, RUNNING, Run, RunLog
from runner.run_details import ContainerLog, RunDetail, RunSummary, status_of, summary_of

MAX_LOG_BYTES = 4 * 1024 * 1024  # kept per container; what follows is dropped, with a line that says so
_CHUNK_BYTES = 64 * 1024  # buffered output is written once it reaches this size


class RunRecords:
    """Stores runs and their logs in the index database."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def create(self, obj: dict[str, Any], *, backend: str, created_by: str = "") -> int:
        """Records a run as accepted (Pending) and returns its id."""
        meta = obj.get("metadata") or {}
        spec = obj.get("spec") or {}
        run = Run(
            kind=str(obj.get("kind") or "")[:16],
            name=str(meta.get("name") or meta.get("generateName") or "")[:253],
            namespace=str(meta.get("namespace") or "default")[:63],
            backend=backend,
            status=PENDING,
            params=list(spec.get("params") or []) if isinstance(spec, dict) else [],
            object=obj,
            created_by=created_by[:63],
        )
        with Session(self.engine) as session, session.begin():
            session.add(run)
            session.flush()
            return run.id

    def started(self, run_id: int, obj: dict[str, Any], lock: list[Any]) -> None:
        """The run was pinned (obj, lock) and handed to its backend."""
        values: dict[str, Any] = {"status": RUNNING, "object": obj, "lock": lock, "started_at": utcnow()}
        self._update(run_id, **values, **_identity(obj))

    def created(self, run_id: int, obj: dict[str, Any]) -> None:
        """The backend created the run: record the name it was given (generateName resolved), its namespace and
        uid, while it runs."""
        self._update(run_id, **_identity(obj))

    def abandon_ended(self) -> int:
        """Records Failed, reason Abandoned, the unfinished runs whose `run` job's holder stopped renewing its lease
        (a killed worker or `taskhub run`, a host gone): the job abandoned, or still running past its lease. Decided
        from the lease in the database, so the same on any host; returns how many."""
        # Every list and every read of a run asks this, so it reads the few columns it needs, not whole runs.
        with Session(self.engine) as session, session.begin():
            lapsed = or_(
                Job.state == ABANDONED, and_(Job.state == JOB_RUNNING, Job.lease_expires_at < now_plus(session))
            )
            query = (
                select(Run.id, Run.backend, Run.kind, Run.name, Run.namespace, Job.worker)
                .join(Job, and_(Job.kind == RUN_JOB_KIND.name, Job.target == cast(Run.id, String)))
                .where(Run.status.in_((PENDING, RUNNING)), lapsed)
            )
            ended = session.execute(query).all()
            for row in ended:
                holder = f" {row.worker}" if row.worker else ""
                message = f"its worker{holder} stopped renewing the lease of its job before the run ended"
                if row.backend == "kubernetes":
                    message += f"; on the cluster it may still run: kubectl get {row.kind.lower()} {row.name} -n "
                    message += row.namespace
                session.execute(
                    update(Run)
                    .where(Run.id == row.id, Run.status.in_((PENDING, RUNNING)))
                    .values(status=FAILED, reason="Abandoned", message=message, completed_at=utcnow())
                )
            return len(ended)

    def progress(self, run_id: int, children: list[Any]) -> None:
        """The child TaskRuns of a run that still goes, as they stand (running ones with an Unknown condition)."""
        with Session(self.engine) as session, session.begin():
            session.execute(update(Run).where(Run.id == run_id, Run.status == RUNNING).values(children=children))

    def finished(
        self, run_id: int, obj: dict[str, Any], children: list[Any] | None = None, *, cancelled: bool = False
    ) -> None:
        """The run ended: its final object (with Tekton's status) and its child TaskRuns. `cancelled`: it was
        cancelled, so an end that is not a success counts as Cancelled (a step killed by the cancel fails)."""
        status, reason, message = status_of(obj)
        if status == RUNNING:  # the backend gave up on a run that had not ended
            status = FAILED
        if cancelled and status == FAILED:
            status = CANCELLED
        self._ended(
            run_id,
            status=status,
            reason=reason,
            message=message,
            object=obj,
            children=list(children or []),
            **_identity(obj),
        )

    def failed(self, run_id: int, reason: str, message: str) -> None:
        """The run could not be started or followed (resolution failed, the cluster refused it, ...)."""
        self._ended(run_id, status=FAILED, reason=reason[:255], message=message)

    def cancelled(self, run_id: int, message: str) -> None:
        """The run was cancelled before its backend ran it (or before it could report its end)."""
        self._ended(run_id, status=CANCELLED, reason="Cancelled", message=message)

    def _ended(self, run_id: int, *, status: str, **values: Any) -> None:
        """Record how a run ended, and count it in the run metrics."""
        ended = utcnow()
        with Session(self.engine) as session, session.begin():
            row = session.execute(
                update(Run)
                .where(Run.id == run_id)
                .values(status=status, completed_at=ended, **values)
                .returning(Run.backend, Run.started_at, Run.created_at)
            ).first()
        if row is not None:
            began = row.started_at or row.created_at
            metrics.RUNS.labels(row.backend, status.lower()).inc()
            metrics.RUN_SECONDS.labels(row.backend, status.lower()).observe(max((ended - began).total_seconds(), 0))

    def request_cancel(self, run_id: int) -> str | None:
        """Asks whichever process runs it to cancel the run; returns its status (None: no such run). A finished
        run is left as it is."""
        with Session(self.engine) as session, session.begin():
            status = session.scalar(select(Run.status).where(Run.id == run_id).with_for_update())
            if status is not None and status not in FINISHED:
                session.execute(update(Run).where(Run.id == run_id).values(cancel_requested=True))
            return status

    def cancel_requested(self, run_id: int) -> bool:
        """Whether a cancel of the run was asked for."""
        with Session(self.engine) as session:
            return bool(session.scalar(select(Run.cancel_requested).where(Run.id == run_id)))

    def _update(self, run_id: int, **values: Any) -> None:
        with Session(self.engine) as session, session.begin():
            session.execute(update(Run).where(Run.id == run_id).values(**values))

    def log_writer(self, run_id: int) -> LogWriter:
        """A thread-safe writer of the run's container output; call `flush` at the end."""
        return LogWriter(self.engine, run_id)

    def recent(self, *, limit: int = 50, offset: int = 0, status: str | None = None) -> tuple[list[RunSummary], int]:
        """The newest runs first, and how many there are in all (runs whose process ended shown as abandoned)."""
        self.abandon_ended()
        query = select(Run)
        count = select(func.count()).select_from(Run)
        if status:
            query, count = query.where(Run.status == status), count.where(Run.status == status)
        with Session(self.engine) as session:
            rows = session.scalars(query.order_by(Run.id.desc()).limit(limit).offset(offset)).all()
            return [summary_of(run) for run in rows], int(session.scalar(count) or 0)

    def get(self, run_id: int) -> RunDetail | None:
        """Everything stored about one run except its logs, or None (abandoned if its process ended)."""
        self.abandon_ended()
        with Session(self.engine) as session:
            run = session.get(Run, run_id)
            if run is None:
                return None
            return RunDetail(
                **summary_of(run).__dict__,
                message=run.message,
                uid=run.uid,
                params=run.params,
                lock=run.lock,
                object=run.object,
                children=run.children,
                cancel_requested=run.cancel_requested,
            )

    def logs(self, run_id: int, task_run: str | None = None) -> list[ContainerLog]:
        """The stored output of each container of the run (of one TaskRun if given), in the order it came."""
        query = select(RunLog.task_run, RunLog.container, RunLog.text).where(RunLog.run_id == run_id)
        if task_run:
            query = query.where(RunLog.task_run == task_run)
        joined: dict[tuple[str, str], list[str]] = {}
        with Session(self.engine) as session:
            for tr, container, text in session.execute(query.order_by(RunLog.id)):
                joined.setdefault((tr, container), []).append(text)
        return [ContainerLog(tr, container, "".join(parts)) for (tr, container), parts in joined.items()]


class LogWriter:
    """Buffers container output per container and writes it in chunks, keeping at most MAX_LOG_BYTES of each.
    Whoever runs the run calls `flush` every second (runner.launch), so its logs can be read while it runs."""

    def __init__(self, engine: Engine, run_id: int) -> None:
        self.engine = engine
        self.run_id = run_id
        self._lock = threading.Lock()
        self._flushing = threading.Lock()  # chunks of one container reach the table in the order they were taken
        self._buffers: dict[tuple[str, str], list[str]] = {}
        self._sizes: dict[tuple[str, str], int] = {}  # bytes accepted per container, buffered or written
        self._buffered = 0  # bytes in _buffers

    def line(self, task_run: str, container: str, text: str) -> None:
        """Adds one line of a container's output (a newline is added when it has none). A NUL byte, which no
        database stores in text, is kept as U+FFFD; every other character as it came."""
        text = text if text.endswith("\n") else text + "\n"
        if "\x00" in text:
            text = text.replace("\x00", "\ufffd")
        key = (task_run, container)
        with self._lock:
            size = self._sizes.get(key, 0)
            if size >= MAX_LOG_BYTES:
                return
            encoded = len(text.encode())
            if size + encoded > MAX_LOG_BYTES:
                text, encoded = f"[taskhub: log truncated at {MAX_LOG_BYTES} bytes]\n", MAX_LOG_BYTES - size
            self._sizes[key] = size + encoded
            self._buffers.setdefault(key, []).append(text)
            self._buffered += encoded
            full = self._buffered >= _CHUNK_BYTES
        if full:
            self.flush()

    def flush(self) -> None:
        """Writes whatever is buffered."""
        with self._flushing:
            with self._lock:
                chunks = [(key, "".join(parts)) for key, parts in self._buffers.items() if parts]
                self._buffers, self._buffered = {}, 0
            if not chunks:
                return
            with Session(self.engine) as session, session.begin():
                session.add_all(RunLog(run_id=self.run_id, task_run=tr, container=c, text=t) for (tr, c), t in chunks)


def _identity(obj: dict[str, Any]) -> dict[str, str]:
    """The name, namespace and uid a backend gave the run (a generated name, the context's namespace)."""
    meta = obj.get("metadata") or {}
    found = {"name": str(meta.get("name") or "")[:253], "namespace": str(meta.get("namespace") or "")[:63],
             "uid": str(meta.get("uid") or "")[:36]}  # fmt: skip
    return {key: value for key, value in found.items() if value}
