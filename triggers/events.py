"""The record of events: every request to a sink or a catalog's push webhook is kept, answered or refused, with
its headers (secret-bearing values redacted, the full set sealed for the job that verifies them and removed once
it ran), size, raw body, the HTTP answer, and each trigger's outcome. Upstream answers 202 and logs rejections
at debug level (tektoncd/triggers#1465, #1666); here a person can see which interceptor stopped an event and why.

A provider's delivery id (X-GitHub-Delivery, X-Gitlab-Event-UUID, X-Gitea-Delivery) is claimed per listener in
one statement, so a delivery sent twice within the window is processed once, whichever worker took it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import Engine, bindparam, delete, func, insert, select, text, update
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from catalog.models import UTCDateTime, utcnow
from runner.objects.sealing import Sealer
from triggers.metrics import count_event
from triggers.models import DONE, DUPLICATE, FAILED, PROCESSING, QUEUED, REFUSED, Delivery, TriggerEvent

# Headers whose values authenticate the sender: never shown, kept sealed only until the event is processed.
SECRET_HEADERS = frozenset(
    {"authorization", "proxy-authorization", "cookie", "x-hub-signature", "x-hub-signature-256", "x-gitlab-token",
     "x-gitea-signature", "x-gogs-signature", "x-slack-signature"}
)  # fmt: skip
_SECRET_WORDS = re.compile(r"token|secret|signature|password|auth|api-?key", re.IGNORECASE)
DELIVERY_HEADERS = ("X-Github-Delivery", "X-Gitlab-Event-Uuid", "X-Gitea-Delivery")
REDACTED = "[redacted]"
# Built once, executed with parameters: the sink runs these for every event. The upsert is text because
# SQLAlchemy compiles its dialects' ON CONFLICT statements anew on every execution (they are not cached),
# and SQLite and PostgreSQL spell this one the same way.
_INSERT_EVENT = insert(TriggerEvent).returning(TriggerEvent.id)
_CLAIM_DELIVERY = text(
    "INSERT INTO trigger_deliveries (target, delivery_id, event, seen_at) VALUES (:target, :delivery, :event, :now)"
    " ON CONFLICT (target, delivery_id) DO UPDATE SET event = excluded.event, seen_at = excluded.seen_at"
    " WHERE trigger_deliveries.seen_at < :cutoff"  # an old one is forgotten: this event is the first again
    " RETURNING event"
).bindparams(bindparam("now", type_=UTCDateTime()), bindparam("cutoff", type_=UTCDateTime()))
_SET_JOB = update(TriggerEvent).where(TriggerEvent.id == bindparam("event")).values(job_id=bindparam("job"))
_FIRST_DELIVERY = select(Delivery.event).where(
    Delivery.target == bindparam("target"), Delivery.delivery_id == bindparam("delivery")
)


def redacted(headers: Sequence[tuple[str, str]]) -> list[list[str]]:
    """Headers as recorded: the values of secret-bearing ones replaced."""
    return [[k, REDACTED if k.lower() in SECRET_HEADERS or _SECRET_WORDS.search(k) else v] for k, v in headers]


def delivery_id(headers: Sequence[tuple[str, str]]) -> str:
    """The provider's delivery id of a request, or ""."""
    wanted = {name.lower() for name in DELIVERY_HEADERS}
    return next((v.strip()[:255] for k, v in headers if k.lower() in wanted and v.strip()), "")


def forget_deliveries(engine: Engine, window_seconds: float) -> int:
    """Drops the delivery ids seen longer ago than the window (they no longer make a redelivery a duplicate), so
    the table holds one window's deliveries, not every one ever received; returns how many went. Every worker
    runs it (hub.services.Services.worker)."""
    cutoff = utcnow() - timedelta(seconds=window_seconds)
    with engine.begin() as conn:
        return int(conn.execute(delete(Delivery).where(Delivery.seen_at < cutoff)).rowcount)


