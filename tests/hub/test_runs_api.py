"""The runs API as a client uses it: start a run with a runs:write token, poll it to its end, read its logs, cancel."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator
from typing import Any

import pytest
import yaml
from flask import Flask
from flask.testing import FlaskClient

from hub.app import create_app
from hub.config import Settings
from tests.hub.test_auth import bearer, issue
from tests.hub.workers import job_ended, working
from tests.jobs.processes import wait_until

RUN: dict[str, Any] = {
    "apiVersion": "tekton.dev/v1",
    "kind": "PipelineRun",
    "metadata": {"generateName": "api-run-"},
    "spec": {
        "pipelineSpec": {
            "tasks": [
                {"name": "build", "taskSpec": {"steps": [
                    {"name": "compile", "image": "alpine", "script": "echo compiling\necho built"}]}},
                {"name": "test", "runAfter": ["build"], "taskSpec": {"steps": [
                    {"name": "unit", "image": "alpine", "script": "echo testing; sleep $(params.pause)"}],
                    "params": [{"name": "pause", "default": "0"}]}},
            ]
        }
    },
}  # fmt: skip
FINISHED = ("Succeeded", "Failed", "Cancelled")


def run_with(pause: str = "0", **changes: Any) -> dict[str, Any]:
    run = yaml.safe_load(yaml.safe_dump(RUN))
    run["spec"]["pipelineSpec"]["tasks"][1]["params"] = [{"name": "pause", "value": pause}]
    run.update(changes)
    return run


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """A hub whose operator made run records public (access to them is tested in test_runs_access.py)."""
    return dataclasses.replace(settings, public_runs=True)


@pytest.fixture
def runs_app(app: Flask) -> Iterator[Flask]:
    with working(app):  # the worker `taskhub serve` runs; no run outlives its test (and its database)
        yield app


def run_link(started: Any) -> str:
    """The run's own record, from the 202 of POST /v1/runs (whose Location is its job)."""
    return str(started.get_json()["data"]["links"]["self"])


@pytest.fixture
def http(runs_app: Flask) -> FlaskClient:
    return runs_app.test_client()


@pytest.fixture
def writer(runs_app: Flask) -> dict[str, str]:
    return bearer(issue(runs_app, "ci", "runs:write"))


def wait_for_end(
    http: FlaskClient, location: str, seconds: float = 30, headers: dict[str, str] | None = None
) -> dict[str, Any]:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        answer = http.get(location, headers=headers or {})
        assert answer.status_code == 200
        data = answer.get_json()["data"]
        if data["status"] in FINISHED:
            return data
        time.sleep(0.1)
    raise AssertionError(f"{location} did not end in {seconds} s")


def test_starting_a_run_needs_a_token_with_runs_write(http: FlaskClient, runs_app: Flask) -> None:
    anonymous = http.post("/v1/runs", json=run_with())
    assert anonymous.status_code == 401 and anonymous.headers["WWW-Authenticate"].startswith("Bearer")
    assert "runs:write" in anonymous.get_json(force=True)["message"]
    reader = bearer(issue(runs_app, "reader", "read"))
    refused = http.post("/v1/runs", json=run_with(), headers=reader)
    assert refused.status_code == 403 and "runs:write" in refused.get_json(force=True)["message"]
    assert http.post("/v1/runs/1/cancel", headers=reader).status_code == 403
    assert http.get("/v1/runs").headers["Pagination-Total-Count"] == "0"  # nothing was recorded


def test_a_run_is_accepted_at_once_then_polled_to_success_with_its_tasks_and_logs(
    http: FlaskClient, writer: dict[str, str]
) -> None:
    started = http.post("/v1/runs", json=run_with(), headers=writer)
    assert started.status_code == 202, started.get_data(as_text=True)
    body = started.get_json()["data"]
    location = run_link(started)
    assert location == f"/v1/runs/{body['id']}" and started.headers["Location"] == f"/v1/jobs/{body['job']}"
    assert body["links"]["job"] == started.headers["Location"]
    assert body["status"] in ("Pending", "Running") and body["createdBy"] == "ci" and body["backend"] == "local"

    done = wait_for_end(http, location)
    assert done["status"] == "Succeeded", done
    assert done["name"].startswith("api-run-") and done["startedAt"] and done["completedAt"]
    assert [(t["task"], t["status"]) for t in done["tasks"]] == [("build", "Succeeded"), ("test", "Succeeded")]
    assert done["children"][0]["metadata"]["labels"]["tekton.dev/pipelineTask"] == "build"
    assert done["object"]["status"]["conditions"][0]["reason"] == "Succeeded"

    logs = http.get(done["links"]["logs"]).get_json()["data"]
    assert [(c["task"], c["step"], c["text"]) for c in logs] == [
        ("build", "compile", "compiling\nbuilt\n"),
        ("test", "unit", "testing\n"),
    ]
    only = http.get(f"{location}/logs?task=test").get_json()["data"]
    assert [c["container"] for c in only] == ["step-unit"]
    text = http.get(f"{location}/logs", headers={"Accept": "text/plain"})
    assert text.mimetype == "text/plain" and "[build : compile] built\n" in text.get_data(as_text=True)
    assert http.get(f"{location}/logs?format=text").get_data(as_text=True) == text.get_data(as_text=True)

    listing = http.get("/v1/runs?status=Succeeded")
    assert listing.headers["Pagination-Total-Count"] == "1" and listing.headers["Cache-Control"] == "no-store"
    assert [r["id"] for r in listing.get_json()["data"]] == [body["id"]]
    assert http.get("/v1/runs?status=Failed").get_json()["data"] == []
    job = job_ended(http, started.headers["Location"], writer)
    assert (job["kind"], job["target"], job["state"]) == ("run", str(body["id"]), "succeeded")
    assert job["result"] == {"run": body["id"], "status": "Succeeded", "reason": "Succeeded"}


