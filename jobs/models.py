"""Jobs and leases: the durable queue of background work and the named locks that workers share (SQLAlchemy 2.0)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, Index, Integer, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from catalog.models import Base, UTCDateTime, utcnow

# A job's state: queued (waiting, maybe until run_after), running (held by a worker under a lease), then one of
# succeeded, failed, cancelled, or abandoned (a non-idempotent job whose worker stopped answering).
QUEUED, RUNNING, SUCCEEDED, FAILED, CANCELLED, ABANDONED = (
    "queued", "running", "succeeded", "failed", "cancelled", "abandoned",
)  # fmt: skip
FINISHED = (SUCCEEDED, FAILED, CANCELLED, ABANDONED)
STATES = (QUEUED, RUNNING, *FINISHED)


class Job(Base):
    """One piece of background work: what to do (kind, target, payload), where it stands, and how it ended."""

    __tablename__ = "jobs"
    __table_args__ = (
        # Claiming reads the oldest due queued job; reclaiming reads running jobs by lease expiry.
        Index("ix_jobs_claim", "state", "run_after", "id"),
        Index("ix_jobs_lease", "state", "lease_expires_at"),
        Index("ix_jobs_kind_target", "kind", "target"),
        # At most one queued job per coalescing key: a second request for the same sync joins the first.
        Index(
            "ix_jobs_queued_key",
            "dedupe_key",
            unique=True,
            sqlite_where=text("state = 'queued'"),
            postgresql_where=text("state = 'queued'"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))
    # What the job acts on, as a person names it: a catalog's name, a run's id.
    target: Mapped[str] = mapped_column(String(255), default="")
    payload: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # Jobs with the same key coalesce while queued (kind and target, for the kinds that coalesce).
    dedupe_key: Mapped[str | None] = mapped_column(String(300))
    state: Mapped[str] = mapped_column(String(16), default=QUEUED)
    # Whether the job may run again after its worker stopped answering (syncs, publish), or is abandoned (runs).
    idempotent: Mapped[bool] = mapped_column(Boolean, default=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    max_attempts: Mapped[int] = mapped_column(Integer, default=3)
    # Not claimed before this moment: a retry's backoff.
    run_after: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    # The worker holding it ("host:pid:nonce") and until when; past lease_expires_at any worker may take it back.
    worker: Mapped[str | None] = mapped_column(String(255))
    lease_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    heartbeat_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    progress_done: Mapped[int] = mapped_column(Integer, default=0)
    progress_total: Mapped[int | None] = mapped_column(Integer)
    progress_message: Mapped[str] = mapped_column(Text, default="")
    # What the work did, for the person who asked (the handler's summary).
    result: Mapped[Any] = mapped_column(JSON, nullable=True)
    # Why the last attempt failed, in words a person can act on.
    error: Mapped[str | None] = mapped_column(Text)
    created_by: Mapped[str] = mapped_column(String(63), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    def to_json(self) -> dict[str, Any]:
        """The job as the API and `taskhub jobs -o json` show it."""

        def stamp(moment: datetime | None) -> str | None:
            return moment.isoformat() if moment else None

        return {
            "id": self.id, "kind": self.kind, "target": self.target, "state": self.state, "payload": self.payload,
            "attempts": self.attempts, "maxAttempts": self.max_attempts, "cancelRequested": self.cancel_requested,
            "progress": {"done": self.progress_done, "total": self.progress_total, "message": self.progress_message},
            "result": self.result, "error": self.error, "worker": self.worker,
            "leaseExpiresAt": stamp(self.lease_expires_at), "createdBy": self.created_by,
            "createdAt": stamp(self.created_at), "startedAt": stamp(self.started_at),
            "finishedAt": stamp(self.finished_at),
        }  # fmt: skip


class Lease(Base):
    """A named lock held until `expires_at` unless renewed: the scheduler's, and one per catalog being synced."""

    __tablename__ = "leases"

    name: Mapped[str] = mapped_column(String(255), primary_key=True)
    holder: Mapped[str] = mapped_column(String(255))
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    acquired_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
