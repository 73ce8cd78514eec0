"""Events as taskhub records them (SQLAlchemy 2.0): every request to a sink or a catalog's push webhook, with its
headers (secret ones redacted), size, raw body, the HTTP answer, and what each trigger did with it; and which
event holds each delivery id, so a delivery sent twice within the window is processed once."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, Index, Integer, LargeBinary, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from catalog.models import Base, UTCDateTime, utcnow

# Where an event came in: an EventListener's sink, or a catalog's push webhook.
LISTENER, CATALOG = "listener", "catalog"
# An event's status: queued (answered 202, its job waits), processing, done; refused (answered 400/404/413,
# nothing processed), duplicate (a delivery id seen within the window), failed (its job could not finish).
QUEUED, PROCESSING, DONE, REFUSED, DUPLICATE, FAILED = "queued", "processing", "done", "refused", "duplicate", "failed"
EVENT_STATUSES = (QUEUED, PROCESSING, DONE, REFUSED, DUPLICATE, FAILED)


class TriggerEvent(Base):
    __tablename__ = "trigger_events"
    __table_args__ = (
        Index("ix_trigger_events_target", "source", "namespace", "name", "id"),
        # A delivery id is claimed by the first event that carried it to a listener or catalog within the window:
        # the sink's INSERT claims it or finds it taken (ON CONFLICT), no statement of its own.
        Index(
            "ix_trigger_events_delivery",
            "source",
            "namespace",
            "name",
            "delivery_id",
            unique=True,
            sqlite_where=text("delivery_claimed"),
            postgresql_where=text("delivery_claimed"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    event_id: Mapped[str] = mapped_column(String(36), unique=True)  # the eventID of the 202
    source: Mapped[str] = mapped_column(String(16))
    namespace: Mapped[str] = mapped_column(String(63))  # "" for a catalog
    name: Mapped[str] = mapped_column(String(253))  # the EventListener's or the catalog's
    listener_uid: Mapped[str] = mapped_column(String(36), default="")
    method: Mapped[str] = mapped_column(String(16))
    url: Mapped[str] = mapped_column(Text)  # path and query as the listener's own sink would see them
    # [name, value] pairs in Go's canonical form; the values of secret-bearing headers replaced.
    headers: Mapped[list[Any]] = mapped_column(JSON, default=list)
    # The full headers (signatures, tokens) sealed for the job that checks them; removed once it has run.
    sealed_headers: Mapped[bytes | None] = mapped_column(LargeBinary)
    size: Mapped[int] = mapped_column(Integer, default=0)
    body: Mapped[bytes] = mapped_column(LargeBinary, default=b"")  # raw, as received (empty when refused for size)
    delivery_id: Mapped[str] = mapped_column(String(255), default="")
    # Whether this event holds its delivery id (the first within the window); a worker releases old claims.
    delivery_claimed: Mapped[bool] = mapped_column(Boolean, default=False)
    duplicate_of: Mapped[int | None] = mapped_column(ForeignKey("trigger_events.id", ondelete="SET NULL"))
    http_status: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16), index=True)
    reason: Mapped[str] = mapped_column(Text, default="")
    # One entry per trigger (or trigger group) the event reached: status, interceptor, reason, what it created.
    outcomes: Mapped[list[Any]] = mapped_column(JSON, default=list)
    job_id: Mapped[int | None] = mapped_column(Integer)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