def test_a_yaml_body_is_accepted_and_a_failing_step_ends_the_run_failed(
    http: FlaskClient, writer: dict[str, str]
) -> None:
    failing = run_with()
    failing["spec"]["pipelineSpec"]["tasks"][0]["taskSpec"]["steps"][0]["script"] = "echo broken >&2; exit 4"
    started = http.post(
        "/v1/runs", data=yaml.safe_dump(failing), headers={**writer, "Content-Type": "application/yaml"}
    )
    assert started.status_code == 202, started.get_data(as_text=True)
    done = wait_for_end(http, run_link(started))
    assert done["status"] == "Failed"
    assert [(t["task"], t["status"]) for t in done["tasks"]] == [("build", "Failed"), ("test", "Skipped")]
    logs = http.get(f"{run_link(started)}/logs").get_json()["data"]
    assert logs[0]["text"] == "broken\n"


def test_an_unresolvable_reference_is_accepted_and_ends_failed_with_the_reason(
    http: FlaskClient, writer: dict[str, str]
) -> None:
    run = run_with()
    run["spec"]["pipelineSpec"]["tasks"][0] = {
        "name": "build",
        "taskRef": {"resolver": "hub", "params": [{"name": "name", "value": "no-such-task"}]},
    }
    started = http.post("/v1/runs", json=run, headers=writer)
    assert started.status_code == 202
    done = wait_for_end(http, run_link(started))
    assert (done["status"], done["reason"]) == ("Failed", "ResolutionFailed")
    assert done["message"].startswith("spec.pipelineSpec.tasks[build].taskRef:")


def test_cancelling_a_sleeping_run_ends_it_cancelled(http: FlaskClient, writer: dict[str, str]) -> None:
    started = http.post("/v1/runs", json=run_with(pause="120"), headers=writer)
    location = run_link(started)
    deadline = time.monotonic() + 20
    while "testing" not in http.get(f"{location}/logs?format=text").get_data(as_text=True):
        assert time.monotonic() < deadline, "the sleeping step never started"
        time.sleep(0.1)
    cancelled = http.post(f"{location}/cancel", headers=writer)
    assert cancelled.status_code == 202 and cancelled.get_json()["data"]["cancelRequested"] is True
    began = time.monotonic()
    done = wait_for_end(http, location, seconds=20)
    assert time.monotonic() - began < 10
    assert done["status"] == "Cancelled"
    assert {t["task"]: t["status"] for t in done["tasks"]} == {"build": "Succeeded", "test": "Cancelled"}
    again = http.post(f"{location}/cancel", headers=writer)
    assert again.status_code == 409 and "already ended: Cancelled" in again.get_json(force=True)["message"]


@pytest.mark.parametrize("path", ["/v1/runs/4242", "/v1/runs/4242/logs", "/v1/runs/99999999999"])
def test_unknown_runs_are_404_in_the_api_error_shape(http: FlaskClient, path: str) -> None:
    answer = http.get(path)
    assert answer.status_code == 404 and answer.mimetype == "application/json"
    assert answer.get_json(force=True)["name"] == "not-found"


def test_cancel_of_an_unknown_run_is_404(http: FlaskClient, writer: dict[str, str]) -> None:
    assert http.post("/v1/runs/4242/cancel", headers=writer).status_code == 404


