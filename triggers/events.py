"""The record of events: every request to a sink or a catalog's push webhook is kept, answered or refused, with
its headers (secret-bearing values redacted, the full set sealed for the job that verifies them and removed once
it ran), size, raw body, the HTTP answer, and each trigger's outcome. Upstream answers 202 and logs rejections
at debug level (tektoncd/triggers#1465, #1666); here a person can see which interceptor stopped an event and why.

A provider's delivery id (X-GitHub-Delivery, X-Gitlab-Event-UUID, X-Gitea-Delivery) is claimed per listener by the
INSERT of the event that carries it, so a delivery sent twice within the window is processed once.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import Engine, Select, bindparam, delete, func, insert, select, text, update
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from catalog.models import utcnow
from jobs.models import Job
from runner.objects.sealing import Sealer
from triggers.metrics import count_event
from triggers.models import DONE, DUPLICATE, FAILED, PROCESSING, QUEUED, REFUSED, TriggerEvent

# Headers whose values authenticate the sender: never shown, kept sealed only until the event is processed.
SECRET_HEADERS = frozenset(
    {"authorization", "proxy-authorization", "cookie", "x-hub-signature", "x-hub-signature-256", "x-gitlab-token",
     "x-gitea-signature", "x-gogs-signature", "x-slack-signature"}
)  # fmt: skip
_SECRET_WORDS = re.compile(r"token|secret|signature|password|auth|api-?key", re.IGNORECASE)
DELIVERY_HEADERS = ("X-Github-Delivery", "X-Gitlab-Event-Uuid", "X-Gitea-Delivery")
REDACTED = "[redacted]"
# Built once, executed with parameters: the sink runs these for every event. The claiming insert is text because
# SQLAlchemy compiles its dialects' ON CONFLICT statements anew on every execution (they are not cached), and
# SQLite and PostgreSQL spell this one the same way (a conflict on the partial unique index of claimed deliveries).
_INSERT_EVENT = insert(TriggerEvent).returning(TriggerEvent.id)
_COLUMNS = ("event_id", "source", "namespace", "name", "listener_uid", "method", "url", "headers", "sealed_headers",
            "size", "body", "delivery_id", "delivery_claimed", "http_status", "status", "reason", "outcomes",
            "job_id", "received_at")  # fmt: skip
_INSERT_CLAIMING = text(
    f"INSERT INTO trigger_events ({', '.join(_COLUMNS)}) VALUES ({', '.join(':' + c for c in _COLUMNS)})"
    " ON CONFLICT (source, namespace, name, delivery_id) WHERE delivery_claimed DO NOTHING RETURNING id"
).bindparams(*(bindparam(c, type_=TriggerEvent.__table__.c[c].type) for c in _COLUMNS))
_CLAIMED = (TriggerEvent.source == bindparam("c_source"), TriggerEvent.namespace == bindparam("c_namespace"),
            TriggerEvent.name == bindparam("c_name"), TriggerEvent.delivery_id == bindparam("c_delivery"),
            TriggerEvent.delivery_claimed)  # fmt: skip
_HOLDER = select(TriggerEvent.id, TriggerEvent.received_at).where(*_CLAIMED)
_RELEASE = update(TriggerEvent).where(*_CLAIMED).values(delivery_claimed=False)
_SET_JOB = update(TriggerEvent).where(TriggerEvent.id == bindparam("event")).values(job_id=bindparam("job"))


def redacted(headers: Sequence[tuple[str, str]]) -> list[list[str]]:
    """Headers as recorded: the values of secret-bearing ones replaced."""
    return [[k, REDACTED if k.lower() in SECRET_HEADERS or _SECRET_WORDS.search(k) else v] for k, v in headers]


def delivery_id(headers: Sequence[tuple[str, str]]) -> str:
    """The provider's delivery id of a request, or ""."""
    wanted = {name.lower() for name in DELIVERY_HEADERS}
    return next((v.strip()[:255] for k, v in headers if k.lower() in wanted and v.strip()), "")


