"""Run records: a run is stored when it is accepted, updated as it starts and ends, and its step logs kept, so its
history outlives the cluster's garbage collection and the local executor's work directory."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, func, select, update
from sqlalchemy.orm import Session

from catalog.models import utcnow
from runner.models import CANCELLED, FAILED, FINISHED, PENDING, RUNNING, SUCCEEDED, Run, RunLog

MAX_LOG_BYTES = 4 * 1024 * 1024  # kept per container; what follows is dropped, with a line that says so
_CHUNK_BYTES = 64 * 1024  # a container's buffered output is written once it reaches this size
_FLUSH_SECONDS = 1.0  # ... or once it is this old, so a run's logs can be read while it runs


def _parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


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

    def to_json(self) -> dict[str, Any]:
        """The summary as the API and `taskhub runs -o json` show it."""
        return {
            "id": self.id,
            "kind": self.kind,
            "name": self.name,
            "namespace": self.namespace,
            "backend": self.backend,
            "status": self.status,
            "reason": self.reason,
            "createdBy": self.created_by,
            "createdAt": _iso(self.created_at),
            "startedAt": _iso(self.started_at),
            "completedAt": _iso(self.completed_at),
            "duration": self.duration,
        }


@dataclass(frozen=True)
class TaskRow:
    """One TaskRun of a run (for a PipelineRun: one per pipeline task, skipped tasks included)."""

    task: str  # the pipeline task; for a TaskRun, the TaskRun's own name
    task_run: str  # "" for a skipped task
    status: str  # a record status (Succeeded, Failed, Cancelled, Running), or "Skipped"
    reason: str
    message: str
    started_at: datetime | None
    completed_at: datetime | None

    @property
    def duration(self) -> float | None:
        """Seconds from start to end; None when either is unknown."""
        if self.started_at is None or self.completed_at is None:
            return None
        return (self.completed_at - self.started_at).total_seconds()

    def to_json(self) -> dict[str, Any]:
        return {
            "task": self.task,
            "taskRun": self.task_run,
            "status": self.status,
            "reason": self.reason,
            "message": self.message,
            "startedAt": _iso(self.started_at),
            "completedAt": _iso(self.completed_at),
            "duration": self.duration,
        }


@dataclass(frozen=True)
class RunDetail(RunSummary):
    """A run with everything stored about it except its logs."""

    message: str = ""
    params: list[Any] = field(default_factory=list)
    lock: list[Any] = field(default_factory=list)
    object: dict[str, Any] = field(default_factory=dict)
    children: list[Any] = field(default_factory=list)
    cancel_requested: bool = False

    @property
    def tasks(self) -> list[TaskRow]:
        """The run's TaskRuns as rows, in the order they were recorded, then the tasks that were skipped."""
        rows = [_task_row(child, self.kind) for child in self.children if isinstance(child, dict)]
        if not rows and self.kind == "TaskRun" and (self.object.get("status") or {}).get("conditions"):
            rows = [_task_row(self.object, self.kind)]
        status = self.object.get("status") or {}
        for skipped in status.get("skippedTasks") or [] if isinstance(status, dict) else []:
            if isinstance(skipped, dict):
                reason = str(skipped.get("reason") or "")
                rows.append(TaskRow(str(skipped.get("name") or ""), "", "Skipped", reason, "", None, None))
        return rows

    def task_run_named(self, name: str) -> str | None:
        """The TaskRun of the pipeline task `name`, or `name` if it is one of the run's TaskRuns; else None."""
        rows = [row for row in self.tasks if row.task_run]
        return next((r.task_run for r in rows if r.task == name), None) or next(
            (r.task_run for r in rows if r.task_run == name), None
        )

    def to_json(self) -> dict[str, Any]:
        """Everything stored about the run, as the API and `taskhub runs show -o json` show it."""
        return {
            **super().to_json(),
            "message": self.message,
            "cancelRequested": self.cancel_requested,
            "params": self.params,
            "tasks": [row.to_json() for row in self.tasks],
            "lock": self.lock,
            "object": self.object,
            "children": self.children,
        }


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
        self._update(
            run_id,
            status=status,
            reason=reason,
            message=message,
            object=obj,
            children=list(children or []),
            completed_at=utcnow(),
            **_identity(obj),
        )

    def failed(self, run_id: int, reason: str, message: str) -> None:
        """The run could not be started or followed (resolution failed, the cluster refused it, ...)."""
        self._update(run_id, status=FAILED, reason=reason[:255], message=message, completed_at=utcnow())

    def cancelled(self, run_id: int, message: str) -> None:
        """The run was cancelled before its backend ran it (or before it could report its end)."""
        self._update(run_id, status=CANCELLED, reason="Cancelled", message=message, completed_at=utcnow())

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
    """Buffers container output per container and writes it in chunks, keeping at most MAX_LOG_BYTES of each."""

    def __init__(self, engine: Engine, run_id: int) -> None:
        self.engine = engine
        self.run_id = run_id
        self._lock = threading.Lock()
        self._flushing = threading.Lock()  # chunks of one container reach the table in the order they were taken
        self._buffers: dict[tuple[str, str], list[str]] = {}
        self._flushed_at = time.monotonic()
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
            stale = time.monotonic() - self._flushed_at >= _FLUSH_SECONDS
        if full or stale:
            self.flush()

    def flush(self) -> None:
        """Writes whatever is buffered."""
        with self._flushing:
            with self._lock:
                chunks = [(key, "".join(parts)) for key, parts in self._buffers.items() if parts]
                self._buffers = {}
                self._flushed_at = time.monotonic()
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


def logs_as_text(detail: RunDetail, logs: list[ContainerLog]) -> str:
    """Each container's lines prefixed `[task : step]` as `tkn pr logs` prints them, a blank line between."""
    tasks = {row.task_run: row.task for row in detail.tasks if row.task_run}
    blocks = []
    for log in logs:
        prefix = f"[{tasks.get(log.task_run, log.task_run)} : {log.container.removeprefix('step-')}]"
        blocks.append("".join(f"{prefix} {line}\n" for line in log.text.splitlines()))
    return "\n".join(blocks)


def _identity(obj: dict[str, Any]) -> dict[str, str]:
    """The name and namespace a backend gave the run (a generated name, the context's namespace)."""
    meta = obj.get("metadata") or {}
    found = {"name": str(meta.get("name") or "")[:253], "namespace": str(meta.get("namespace") or "")[:63]}
    return {key: value for key, value in found.items() if value}


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat().replace("+00:00", "Z") if moment is not None else None


def _task_row(child: dict[str, Any], kind: str) -> TaskRow:
    meta = child.get("metadata") or {}
    labels = meta.get("labels") or {}
    name = str(meta.get("name") or "")
    task = str(labels.get("tekton.dev/pipelineTask") or name) if kind == "PipelineRun" else name
    status, reason, message = status_of(child)
    if status == RUNNING and not (child.get("status") or {}).get("conditions"):
        status = PENDING
    times = child.get("status") or {}
    return TaskRow(
        task,
        name,
        status,
        reason,
        message,
        _parse_time(times.get("startTime")),
        _parse_time(times.get("completionTime")),
    )