@dataclass(frozen=True)
class Incoming:
    """A request as the sink received it: where it went, and what it carried."""

    source: str
    namespace: str
    name: str
    method: str
    url: str
    headers: list[tuple[str, str]]
    body: bytes
    size: int


@dataclass(frozen=True)
class Recorded:
    id: int
    event_id: str
    duplicate_of: int | None = None
    job: int | None = None  # the job queued with it


class EventLog:
    """Events in the database of `engine`; the full headers sealed with `sealer` until processed."""

    def __init__(self, engine: Engine, sealer: Sealer, *, dedupe_seconds: float = 3600.0) -> None:
        self.engine, self.sealer, self.dedupe_seconds = engine, sealer, dedupe_seconds

    def refused(self, incoming: Incoming, event_id: str, status: int, reason: str, *, uid: str = "") -> int:
        """Records an event answered with an error (nothing will process it); returns its id."""
        with self.engine.begin() as conn:
            values = self._values(incoming, event_id, status, REFUSED, uid, reason=reason)
            event = int(conn.scalar(_INSERT_EVENT, {**values, "body": incoming.body}))
        known = status != 404  # a 404 names no listener or catalog: its name is the caller's, not a label
        count_event(incoming.source, incoming.namespace if known else "", incoming.name if known else "", REFUSED)
        return event

    def accepted(
        self, incoming: Incoming, event_id: str, *, uid: str = "", status: int = 202,
        enqueue: Callable[[Connection, int], int] | None = None,
    ) -> Recorded:  # fmt: skip
        """Records an accepted event, the full headers sealed for its job, and (`enqueue`, given the connection
        and the event's number) queues that job in the same transaction: one commit, and no event without its job.
        A delivery id seen within the window makes it a duplicate of the first (recorded, not to be processed)."""
        delivery = delivery_id(incoming.headers)
        sealed = self.sealer.seal({"headers": json.dumps(incoming.headers).encode()})
        values = self._values(incoming, event_id, status, QUEUED, uid)
        job = None
        with self.engine.begin() as conn:
            values.update(body=incoming.body, delivery_id=delivery, sealed_headers=sealed)
            event = int(conn.scalar(_INSERT_EVENT, values))
            first = self._claim_delivery(conn, f"{incoming.source}:{incoming.namespace}/{incoming.name}",
                                         delivery, event) if delivery else None  # fmt: skip
            if first is not None:
                reason = f"delivery {delivery} was already received as event {first}: not processed again"
                conn.execute(
                    update(TriggerEvent)
                    .where(TriggerEvent.id == event)
                    .values(status=DUPLICATE, duplicate_of=first, sealed_headers=None, reason=reason,
                            finished_at=utcnow())
                )  # fmt: skip
            elif enqueue is not None:
                job = enqueue(conn, event)
                conn.execute(_SET_JOB, {"event": event, "job": job})
        if first is not None:
            count_event(incoming.source, incoming.namespace, incoming.name, DUPLICATE)
        return Recorded(event, event_id, first, job)

    def _claim_delivery(self, conn: Connection, target: str, delivery: str, event: int) -> int | None:
        """None when this event is the delivery's first within the window, else the id of the first one."""
        now = utcnow()
        cutoff = now - timedelta(seconds=self.dedupe_seconds)
        key = {"target": target, "delivery": delivery}
        if conn.scalar(_CLAIM_DELIVERY, {**key, "event": event, "now": now, "cutoff": cutoff}) == event:
            return None
        return conn.scalar(_FIRST_DELIVERY, key)

    def set_job(self, event: int, job_id: int) -> None:
        with self.engine.begin() as conn:
            conn.execute(_SET_JOB, {"event": event, "job": job_id})

    @staticmethod
    def _values(
        incoming: Incoming, event_id: str, status: int, state: str, uid: str, reason: str = ""
    ) -> dict[str, Any]:
        return {
            "event_id": event_id, "source": incoming.source, "namespace": incoming.namespace, "name": incoming.name,
            "listener_uid": uid[:36], "method": incoming.method[:16], "url": incoming.url,
            "headers": redacted(incoming.headers), "size": incoming.size, "http_status": status, "status": state,
            "reason": reason, "outcomes": [], "received_at": utcnow(),
        }  # fmt: skip

    # -- the processing job's side -----------------------------------------------------------------------------

    def start(self, event: int) -> tuple[TriggerEvent, list[tuple[str, str]]] | None:
        """Marks a queued event processing; returns it with its full headers, or None if it is not queued."""
        with Session(self.engine, expire_on_commit=False) as session, session.begin():
            row = session.get(TriggerEvent, event)
            if row is None or row.status != QUEUED:
                return None
            row.status = PROCESSING
            sealed = self.sealer.open(row.sealed_headers) if row.sealed_headers else {}
            headers = [(str(k), str(v)) for k, v in json.loads(sealed.get("headers", b"[]"))]
            return row, headers

    def finish(self, event: int, outcomes: list[dict[str, Any]], *, failed: str = "", reason: str = "") -> None:
        """Records what the event did; the sealed headers go."""
        status = FAILED if failed else DONE
        with self.engine.begin() as conn:
            row = conn.execute(
                update(TriggerEvent)
                .where(TriggerEvent.id == event)
                .values(status=status, reason=failed or reason, outcomes=outcomes, sealed_headers=None,
                        finished_at=utcnow())
                .returning(TriggerEvent.source, TriggerEvent.namespace, TriggerEvent.name)
            ).first()  # fmt: skip
        if row is not None:
            count_event(row.source, row.namespace, row.name, status)

    # -- reading -----------------------------------------------------------------------------------------------

    def recent(
        self, *, source: str | None = None, namespace: str | None = None, name: str | None = None,
        status: str | None = None, limit: int = 20, offset: int = 0,
    ) -> tuple[list[TriggerEvent], int]:  # fmt: skip
        """The newest events first, filtered; and how many match in all."""
        query = select(TriggerEvent)
        for column, value in ((TriggerEvent.source, source), (TriggerEvent.namespace, namespace),
                              (TriggerEvent.name, name), (TriggerEvent.status, status)):  # fmt: skip
            if value is not None:
                query = query.where(column == value)
        with Session(self.engine, expire_on_commit=False) as session:
            total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
            rows = session.scalars(query.order_by(TriggerEvent.id.desc()).limit(limit).offset(offset)).all()
        return list(rows), total

    def get(self, key: int | str) -> TriggerEvent | None:
        """One event, by its number or its eventID."""
        query = select(TriggerEvent)
        query = query.where(TriggerEvent.id == key) if isinstance(key, int) else query.where(
            TriggerEvent.event_id == key
        )  # fmt: skip
        with Session(self.engine, expire_on_commit=False) as session:
            return session.scalar(query)


def event_json(row: TriggerEvent, *, detail: bool = False) -> dict[str, Any]:
    """An event as the API, the CLI and the web pages show it (never its body or sealed headers)."""
    out: dict[str, Any] = {
        "id": row.id, "eventID": row.event_id, "source": row.source, "namespace": row.namespace, "name": row.name,
        "method": row.method, "url": row.url, "size": row.size, "httpStatus": row.http_status, "status": row.status,
        "reason": row.reason, "deliveryID": row.delivery_id, "duplicateOf": row.duplicate_of,
        "receivedAt": row.received_at.isoformat(),
        "finishedAt": row.finished_at.isoformat() if row.finished_at else None,
        "triggers": len(row.outcomes or []),
        "created": sum(len(o.get("created") or []) for o in row.outcomes or []),
    }  # fmt: skip
    if detail:
        out["headers"] = row.headers
        out["outcomes"] = row.outcomes
        out["listenerUID"] = row.listener_uid
        out["job"] = row.job_id
    return out
