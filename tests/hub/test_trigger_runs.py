"""The runs a Triggers event creates go through the run service, as POST /v1/runs: recorded, queued as `run` jobs
that a worker runs, and only on the backends the operator accepts for runs nobody started at a command line."""

from __future__ import annotations

import dataclasses
from typing import Any

from flask import Flask

from catalog.manifests import load_documents
from hub.app import create_app
from hub.objects import ObjectService
from tests.hub.workers import job_ended, working
from tests.jobs.processes import wait_until
from tests.triggers.test_acceptance_providers import GITHUB, GITHUB_BODY, github_headers


def processed_event(app: Flask) -> dict[str, Any]:
    """A signed GitHub pull request sent to the sink, as GET /v1/events shows it once its job is done."""
    objects = ObjectService(app.extensions["taskhub.objects"])
    objects.apply(load_documents(GITHUB), namespace="ns1")
    objects.create_secret("github-secret", {"secretToken": "1234567"}, namespace="ns1")
    client = app.test_client()
    sent = client.post("/v1/listeners/ns1/github-listener", data=GITHUB_BODY, headers=github_headers())
    assert sent.status_code == 202, sent.get_data(as_text=True)

    def done() -> dict[str, Any] | None:
        event: dict[str, Any] = client.get(f"/v1/events/{sent.get_json()['eventID']}").get_json()["data"]
        return event if event["status"] not in ("queued", "processing") else None

    return wait_until(done, "the event to be processed")


def test_an_events_run_is_queued_and_run_by_the_worker(settings):
    app = create_app(dataclasses.replace(settings, public_runs=True))
    with working(app):
        event = processed_event(app)
        (outcome,) = event["outcomes"]
        (created,) = outcome["created"]
        assert outcome["status"] == "created" and created["kind"] == "TaskRun"
        job = job_ended(app.test_client(), f"/v1/jobs/{created['job']}")
        assert (job["kind"], job["target"], job["state"]) == ("run", str(created["run"]), "succeeded")
        run = app.test_client().get(f"/v1/runs/{created['run']}").get_json()["data"]
        assert (run["status"], run["backend"], run["namespace"]) == ("Succeeded", "local", "ns1")
        assert run["createdBy"] == "el:ns1/github-listener"


def test_an_event_creates_no_run_on_a_backend_the_operator_keeps_off(settings):
    app = create_app(dataclasses.replace(settings, api_run_backends="kubernetes"))
    with working(app):
        (outcome,) = processed_event(app)["outcomes"]
    assert outcome["status"] == "failed" and outcome["created"] == []
    assert outcome["reason"].startswith("problem creating obj: this hub does not run local runs through the API")
    assert app.extensions["taskhub.runs"].recent()[1] == 0
