"""Run records: a run is stored when it is accepted, updated as it starts and ends, and its step logs kept, so its
history outlives the cluster's garbage collection and the local executor's work directory."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, func, select, update
from sqlalchemy.orm import Session

from catalog.models import utcnow
from runner.models import CANCELLED, FAILED, FINISHED, PENDING, RUNNING, SUCCEEDED, Run, RunLog

MAX_LOG_BYTES = 4 * 1024 * 1024  # kept per container; what follows is dropped, with a line that says so
_CHUNK_BYTES = 64 * 1024  # a container's buffered output is written once it reaches this size


def status_of(obj: dict[str, Any]) -> tuple[str, str, str]:
    """The record status, reason and message of a run object, from its `Succeeded` condition."""
    conditions = (obj.get("status") or {}).get("conditions") or []
    condition = next((c for c in conditions if isinstance(c, dict) and c.get("type") == "Succeeded"), {})
    reason, message = str(condition.get("reason") or ""), str(condition.get("message") or "")
    if condition.get("status") == "True":
        return SUCCEEDED, reason, message
    if condition.get("status") == "False":
        cancelled = reason in ("Cancelled", "CancelledRunFinally", "StoppedRunFinally", "TaskRunCancelled")
        return (CANCELLED if cancelled else FAILED), reason, message
    return RUNNING, reason, message


@dataclass(frozen=True)
class RunSummary:
    """One line of the runs list."""

    id: int
    kind: str
    name: str
    namespace: str
    backend: str
    status: str
    reason: str
    created_by: str
    created_at: datetime
    started_at: datetime | None
    completed_at: datetime | None

    @property
    def finished(self) -> bool:
        return self.status in FINISHED

    @property
    def duration(self) -> float | None:
        """Seconds from start to end (or to now while it runs); None before it starts."""
        if self.started_at is None:
            return None
        return ((self.completed_at or utcnow()) - self.started_at).total_seconds()


@dataclass(frozen=True)
class RunDetail(RunSummary):
    """A run with everything stored about it except its logs."""

    message: str = ""
    params: list[Any] = field(default_factory=list)
    lock: list[Any] = field(default_factory=list)
    object: dict[str, Any] = field(default_factory=dict)
    children: list[Any] = field(default_factory=list)


@dataclass(frozen=True)
class ContainerLog:
    """The stored output of one step or sidecar container of one TaskRun."""

    task_run: str
    container: str
    text: str


class RunRecords:
    """Stores runs and their logs in the index database."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def create(self, obj: dict[str, Any], *, backend: str, created_by: str = "") -> int:
        """Records a run as accepted (Pending) and returns its id."""
        meta = obj.get("metadata") or {}
        spec = obj.get("spec") or {}
        run = Run(
            kind=str(obj.get("kind") or ""),
            name=str(meta.get("name") or meta.get("generateName") or ""),
            namespace=str(meta.get("namespace") or "default"),
            backend=backend,
            status=PENDING,
            params=list(spec.get("params") or []) if isinstance(spec, dict) else [],
            object=obj,
            created_by=created_by,
        )
        with Session(self.engine) as session, session.begin():
            session.add(run)
            session.flush()
            return run.id

    def started(self, run_id: int, obj: dict[str, Any], lock: list[Any]) -> None:
        """The run was pinned (obj, lock) and handed to its backend."""
        meta = obj.get("metadata") or {}
        values: dict[str, Any] = {"status": RUNNING, "object": obj, "lock": lock, "started_at": utcnow()}
        if meta.get("name"):
            values["name"] = str(meta["name"])
        self._update(run_id, **values)

    def finished(self, run_id: int, obj: dict[str, Any], children: list[Any] | None = None) -> None:
        """The run ended: its final object (with Tekton's status) and its child TaskRuns."""
        status, reason, message = status_of(obj)
        if status == RUNNING:  # the backend gave up on a run that had not ended
            status = FAILED
        meta = obj.get("metadata") or {}
        self._update(
            run_id,
            status=status,
            reason=reason,
            message=message,
            object=obj,
            children=list(children or []),
            completed_at=utcnow(),
            **({"name": str(meta["name"])} if meta.get("name") else {}),
        )

    def failed(self, run_id: int, reason: str, message: str) -> None:
        """The run could not be started or followed (resolution failed, the cluster refused it, ...)."""
        self._update(run_id, status=FAILED, reason=reason, message=message, completed_at=utcnow())

    def _update(self, run_id: int, **values: Any) -> None:
        with Session(self.engine) as session, session.begin():
            session.execute(update(Run).where(Run.id == run_id).values(**values))

    def log_writer(self, run_id: int) -> LogWriter:
        """A thread-safe writer of the run's container output; call `flush` at the end."""
        return LogWriter(self.engine, run_id)

    def recent(self, *, limit: int = 50, offset: int = 0, status: str | None = None) -> tuple[list[RunSummary], int]:
        """The newest runs first, and how many there are in all."""
        query = select(Run)
        count = select(func.count()).select_from(Run)
        if status:
            query, count = query.where(Run.status == status), count.where(Run.status == status)
        with Session(self.engine) as session:
            rows = session.scalars(query.order_by(Run.id.desc()).limit(limit).offset(offset)).all()
            return [_summary(run) for run in rows], int(session.scalar(count) or 0)

    def get(self, run_id: int) -> RunDetail | None:
        """Everything stored about one run except its logs, or None."""
        with Session(self.engine) as session:
            run = session.get(Run, run_id)
            if run is None:
                return None
            return RunDetail(
                **_summary(run).__dict__,
                message=run.message,
                params=run.params,
                lock=run.lock,
                object=run.object,
                children=run.children,
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
    """Buffers container output per container and writes it in chunks, keeping at most MAX_LOG_BYTES of each."""

    def __init__(self, engine: Engine, run_id: int) -> None:
        self.engine = engine
        self.run_id = run_id
        self._lock = threading.Lock()
        self._flushing = threading.Lock()  # chunks of one container reach the table in the order they were taken
        self._buffers: dict[tuple[str, str], list[str]] = {}
        self._sizes: dict[tuple[str, str], int] = {}  # bytes accepted per container, buffered or written

    def line(self, task_run: str, container: str, text: str) -> None:
        """Adds one line of a container's output (a newline is added when it has none)."""
        text = text if text.endswith("\n") else text + "\n"
        key = (task_run, container)
        with self._lock:
            size = self._sizes.get(key, 0)
            if size >= MAX_LOG_BYTES:
                return
            encoded = len(text.encode())
            if size + encoded > MAX_LOG_BYTES:
                text, encoded = f"[taskhub: log truncated at {MAX_LOG_BYTES} bytes]\n", MAX_LOG_BYTES - size
            self._sizes[key] = size + encoded
            buffer = self._buffers.setdefault(key, [])
            buffer.append(text)
            full = sum(len(part) for part in buffer) >= _CHUNK_BYTES
        if full:
            self.flush()

    def flush(self) -> None:
        """Writes whatever is buffered."""
        with self._flushing:
            with self._lock:
                chunks = [(key, "".join(parts)) for key, parts in self._buffers.items() if parts]
                self._buffers = {}
            if not chunks:
                return
            with Session(self.engine) as session, session.begin():
                session.add_all(RunLog(run_id=self.run_id, task_run=tr, container=c, text=t) for (tr, c), t in chunks)


def _summary(run: Run) -> RunSummary:
    return RunSummary(
        id=run.id,
        kind=run.kind,
        name=run.name,
        namespace=run.namespace,
        backend=run.backend,
        status=run.status,
        reason=run.reason,
        created_by=run.created_by,
        created_at=run.created_at,
        started_at=run.started_at,
        completed_at=run.completed_at,
    )