@pytest.mark.parametrize(
    ("body", "content_type", "message"),
    [
        ('{"kind": "Task", "apiVersion": "tekton.dev/v1"}', "application/json", "not a run"),
        ("{not json", "application/json", "not JSON"),
        ("kind: [", "application/yaml", "not YAML"),
        ("a: &x [1]\nb: *x\n", "application/yaml", "aliases are not accepted"),
        ('{"kind": "TaskRun", "apiVersion": "v1", "spec": {}}', "application/json", "expected tekton.dev"),
        ('{"kind": "TaskRun", "apiVersion": "tekton.dev/v1", "metadata": {"name": "Bad_Name"}, "spec": {}}',
         "application/json", "not a valid Kubernetes name"),
        ('{"kind": "TaskRun", "apiVersion": "tekton.dev/v1", "metadata": {"name": "a\\u0000"}, "spec": {}}',
         "application/json", "not a valid Kubernetes name"),
    ],
)  # fmt: skip
def test_a_body_that_is_not_a_run_is_400_with_the_reason(
    http: FlaskClient, writer: dict[str, str], body: str, content_type: str, message: str
) -> None:
    answer = http.post("/v1/runs", data=body, headers={**writer, "Content-Type": content_type})
    assert answer.status_code == 400, answer.get_data(as_text=True)
    assert message in answer.get_json(force=True)["message"]
    assert http.get("/v1/runs").headers["Pagination-Total-Count"] == "0"


@pytest.mark.parametrize(
    ("query", "message"),
    [("passThrough=true", "passThrough leaves references to a cluster's resolvers, and this hub runs API runs "
                          "locally (TASKHUB_RUN_BACKEND=local)"),
     ("passThrough=yes", "passThrough must be true or false")],
)  # fmt: skip
def test_pass_through_is_for_a_cluster_and_true_or_false(
    http: FlaskClient, writer: dict[str, str], query: str, message: str
) -> None:
    answer = http.post(f"/v1/runs?{query}", json=run_with(), headers=writer)
    assert answer.status_code == 400, answer.get_data(as_text=True)
    assert answer.get_json()["message"] == message
    assert http.get("/v1/runs").headers["Pagination-Total-Count"] == "0"


def test_an_oversized_body_is_413(http: FlaskClient, writer: dict[str, str]) -> None:
    run = run_with()
    run["metadata"]["annotations"] = {"padding": "x" * (2 * 1024 * 1024)}
    answer = http.post("/v1/runs", json=run, headers=writer)
    assert answer.status_code == 413
    assert http.get("/v1/runs").headers["Pagination-Total-Count"] == "0"


def test_a_body_of_another_media_type_is_415(http: FlaskClient, writer: dict[str, str]) -> None:
    answer = http.post("/v1/runs", data="kind: TaskRun", headers={**writer, "Content-Type": "text/plain"})
    assert answer.status_code == 415
    assert answer.get_json(force=True)["name"] == "unsupported-media-type"
    assert http.get("/v1/runs").headers["Pagination-Total-Count"] == "0"


@pytest.mark.parametrize("query", ["limit=0", "limit=101", "limit=x", "offset=-1", "status=Bogus"])
def test_list_parameters_out_of_bounds_are_400(http: FlaskClient, query: str) -> None:
    assert http.get(f"/v1/runs?{query}").status_code == 400


def test_a_private_hub_needs_a_read_token_to_read_runs(runs_app: Flask, settings: Any) -> None:
    private = create_app(dataclasses.replace(settings, private=True, token_cache_seconds=0))
    http = private.test_client()
    assert http.get("/v1/runs").status_code == 401
    assert http.get("/v1/runs", headers=bearer(issue(private, "reader", "read"))).status_code == 200


def test_runs_beyond_the_workers_wait_pending_and_a_cancel_ends_them_before_they_start(settings: Any) -> None:
    app = create_app(settings)
    http, writer = app.test_client(), bearer(issue(app, "ci", "runs:write"))
    with working(app, concurrency=1):
        first = http.post("/v1/runs", json=run_with(pause="120"), headers=writer)
        wait_until(lambda: http.get(first.headers["Location"]).get_json()["data"]["state"] == "running", "a start")
        second = http.post("/v1/runs", json=run_with(), headers=writer)
        assert http.get(run_link(second)).get_json()["data"]["status"] == "Pending"
        assert http.post(f"{run_link(second)}/cancel", headers=writer).status_code == 202
        queued = http.get(run_link(second)).get_json()["data"]  # ended at once: no worker had it
        assert (queued["status"], queued["message"], queued["startedAt"]) == (
            "Cancelled", "cancelled before it started", None,
        )  # fmt: skip
        assert http.get(second.headers["Location"]).get_json()["data"]["state"] == "cancelled"
        assert http.post(f"{run_link(first)}/cancel", headers=writer).status_code == 202
        assert wait_for_end(http, run_link(first))["status"] == "Cancelled"
        assert job_ended(http, first.headers["Location"])["state"] == "cancelled"
