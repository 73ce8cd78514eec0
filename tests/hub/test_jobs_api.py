"""The jobs API (/v1/jobs) as a client uses it: read what it queued, with the token that queued it; list with
filters and pages; cancel with the scope of the job's kind."""

from __future__ import annotations

import dataclasses

import pytest
from flask import Flask

from hub.app import create_app
from jobs import CATALOG_SYNC, PUBLISH, RUN
from tests.hub.test_auth import bearer, issue
from tests.hub.test_tekton_api import assert_goa_error
from tests.hub.workers import job_ended, working


@pytest.fixture
def jobs_app(settings, indexed) -> Flask:
    return create_app(dataclasses.replace(settings, token_cache_seconds=0))


def queue(app: Flask):
    return app.extensions["taskhub.services"].queue


def test_jobs_are_read_with_runs_read_or_the_scope_of_their_kind(jobs_app):
    client = jobs_app.test_client()
    sync = queue(jobs_app).enqueue(CATALOG_SYNC, "tekton").id
    run = queue(jobs_app).enqueue(RUN, "7").id
    assert_goa_error(client.get("/v1/jobs"), 401, "missing-token", "jobs are not public on this hub")
    assert_goa_error(client.get(f"/v1/jobs/{sync}"), 401, "missing-token")
    nobody = bearer(issue(jobs_app, "reader", "read"))
    assert_goa_error(client.get("/v1/jobs", headers=nobody), 403, "invalid-scopes", "lacks the 'runs:read' scope")

    auditor = bearer(issue(jobs_app, "auditor", "runs:read"))
    listed = client.get("/v1/jobs", headers=auditor)
    assert [j["id"] for j in listed.get_json()["data"]] == [run, sync]
    assert listed.headers["Pagination-Total-Count"] == "2" and listed.headers["Cache-Control"] == "no-store"
    shown = client.get(f"/v1/jobs/{run}", headers=auditor).get_json()["data"]
    assert (shown["kind"], shown["target"], shown["state"], shown["links"]["run"]) == (
        "run",
        "7",
        "queued",
        "/v1/runs/7",
    )

    refresher = bearer(issue(jobs_app, "ci", "catalog:refresh"))  # sees the syncs it may queue, nothing else
    assert [j["id"] for j in client.get("/v1/jobs", headers=refresher).get_json()["data"]] == [sync]
    assert client.get(f"/v1/jobs/{sync}", headers=refresher).status_code == 200
    assert_goa_error(client.get(f"/v1/jobs/{run}", headers=refresher), 404, "not-found", f"job {run} not found")
    assert_goa_error(client.get("/v1/jobs?kind=run", headers=refresher), 403, "invalid-scopes", "'runs:write'")

    public = create_app(dataclasses.replace(jobs_app.config["TASKHUB"], public_runs=True)).test_client()
    assert public.get(f"/v1/jobs/{run}").status_code == 200


def test_jobs_are_listed_by_kind_state_and_target_a_page_at_a_time(jobs_app):
    ids = [queue(jobs_app).enqueue(PUBLISH, f"cat-{n}", {"registry": "r.example/x"}).id for n in range(3)]
    sync = queue(jobs_app).enqueue(CATALOG_SYNC, "tekton").id
    queue(jobs_app).cancel(ids[0])
    client, auditor = jobs_app.test_client(), bearer(issue(jobs_app, "auditor", "runs:read"))

    def listed(query: str) -> list[int]:
        answer = client.get(f"/v1/jobs?{query}", headers=auditor)
        assert answer.status_code == 200, answer.get_data(as_text=True)
        return [job["id"] for job in answer.get_json()["data"]]

    assert listed("kind=publish") == ids[::-1]
    assert listed("kind=publish&state=queued") == ids[:0:-1]
    assert listed("state=cancelled") == [ids[0]]
    assert listed("target=tekton") == [sync]
    assert listed("limit=2") == [sync, ids[2]] and listed("limit=2&offset=2") == [ids[1], ids[0]]
    for bad in ("kind=nope", "state=done", "limit=0", "limit=101", "offset=-1", "limit=x"):
        assert client.get(f"/v1/jobs?{bad}", headers=auditor).status_code == 400, bad
    assert_goa_error(client.get("/v1/jobs/99999999999", headers=auditor), 404, "not-found")


def test_a_job_is_cancelled_with_the_scope_of_its_kind(jobs_app):
    client = jobs_app.test_client()
    sync = queue(jobs_app).enqueue(CATALOG_SYNC, "tekton").id
    other = queue(jobs_app).enqueue(CATALOG_SYNC, "other").id
    assert_goa_error(client.post(f"/v1/jobs/{sync}/cancel"), 401, "missing-token")
    runner = bearer(issue(jobs_app, "runner", "runs:write"))  # reads every job, cancels runs only
    assert_goa_error(client.post(f"/v1/jobs/{sync}/cancel", headers=runner), 403, "invalid-scopes", "catalog:refresh")

    refresher = bearer(issue(jobs_app, "ci", "catalog:refresh"))
    cancelled = client.post(f"/v1/jobs/{sync}/cancel", headers=refresher)
    assert cancelled.status_code == 202 and cancelled.get_json()["data"]["state"] == "cancelled"
    again = client.post(f"/v1/jobs/{sync}/cancel", headers=refresher)
    assert_goa_error(again, 409, "conflict", f"job {sync} already ended: cancelled")
    assert_goa_error(client.post("/v1/jobs/4242/cancel", headers=refresher), 404, "not-found")
    with working(jobs_app):  # the other one is done; the cancelled one never ran
        assert job_ended(client, f"/v1/jobs/{other}", refresher)["state"] == "failed"  # no catalog "other"
    assert queue(jobs_app).get(sync).state == "cancelled" and queue(jobs_app).get(sync).attempts == 0
