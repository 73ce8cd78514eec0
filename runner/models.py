"""Run records: every run, on either backend, with its status, times, params, lock and step logs (SQLAlchemy 2.0)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from catalog.models import Base, UTCDateTime, utcnow

# A record's status: Pending (accepted, not yet resolved), Running, then Succeeded, Failed or Cancelled.
PENDING, RUNNING, SUCCEEDED, FAILED, CANCELLED = "Pending", "Running", "Succeeded", "Failed", "Cancelled"
FINISHED = (SUCCEEDED, FAILED, CANCELLED)
STATUSES = (PENDING, RUNNING, *FINISHED)


class Run(Base):
    __tablename__ = "runs"

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))  # "TaskRun" or "PipelineRun"
    name: Mapped[str] = mapped_column(String(253))
    namespace: Mapped[str] = mapped_column(String(63))
    # The uid of the run object its backend created ("" until it is created).
    uid: Mapped[str] = mapped_column(String(36), default="")
    backend: Mapped[str] = mapped_column(String(16))  # "local" or "kubernetes"
    status: Mapped[str] = mapped_column(String(16), default=PENDING, index=True)
    reason: Mapped[str] = mapped_column(String(255), default="")
    message: Mapped[str] = mapped_column(Text, default="")
    params: Mapped[list[Any]] = mapped_column(JSON, default=list)
    # The lock of pinning.pin_run: every reference with the version and digest it resolved to.
    lock: Mapped[list[Any]] = mapped_column(JSON, default=list)
    # The run as submitted, then as pinned, then as it ended (with Tekton's status).
    object: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # The child TaskRuns of a PipelineRun, with their statuses, as they ended.
    children: Mapped[list[Any]] = mapped_column(JSON, default=list)
    # Set by a cancel request (API or another process); the process running it polls this and cancels. Who runs it
    # is its `run` job's holder (jobs.models.Job, target the run's id): when that one stops renewing the job's lease,
    # the run is recorded Failed, reason Abandoned (RunRecords.abandon_ended).
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    created_by: Mapped[str] = mapped_column(String(63), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    logs: Mapped[list[RunLog]] = relationship(
        back_populates="run", cascade="all, delete-orphan", passive_deletes=True, order_by="RunLog.id"
    )


class RunLog(Base):
    """One chunk of one container's output; a container's log is its chunks in `id` order."""

    __tablename__ = "run_logs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), index=True)
    task_run: Mapped[str] = mapped_column(String(253))
    container: Mapped[str] = mapped_column(String(253))  # "step-<name>" or "sidecar-<name>"
    text: Mapped[str] = mapped_column(Text)

    run: Mapped[Run] = relationship(back_populates="logs")
