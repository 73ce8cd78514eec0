"""A hub served over real HTTP with a worker taking `trigger-event` jobs: events go to the sink as providers send
them, and the test reads back what a user would see (GET /v1/events, the run records). The sink spools accepted
events and a mover records them, as under `taskhub serve` on a SQLite database (triggers/spool.py)."""

from __future__ import annotations

import dataclasses
import http.client
import threading
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests

from catalog.manifests import load_documents
from hub.app import create_app
from hub.objects import ObjectService
from jobs import TRIGGER_EVENT, JobQueue, Worker
from runner.records import RunRecords
from tests.conftest import served
from triggers.spool import SpoolMover

DEADLINE = 60.0  # how long an event may take to be processed before the test gives up (a failure, not a margin)


class Hub:
    def __init__(self, app: Any, url: str) -> None:
        self.app, self.url = app, url
        self.service = app.extensions["taskhub.triggers"]
        self.objects = ObjectService(app.extensions["taskhub.objects"])
        self.records = RunRecords(app.extensions["taskhub.engine"])

    def apply(self, text: str, namespace: str = "ns1") -> None:
        self.objects.apply(load_documents(text), namespace=namespace)

    def secret(self, name: str, values: dict[str, str], namespace: str = "ns1") -> None:
        self.objects.create_secret(name, values, namespace=namespace)

    def send(
        self, listener: str, body: bytes, headers: list[tuple[str, str]] | None = None, *, path: str = "",
        method: str = "POST", namespace: str = "ns1",
    ) -> tuple[int, bytes]:  # fmt: skip
        """A request sent with http.client, so a header may repeat as providers may send it."""
        parts = urlsplit(self.url)
        conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
        try:
            conn.putrequest(method, f"/v1/listeners/{namespace}/{listener}{path}")
            for name, value in headers or []:
                conn.putheader(name, value)
            conn.putheader("Content-Length", str(len(body)))
            conn.endheaders(body)
            response = conn.getresponse()
            return response.status, response.read()
        finally:
            conn.close()

    def event(self, key: str | int) -> dict[str, Any]:
        """The event as GET /v1/events/{key} shows it, once its job is done."""
        deadline = time.monotonic() + DEADLINE
        while True:
            response = requests.get(f"{self.url}/v1/events/{key}", timeout=10)
            if response.status_code == 404 and time.monotonic() < deadline:  # still in the spool
                time.sleep(0.02)
                continue
            shown = response.json()["data"]
            if shown["status"] not in ("queued", "processing") or time.monotonic() > deadline:
                return shown
            time.sleep(0.02)

    def runs(self, event: dict[str, Any]) -> list[dict[str, Any]]:
        """The objects of the runs the event created, as recorded."""
        out = []
        for outcome in event["outcomes"]:
            for created in outcome["created"]:
                detail = self.records.get(created["run"])
                assert detail is not None
                out.append(detail.object)
        return out


@pytest.fixture
def hub(settings, tmp_path) -> Iterator[Hub]:
    """The hub over HTTP, custom interceptors reachable on loopback, its spool's mover, and a worker for trigger
    events."""
    spool = tmp_path / "spool"
    app = create_app(
        dataclasses.replace(settings, triggers_interceptor_networks="127.0.0.0/8", triggers_spool=str(spool))
    )
    service = app.extensions["taskhub.triggers"]
    worker = Worker(JobQueue(app.extensions["taskhub.engine"]), {TRIGGER_EVENT.name: service.processor.handle},
                    poll_interval=0.05, grace=5)  # fmt: skip
    mover = SpoolMover(spool, service.spool_cipher(), service.record_spooled)
    stopping = threading.Event()

    def follow() -> None:
        while not stopping.is_set():
            mover.follow()

    threads = [threading.Thread(target=worker.run, daemon=True), threading.Thread(target=follow, daemon=True)]
    for thread in threads:
        thread.start()
    try:
        with served(app) as url:
            yield Hub(app, url)
    finally:
        worker.request_stop()
        stopping.set()
        mover.interrupt()
        for thread in threads:
            thread.join(timeout=30)
        mover.close()


def labels(obj: dict[str, Any]) -> dict[str, str]:
    return {k: v for k, v in obj["metadata"]["labels"].items() if k.startswith("triggers.tekton.dev/")}


def params(obj: dict[str, Any]) -> dict[str, Any]:
    return {p["name"]: p["value"] for p in obj["spec"]["params"]}
