"""Who may start and read runs: run records are not public unless the operator says so (TASKHUB_PUBLIC_RUNS), and
the API runs only on the backends the operator accepts (TASKHUB_API_RUN_BACKENDS: local only on loopback by
default) and only where this host can isolate local runs."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import pytest
from flask import Flask

from hub.app import create_app
from hub.config import Settings
from runner.local import sandbox
from tests.hub.test_auth import bearer, issue
from tests.hub.test_runs_api import run_with, wait_for_end
from tests.hub.workers import working


def hub(settings: Settings, **changes: object) -> Iterator[Flask]:
    app = create_app(dataclasses.replace(settings, **changes))
    with working(app):
        yield app


@pytest.fixture
def closed(settings: Settings) -> Iterator[Flask]:
    """A hub with the default settings: run records need a token."""
    yield from hub(settings)


@pytest.fixture
def public(settings: Settings) -> Iterator[Flask]:
    yield from hub(settings, public_runs=True)


def start(app: Flask) -> str:
    answer = app.test_client().post("/v1/runs", json=run_with(), headers=bearer(issue(app, "ci", "runs:write")))
    assert answer.status_code == 202, answer.get_json()
    return str(answer.get_json()["data"]["links"]["self"])


def test_run_params_and_logs_need_a_runs_read_token_by_default(closed: Flask) -> None:
    location = start(closed)
    http = closed.test_client()
    reader, catalog_reader = bearer(issue(closed, "auditor", "runs:read")), bearer(issue(closed, "ro", "read"))
    assert wait_for_end(http, location, headers=reader)["status"] == "Succeeded"
    for path in ("/v1/runs", location, f"{location}/logs", "/runs", location.replace("/v1", "")):
        anonymous = http.get(path)
        assert anonymous.status_code == 401, path
        assert "runs:read" in anonymous.get_data(as_text=True)
        assert http.get(path, headers=catalog_reader).status_code == 403, path
        assert http.get(path, headers=reader).status_code == 200, path
    logs = http.get(f"{location}/logs?format=text", headers=reader).get_data(as_text=True)
    assert "compiling" in logs


def test_a_browser_signs_in_with_a_runs_read_token_to_see_the_run_pages(closed: Flask) -> None:
    start(closed)
    browser = closed.test_client()
    refused = browser.get("/runs", headers={"Accept": "text/html"})
    assert refused.status_code == 401 and 'name="token"' in refused.get_data(as_text=True)  # the login form
    token = issue(closed, "auditor", "runs:read")
    assert browser.post("/login", data={"token": token, "next": "/runs"}).status_code == 302
    assert browser.get("/runs", headers={"Accept": "text/html"}).status_code == 200
    assert browser.get("/v1/runs").status_code == 401  # the API takes the token in a header, never the cookie


def test_the_operator_can_make_run_records_public(public: Flask) -> None:
    location = start(public)
    http = public.test_client()
    assert wait_for_end(http, location)["status"] == "Succeeded"
    assert "compiling" in http.get(f"{location}/logs?format=text").get_data(as_text=True)


@pytest.mark.parametrize(
    ("listen", "accepted", "allowed"),
    [("127.0.0.1", "auto", True), ("::1", "auto", True), ("0.0.0.0", "auto", False),
     ("hub.example.com", "auto", False), ("0.0.0.0", "local", True), ("127.0.0.1", "kubernetes", False)],
)  # fmt: skip
def test_local_api_runs_are_off_when_the_hub_listens_beyond_loopback_unless_the_operator_lists_them(
    settings: Settings, listen: str, accepted: str, allowed: bool
) -> None:
    for app in hub(settings, listen_host=listen, api_run_backends=accepted):
        answer = app.test_client().post("/v1/runs", json=run_with(), headers=bearer(issue(app, "ci", "runs:write")))
        if allowed:
            assert answer.status_code == 202
        else:
            assert answer.status_code == 503
            assert "TASKHUB_API_RUN_BACKENDS" in answer.get_json(force=True)["message"]


def test_the_api_refuses_local_runs_with_the_reason_where_the_host_cannot_isolate_them(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    # What a host without bubblewrap says; the probe itself is tried for real by every other local run.
    monkeypatch.setattr(sandbox.shutil, "which", lambda name, *args, **kwargs: None)
    sandbox.unavailable_reason.cache_clear()
    try:
        for app in hub(settings):
            answer = app.test_client().post("/v1/runs", json=run_with(), headers=bearer(issue(app, "ci", "runs:write")))
            assert answer.status_code == 503
            assert answer.get_json(force=True)["message"] == (
                "local runs cannot be isolated on this host: bubblewrap (bwrap) is not installed; "
                "on Debian: apt-get install bubblewrap"
            )
    finally:
        sandbox.unavailable_reason.cache_clear()


def test_settings_refuse_an_unknown_api_backend(settings: Settings) -> None:
    with pytest.raises(ValueError, match="TASKHUB_API_RUN_BACKENDS='local,docker'"):
        dataclasses.replace(settings, api_run_backends="local,docker")
