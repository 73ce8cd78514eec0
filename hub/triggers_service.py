"""Triggers in the hub: the sink's answer and record for each request, and the `trigger-event` job that processes
an accepted event, built from the settings. The sink view and `taskhub triggers serve` call `receive`; a worker
calls `processor.handle`, whose runs go through the run service (hub.services.RunService.submit: recorded, queued
as `run` jobs, on the backends the operator accepts for runs not started by a person at the command line).
"""

from __future__ import annotations

import functools
import json
import logging
import os
import time
import uuid
from pathlib import Path
from typing import Any, Protocol

from sqlalchemy import Engine
from sqlalchemy.engine import Connection

from catalog.db import sqlite_file
from catalog.errors import TaskhubError
from hub.config import Settings
from jobs import TRIGGER_EVENT, JobKind, JobQueue
from runner.objects import ObjectStore
from triggers.admission import parse_resource
from triggers.catalog_webhooks import CatalogWebhooks
from triggers.cloudevents import is_cloudevent
from triggers.engine import TriggersEngine
from triggers.events import EventLog, Incoming
from triggers.fielderrors import InvalidResource
from triggers.http_client import RequestsInterceptorHTTP, networks_allowed
from triggers.metrics import count_spool
from triggers.models import LISTENER
from triggers.ports import SecretStore, TriggersStore
from triggers.processing import EventProcessor, ResourceCreator, RunnerCreator, RunSubmitter
from triggers.resources import EventListener
from triggers.sink import SinkAnswer, answer_event, refusal
from triggers.spool import SpoolCipher, Spooled, SpoolWriter

log = logging.getLogger(__name__)


class TriggersResources(TriggersStore, SecretStore, Protocol):
    """What the sink and its events read: the hub's object store, or a cluster's API (triggers.cluster)."""


# How many admitted listeners the sink keeps (each with its manifest, to see it unchanged).
MAX_ADMITTED = 1000


