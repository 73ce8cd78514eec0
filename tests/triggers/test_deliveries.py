"""The delivery-id window: a worker releases the claims older than it, so the index of claims holds one window's
deliveries and a delivery sent again after the window is processed again; one sent again within it is not."""

from __future__ import annotations

import dataclasses
import threading
import uuid
from datetime import timedelta

from sqlalchemy import select, update

from catalog.db import make_engine
from catalog.models import utcnow
from hub.services import Services
from tests.jobs.processes import wait_until
from triggers.events import Incoming
from triggers.models import LISTENER, TriggerEvent


def incoming(delivery: str) -> Incoming:
    headers = [("Content-Type", "application/json"), ("X-Github-Delivery", delivery)]
    return Incoming(LISTENER, "ns1", "el1", "POST", "/", headers, b"{}", 2)


def test_a_worker_forgets_delivery_ids_older_than_the_window(settings):
    settings = dataclasses.replace(settings, triggers_dedupe_seconds=3600.0)
    engine = make_engine(settings.database_url)
    services = Services(settings, engine)
    events = services.triggers.events
    old, recent = (events.accepted(incoming(d), str(uuid.uuid4())).id for d in ("old", "recent"))
    with engine.begin() as conn:  # received two hours and half an hour ago
        for event, age in ((old, timedelta(hours=2)), (recent, timedelta(minutes=30))):
            conn.execute(update(TriggerEvent).where(TriggerEvent.id == event).values(received_at=utcnow() - age))

    def kept() -> list[str]:
        with engine.connect() as conn:
            claimed = select(TriggerEvent.delivery_id).where(TriggerEvent.delivery_claimed)
            return sorted(conn.scalars(claimed))

    worker = services.worker()
    thread = threading.Thread(target=worker.run, daemon=True)
    thread.start()
    try:
        wait_until(lambda: kept() == ["recent"], "the worker to forget the delivery id older than the window")
    finally:
        worker.request_stop()
        thread.join(timeout=30)
    assert events.accepted(incoming("old"), str(uuid.uuid4())).duplicate_of is None  # processed again
    assert events.accepted(incoming("recent"), str(uuid.uuid4())).duplicate_of == recent
    engine.dispose()


def test_a_claim_older_than_the_window_goes_to_the_next_delivery_before_any_worker_releases_it(settings):
    engine = make_engine(dataclasses.replace(settings, triggers_dedupe_seconds=3600.0).database_url)
    events = Services(dataclasses.replace(settings, triggers_dedupe_seconds=3600.0), engine).triggers.events
    first = events.accepted(incoming("stale"), str(uuid.uuid4())).id
    assert events.accepted(incoming("stale"), str(uuid.uuid4())).duplicate_of == first  # within the window
    with engine.begin() as conn:
        conn.execute(
            update(TriggerEvent).where(TriggerEvent.id == first).values(received_at=utcnow() - timedelta(hours=2))
        )
    again = events.accepted(incoming("stale"), str(uuid.uuid4()))
    assert again.duplicate_of is None  # processed again: it holds the delivery now
    assert events.accepted(incoming("stale"), str(uuid.uuid4())).duplicate_of == again.id
    engine.dispose()
