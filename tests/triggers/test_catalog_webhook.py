"""A catalog refreshes on push, end to end: a git commit adding a version, a push event signed as GitHub signs it
sent to the catalog's webhook, and the version served by the hub, with a worker running the queued sync. Pushes
to other branches, other events and bad signatures are recorded and change nothing."""

from __future__ import annotations

import dataclasses
import json
import threading
import time

import pytest
import requests

from hub.app import create_app
from jobs import CATALOG_SYNC, JobQueue, Worker
from jobs.syncs import CatalogSyncer
from tests.catalog.factories import write_version
from tests.catalog.test_sync import git
from tests.conftest import register, served, sync
from tests.triggers.support import github_signature
from triggers.catalog_webhooks import webhook_secret

DEADLINE = 60.0


@pytest.fixture
def pushed_catalog(settings, engine, tmp_path):
    repo = tmp_path / "repo"
    write_version(repo, "hello", "0.1")
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "one")
    register(engine, "team", f"file://{repo}")
    sync(engine, settings, "team")
    return repo


def test_a_signed_push_serves_the_new_version_seconds_later(settings, engine, pushed_catalog):
    app = create_app(dataclasses.replace(settings))
    sealer = app.extensions["taskhub.objects"].sealer
    secret = webhook_secret(engine, sealer, "team")
    assert webhook_secret(engine, sealer, "team") == secret and len(secret) == 40  # made once, kept
    syncer = CatalogSyncer(engine, settings.catalogs_dir, registries=lambda host: None)  # type: ignore[arg-type,return-value]
    worker = Worker(JobQueue(engine), {CATALOG_SYNC.name: syncer.handle}, poll_interval=0.05, grace=5)
    thread = threading.Thread(target=worker.run, daemon=True)
    thread.start()
    try:
        with served(app) as url:
            hook = f"{url}/v1/webhooks/catalogs/team"
            assert requests.get(f"{url}/v1/resource/team/task/hello/0.2", timeout=10).status_code == 404
            write_version(pushed_catalog, "hello", "0.2")
            git(pushed_catalog, "add", "-A")
            git(pushed_catalog, "commit", "-qm", "two")
            body = json.dumps({"ref": "refs/heads/main", "repository": {"default_branch": "main"}}).encode()

            def send(payload: bytes, event: str = "push", key: str = secret) -> requests.Response:
                headers = {"X-GitHub-Event": event, "Content-Type": "application/json",
                           "X-Hub-Signature-256": github_signature(key, payload)}  # fmt: skip
                return requests.post(hook, data=payload, headers=headers, timeout=10)

            bad = send(body, key="not-the-secret")
            assert bad.status_code == 401 and bad.json()["message"] == "payload signature check failed"
            other = send(body.replace(b"refs/heads/main", b"refs/heads/feature"))
            assert other.status_code == 202 and "the catalog follows main; ignored" in other.json()["message"]
            assert send(b'{"zen":"hi"}', event="ping").json()["message"] == "ping is not a push: ignored"
            accepted = send(body)
            assert accepted.status_code == 202 and accepted.json()["job"] is not None
            assert "push to refs/heads/main: sync of team queued as job" in accepted.json()["message"]

            deadline = time.monotonic() + DEADLINE
            while requests.get(f"{url}/v1/resource/team/task/hello/0.2", timeout=10).status_code != 200:
                assert time.monotonic() < deadline, "the pushed version was not served"
                time.sleep(0.05)
            events = requests.get(f"{url}/v1/events?source=catalog", timeout=10).json()["data"]
            assert [(e["httpStatus"], e["status"]) for e in events] == [
                (202, "done"), (202, "done"), (202, "done"), (401, "refused")]  # fmt: skip
    finally:
        worker.request_stop()
        thread.join(timeout=30)


def test_only_git_catalogs_have_a_webhook(settings, engine, fixture_catalog):
    register(engine, "local", fixture_catalog)
    app = create_app(settings)
    with pytest.raises(Exception, match="not a git URL: only git catalogs refresh on push"):
        webhook_secret(engine, app.extensions["taskhub.objects"].sealer, "local")
    answer = app.test_client().post("/v1/webhooks/catalogs/nope", data=b"{}")
    assert answer.status_code == 404 and "nope" in answer.get_json()["message"]
