"""A hub's job worker in the test process, as `taskhub serve` runs one beside the hub, and waiting for its jobs."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from flask import Flask
from flask.testing import FlaskClient

from jobs import Worker
from tests.jobs.processes import wait_until

ENDED = ("succeeded", "failed", "cancelled", "abandoned")


@contextmanager
def working(app: Flask, concurrency: int = 4) -> Iterator[Worker]:
    """The app's worker (hub.services) on a thread until the block ends; jobs still running are then cancelled
    (grace 0), so no run outlives its test. No scheduler: the tests queue what they want done."""
    worker = app.extensions["taskhub.services"].worker(concurrency=concurrency)
    worker.poll_interval, worker.grace, worker.periodic = 0.05, 0.0, []
    thread = threading.Thread(target=worker.run, name="test-worker", daemon=True)
    thread.start()
    try:
        yield worker
    finally:
        worker.request_stop()
        thread.join(60)
        assert not thread.is_alive(), "the worker did not stop"


def job_ended(client: FlaskClient, location: str, headers: dict[str, str] | None = None) -> dict[str, Any]:
    """The job at `location` (/v1/jobs/ID) once it has ended, as the API shows it."""

    def ended() -> dict[str, Any] | None:
        answer = client.get(location, headers=headers or {})
        assert answer.status_code == 200, answer.get_data(as_text=True)
        job: dict[str, Any] = answer.get_json()["data"]
        return job if job["state"] in ENDED else None

    return wait_until(ended, f"{location} to end")
