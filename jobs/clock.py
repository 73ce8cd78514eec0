"""The one clock that leases are read by: the database's on PostgreSQL (shared by every host, whatever their own
clocks say), this host's on SQLite (a SQLite database has one host)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Interval, func, literal, type_coerce
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.orm import Session

from catalog.models import UTCDateTime


def _dialect_name(bind: Engine | Connection | Session) -> str:
    return bind.get_bind().dialect.name if isinstance(bind, Session) else bind.dialect.name


def now_plus(bind: Engine | Connection | Session, seconds: float = 0.0) -> ColumnElement[Any]:
    """An SQL expression for the current moment plus `seconds`, on the clock leases are read by."""
    if _dialect_name(bind) == "postgresql":
        stamp: ColumnElement[Any] = func.statement_timestamp()
        if seconds:
            stamp = stamp + literal(timedelta(seconds=seconds), Interval())
        return type_coerce(stamp, UTCDateTime())
    return literal(datetime.now(UTC) + timedelta(seconds=seconds), UTCDateTime())


def host_now(bind: Engine | Connection | Session) -> datetime | None:
    """The current moment as a parameter when leases are read by this host's clock (SQLite); None on PostgreSQL,
    where statements read the database's (now_plus). For statements built once and executed many times."""
    return None if _dialect_name(bind) == "postgresql" else datetime.now(UTC)


def database_now(session: Session) -> datetime:
    """The current moment on the clock leases are read by."""
    moment = session.scalar(func.statement_timestamp()) if _dialect_name(session) == "postgresql" else None
    return moment.astimezone(UTC) if moment is not None else datetime.now(UTC)