def forget_deliveries(engine: Engine, window_seconds: float) -> int:
    """Releases the delivery ids claimed longer ago than the window (they no longer make a redelivery a duplicate),
    so the index of claims holds one window's deliveries, not every one ever received; returns how many went. Every
    worker runs it (hub.services.Services.worker)."""
    cutoff = utcnow() - timedelta(seconds=window_seconds)
    with engine.begin() as conn:
        released = update(TriggerEvent).where(TriggerEvent.delivery_claimed, TriggerEvent.received_at < cutoff)
        return int(conn.execute(released.values(delivery_claimed=False)).rowcount)


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
        enqueue: Callable[[Connection, dict[str, Any]], int] | None = None,
    ) -> Recorded:  # fmt: skip
        """Records an accepted event, the full headers sealed for its job, and (`enqueue`, given the connection and
        the event's columns) queues that job first in the same transaction, so the event is written with its job's
        number: one commit, no event without its job, and no statement to set the job afterwards. A delivery id
        seen within the window makes it a duplicate of the first (recorded, not to be processed: its job is
        withdrawn before the commit)."""
        values = self.accepted_values(incoming, event_id, uid=uid, status=status)
        values["sealed_headers"] = self.seal_headers(incoming.headers)
        with self.engine.begin() as conn:
            recorded = self._accept_in(conn, values, enqueue)
        if recorded.duplicate_of is not None:
            count_event(incoming.source, incoming.namespace, incoming.name, DUPLICATE)
        return recorded

    def accepted_values(self, incoming: Incoming, event_id: str, *, uid: str = "", status: int = 202) -> dict[str, Any]:
        """The columns of an accepted event but its sealed headers (`seal_headers`), as `accepted` and a spool
        (triggers.spool) keep them."""
        values = self._values(incoming, event_id, status, QUEUED, uid)
        values.update(body=incoming.body, delivery_id=delivery_id(incoming.headers))
        return values

    def seal_headers(self, headers: Sequence[tuple[str, str]]) -> bytes:
        """The full headers sealed, for the job that verifies them."""
        return self.sealer.seal({"headers": json.dumps(headers).encode()})

    def record_spooled(
        self, events: Sequence[tuple[dict[str, Any], Sequence[tuple[str, str]]]],
        enqueue: Callable[[Connection, dict[str, Any]], int] | None = None,
    ) -> list[Recorded]:  # fmt: skip
        """Records accepted events taken from a spool (their `accepted_values` and full headers), each with its
        job, in one transaction; the ones already recorded (a spool moved again after a crash) are skipped."""
        with self.engine.begin() as conn:
            ids = [values["event_id"] for values, _ in events]
            known = set(conn.scalars(select(TriggerEvent.event_id).where(TriggerEvent.event_id.in_(ids))))
            new = [{**values, "sealed_headers": self.seal_headers(headers)}
                   for values, headers in events if values["event_id"] not in known]  # fmt: skip
            recorded = [self._accept_in(conn, values, enqueue) for values in new]
        for values, done in zip(new, recorded, strict=True):
            if done.duplicate_of is not None:
                count_event(values["source"], values["namespace"], values["name"], DUPLICATE)
        return recorded

    def _accept_in(
        self, conn: Connection, values: dict[str, Any], enqueue: Callable[[Connection, dict[str, Any]], int] | None
    ) -> Recorded:
        job = enqueue(conn, values) if enqueue is not None else None
        values["job_id"] = job
        if not values["delivery_id"]:
            event, first = int(conn.scalar(_INSERT_EVENT, values)), None
        else:
            event, first = self._insert_claiming(conn, values)
        if first is not None and job is not None:
            conn.execute(delete(Job).where(Job.id == job))
            job = None
        return Recorded(event, values["event_id"], first, job)

    def _insert_claiming(self, conn: Connection, values: dict[str, Any]) -> tuple[int, int | None]:
        """Inserts an event that claims its delivery id: (its number, None) when it is the delivery's first within
        the window; else it is recorded as a duplicate: (its number, the first's)."""
        claim = {"c_source": values["source"], "c_namespace": values["namespace"], "c_name": values["name"],
                 "c_delivery": values["delivery_id"]}  # fmt: skip
        while True:
            event = conn.scalar(_INSERT_CLAIMING, {**values, "delivery_claimed": True})
            if event is not None:
                return int(event), None
            holder = conn.execute(_HOLDER, claim).first()
            if holder is None:  # released meanwhile (forget_deliveries)
                continue
            # Within the window of this event's own receipt, not of its recording: a spooled event may be
            # recorded long after it came (triggers.spool), and a redelivery then is still one.
            if holder.received_at >= values["received_at"] - timedelta(seconds=self.dedupe_seconds):
                reason = (
                    f"delivery {values['delivery_id']} was already received as event {holder.id}: not processed again"
                )
                duplicate = {**values, "status": DUPLICATE, "duplicate_of": holder.id, "sealed_headers": None,
                             "reason": reason, "job_id": None, "finished_at": utcnow()}  # fmt: skip
                return int(conn.scalar(_INSERT_EVENT, duplicate)), holder.id
            conn.execute(_RELEASE, claim)  # an old claim is forgotten: this event is the first again

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

    def start(self, key: int | str) -> tuple[TriggerEvent, list[tuple[str, str]]] | None:
        """Marks a queued event (by its number or its eventID) processing; returns it with its full headers, or
        None if it is not queued."""
        with Session(self.engine, expire_on_commit=False) as session, session.begin():
            row = session.scalar(_by_key(key))
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
        """One event, by its number or its eventID (a `trigger-event` job's target)."""
        with Session(self.engine, expire_on_commit=False) as session:
            return session.scalar(_by_key(key))


def _by_key(key: int | str) -> Select[tuple[TriggerEvent]]:
    """An event by its number (an int, or a string of digits, as older `trigger-event` jobs name it) or eventID."""
    if isinstance(key, int) or key.isdigit():
        return select(TriggerEvent).where(TriggerEvent.id == int(key))
    return select(TriggerEvent).where(TriggerEvent.event_id == key)


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
