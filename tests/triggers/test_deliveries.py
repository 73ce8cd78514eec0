"""The delivery-id window: a worker forgets the ids older than it, so the table holds one window's deliveries and
a delivery sent again after the window is processed again; one sent again within it is not."""

from __future__ import annotations

import dataclasses
import threading
import uuid
from datetime import timedelta

from sqlalchemy import select

from catalog.db import make_engine
from catalog.models import utcnow
from hub.services import Services
from tests.jobs.processes import wait_until
from triggers.events import Incoming
from triggers.models import LISTENER, Delivery

TARGET = "listener:ns1/el1"


def incoming(delivery: str) -> Incoming:
    headers = [("Content-Type", "application/json"), ("X-Github-Delivery", delivery)]
    return Incoming(LISTENER, "ns1", "el1", "POST", "/", headers, b"{}", 2)


def test_a_worker_forgets_delivery_ids_older_than_the_window(settings):
    settings = dataclasses.replace(settings, triggers_dedupe_seconds=3600.0)
    engine = make_engine(settings.database_url)
    services = Services(settings, engine)
    events = services.triggers.events
    with engine.begin() as conn:
        conn.execute(Delivery.__table__.insert(), [
            {"target": TARGET, "delivery_id": "old", "event": 1, "seen_at": utcnow() - timedelta(hours=2)},
            {"target": TARGET, "delivery_id": "recent", "event": 2, "seen_at": utcnow() - timedelta(minutes=30)},
        ])  # fmt: skip

    def kept() -> list[str]:
        with engine.connect() as conn:
            return sorted(conn.scalars(select(Delivery.delivery_id)))

    worker = services.worker()
    thread = threading.Thread(target=worker.run, daemon=True)
    thread.start()
    try:
        wait_until(lambda: kept() == ["recent"], "the worker to forget the delivery id older than the window")
    finally:
        worker.request_stop()
        thread.join(timeout=30)
    assert events.accepted(incoming("old"), str(uuid.uuid4())).duplicate_of is None  # processed again
    assert events.accepted(incoming("recent"), str(uuid.uuid4())).duplicate_of == 2
    engine.dispose()
