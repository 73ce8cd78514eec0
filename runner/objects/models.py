"""Objects as a cluster keeps them, in the hub's database: one row per group, kind, namespace and name, with the
uid, the labels and the manifest (SQLAlchemy 2.0). Secrets keep their data sealed (runner.objects.sealing)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Integer, LargeBinary, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from catalog.models import Base, UTCDateTime, utcnow


class StoredObject(Base):
    __tablename__ = "objects"
    __table_args__ = (UniqueConstraint("api_group", "kind", "namespace", "name", name="uq_objects_identity"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    api_group: Mapped[str] = mapped_column(String(253))  # "" for the core kinds (ConfigMap, Secret, ...)
    kind: Mapped[str] = mapped_column(String(63))
    # "" for cluster-scoped kinds (ClusterTriggerBinding, ClusterInterceptor).
    namespace: Mapped[str] = mapped_column(String(63))
    name: Mapped[str] = mapped_column(String(253))
    api_version: Mapped[str] = mapped_column(String(300))  # as applied
    uid: Mapped[str] = mapped_column(String(36), unique=True)
    labels: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    # The object without its status; a Secret's without `data` (that is in sealed_data).
    manifest: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    sealed_data: Mapped[bytes | None] = mapped_column(LargeBinary)
    generation: Mapped[int] = mapped_column(Integer, default=1)
    created_by: Mapped[str] = mapped_column(String(63), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
