"""What a run record shows: the summary in the runs list, the details of one run with a row per TaskRun, and its
container logs; read from the stored run objects with Tekton's status."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from catalog.models import utcnow
from runner.models import CANCELLED, FAILED, FINISHED, PENDING, RUNNING, SUCCEEDED, Run


def parse_time(value: Any) -> datetime | None:
    """A Kubernetes timestamp (RFC 3339) as a datetime; None when absent or unreadable."""
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def format_duration(seconds: float) -> str:
    """`<1s`, `42s`, `1m 05s`, `2h 03m`: whole seconds, as Tekton's timestamps have no finer resolution."""
    if seconds < 1:
        return "<1s"
    minutes, secs = divmod(round(seconds), 60)
    if minutes == 0:
        return f"{secs}s"
    if minutes < 60:
        return f"{minutes}m {secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m"


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
    uid: str = ""  # of the object its backend created, once created
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
            "uid": self.uid,
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


def summary_of(run: Run) -> RunSummary:
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
        parse_time(times.get("startTime")),
        parse_time(times.get("completionTime")),
    )