class TriggersService:
    """The sink and the event jobs of one hub."""

    def __init__(
        self, settings: Settings, engine: Engine, store: ObjectStore, queue: JobQueue, runs: RunSubmitter, *,
        resources: TriggersResources | None = None, job_kind: JobKind = TRIGGER_EVENT, spool: Path | None = None,
    ) -> None:  # fmt: skip
        """`resources`: where listeners, their triggers and the Secrets interceptors read come from (a cluster, for
        `taskhub triggers serve`), the hub's object store by default; `job_kind`: the job an accepted event gets;
        `spool`: where accepted events are kept until `taskhub events ingest` records them (else they are recorded
        in the request)."""
        if store.sealer is None:
            raise ValueError("the Triggers service needs an object store with a secrets key")
        self.settings, self.engine, self.store, self.queue, self.runs = settings, engine, store, queue, runs
        self.sealer = store.sealer
        self.resources: TriggersResources = resources or store
        self.job_kind = job_kind
        self.events = EventLog(engine, self.sealer, dedupe_seconds=settings.triggers_dedupe_seconds)
        self.allow = networks_allowed(settings.triggers_interceptor_networks)
        self.catalog_webhooks = CatalogWebhooks(engine, self.sealer, self.events, queue)
        self.spool = SpoolWriter(spool, self.spool_cipher()) if spool is not None else None
        # (namespace, name) -> (manifest, the listener admitted from it, when it was read)
        self._listeners: dict[tuple[str, str], tuple[dict[str, Any], EventListener, float]] = {}

    @functools.cached_property
    def processor(self) -> EventProcessor:
        return self.processor_with(RunnerCreator(self.runs))

    def processor_with(self, creator: ResourceCreator) -> EventProcessor:
        http = RequestsInterceptorHTTP(self.allow, timeout=self.settings.triggers_interceptor_timeout)
        engine = TriggersEngine(self.resources, self.resources, http)
        return EventProcessor(self.events, engine, creator, self._listener, http)

    def _listener(self, namespace: str, name: str) -> dict[str, Any] | None:
        found = self.resources.get("EventListener", namespace, name)
        return None if found is None else dict(found)

    def receive(self, incoming: Incoming, *, too_large: bool = False) -> SinkAnswer:
        """The sink's answer to one request, recorded; an accepted event is queued for a worker (spooled first when
        the hub has a spool: see triggers.spool)."""
        ns, name = incoming.namespace, incoming.name
        event_id = str(uuid.uuid4())
        try:
            listener = self._sink_listener(ns, name)
        except TaskhubError as exc:  # a cluster that does not answer (taskhub triggers serve)
            self.events.refused(incoming, event_id, 503, str(exc))
            return refusal(503, name, ns, str(exc))
        except InvalidResource as exc:
            self.events.refused(incoming, event_id, 500, str(exc))
            return refusal(500, name, ns, str(exc))
        if listener is None:
            # Upstream answers 500 with no body (its informer has no such listener yet); here the URL names the
            # listener, so a wrong one is a 404 that says so.
            message = f'EventListener "{name}" not found in namespace "{ns}"'
            self.events.refused(incoming, event_id, 404, message)
            return refusal(404, name, ns, message)
        uid = listener.meta.uid
        if too_large:
            limit = self.settings.triggers_max_body_bytes
            message = f"request body over the sink's limit of {limit} bytes (TASKHUB_TRIGGERS_MAX_BODY_BYTES)"
            self.events.refused(incoming, event_id, 413, message, uid=uid)
            return refusal(413, name, ns, message)
        answer = answer_event(listener, incoming.body, event_id, cloudevent=is_cloudevent(incoming.headers))
        if not answer.accepted:
            reason = str(json.loads(answer.body).get("errorMessage", ""))
            self.events.refused(incoming, event_id, answer.status, reason, uid=uid)
            return answer
        if self.spool is not None:
            values = self.events.accepted_values(incoming, event_id, uid=uid, status=answer.status)
            try:
                self.spool.append(Spooled(values, incoming.headers))
                count_spool("spooled")
                return answer
            except OSError as exc:  # the event is then recorded here, as without a spool
                log.warning("the sink's spool in %s cannot be written (%s): events are recorded directly",
                            self.spool.directory, exc)  # fmt: skip
        if self.events.accepted(incoming, event_id, uid=uid, status=answer.status, enqueue=self._enqueue).job:
            self.queue.committed()
        return answer

    def _enqueue(self, conn: Connection, event: dict[str, Any]) -> int:
        """The job of an accepted event, in the transaction that records it; it names the event by its eventID (it
        is queued first)."""
        created_by = f"el:{event['namespace']}/{event['name']}"
        return self.queue.enqueue_in(conn, self.job_kind, event["event_id"], created_by=created_by)

    def spool_cipher(self) -> SpoolCipher:
        """What seals headers in the spool: every process of the hub derives the same key from its secrets key."""
        return SpoolCipher(self.sealer.derived_key(SpoolCipher.PURPOSE))

    def record_spooled(self, events: list[Spooled]) -> int:
        """Records events taken from the spool, each with its job (`taskhub events ingest`); returns how many were
        new."""
        recorded = self.events.record_spooled([(e.values, e.headers) for e in events], self._enqueue)
        if any(r.job is not None for r in recorded):
            self.queue.committed()
        count_spool("recorded", len(recorded))
        return len(recorded)

    def make_durable(self) -> None:
        """What record_spooled committed survives a power cut, before the mover removes the spool it came from:
        SQLite (synchronous=NORMAL, catalog/db.py) syncs its WAL at checkpoints, not commits, so the WAL is synced
        here (frames a checkpoint already moved are in the database file, which the checkpoint synced);
        PostgreSQL's commits are durable already."""
        database = sqlite_file(self.engine.url)
        if database is None:
            return
        try:
            fd = os.open(f"{database}-wal", os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:  # checkpointed and removed: the database file was synced
            return
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def _sink_listener(self, namespace: str, name: str) -> EventListener | None:
        """The listener the sink answers for, as read at most generation_check_interval seconds ago (upstream's
        sink reads it from an informer's cache, which lags as much); admitting one anew (templates, Go's JSON of
        each) costs a fifth of the sink's time, so it is admitted again only when its manifest changed. The job
        that processes the event reads the listener afresh."""
        key, now = (namespace, name), time.monotonic()
        known = self._listeners.get(key)
        if known is not None and now - known[2] < self.settings.generation_check_interval:
            return known[1]
        manifest = self._listener(namespace, name)
        if manifest is None:
            self._listeners.pop(key, None)
            return None
        if known is not None and known[0] == manifest:
            listener = known[1]
        else:
            parsed = parse_resource(manifest, namespace=namespace)
            assert isinstance(parsed, EventListener)
            listener = parsed
        if len(self._listeners) >= MAX_ADMITTED:
            self._listeners.clear()
        self._listeners[key] = (manifest, listener, now)
        return listener


def incoming_request(
    namespace: str, name: str, method: str, url: str, headers: list[tuple[str, str]], body: bytes, size: int
) -> Incoming:
    return Incoming(LISTENER, namespace, name, method, url, headers, body, size)
