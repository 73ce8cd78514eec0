"""The hub's own tables: API tokens and registry credentials (SQLAlchemy 2.0, on the index's declarative base)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, ForeignKey, Index, LargeBinary, String, text
from sqlalchemy.orm import Mapped, mapped_column

from catalog.models import Base, UTCDateTime, utcnow


class ApiToken(Base):
    """An API token: only the SHA-256 of its text is kept; the text itself is shown once, when it is created."""

    __tablename__ = "api_tokens"
    # A name names one live token; revoked ones keep their name for the record.
    __table_args__ = (
        Index(
            "ix_api_tokens_live_name",
            "name",
            unique=True,
            sqlite_where=text("revoked_at IS NULL"),
            postgresql_where=text("revoked_at IS NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(63))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    scopes: Mapped[list[str]] = mapped_column(JSON, default=list)
    # "cli" or the name of the token that created it through the API.
    created_by: Mapped[str] = mapped_column(String(63))
    # The token that created it through the API (None: the command line); what a tokens:create token lists and
    # revokes. An id, not a name: a later token of the same name inherits nothing.
    creator_id: Mapped[int | None] = mapped_column(ForeignKey("api_tokens.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class RegistryCredential(Base):
    """A registry login (hub.credentials): the host in the clear, the username and password sealed together with
    the key that seals Secrets (runner.objects.sealing)."""

    __tablename__ = "registry_credentials"

    host: Mapped[str] = mapped_column(String(255), primary_key=True)  # host[:port], as references name it
    sealed: Mapped[bytes] = mapped_column(LargeBinary)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
