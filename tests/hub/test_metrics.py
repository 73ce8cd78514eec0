"""/metrics after real traffic: HTTP requests by route and status, syncs, registry requests and the resolver's
caches, jobs, runs and trigger events, as a Prometheus server scraping the hub reads them."""

from __future__ import annotations

import contextlib
import re
import threading
import urllib.request
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy.orm import Session

from catalog.errors import TaskhubError
from catalog.sync import add_catalog, sync_by_name
from hub.app import create_app
from jobs import JobKind, JobQueue, Worker
from runner.records import RunRecords
from tests.hub.test_auth import bearer, issue
from tests.hub.test_resolve_api import bundles as bundles  # the fixture
from tests.hub.test_resolve_api import resolve
from tests.test_cli import run as run  # the fixture
from tests.test_cli import serving

SQLITE_ONLY = pytest.mark.parametrize("empty_database_url", ["sqlite"], indirect=True)

README = Path(__file__).resolve().parents[2] / "README.md"


def scrape(client, headers=None) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample of /metrics: (name, labels) -> value."""
    answer = client.get("/metrics", headers=headers or {})
    assert answer.status_code == 200, answer.data
    assert answer.mimetype == "text/plain" and answer.headers["Cache-Control"] == "no-store"
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(answer.get_data(as_text=True))
        for sample in family.samples
    }


def value(samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def test_http_requests_are_counted_by_route_and_status_with_latencies(client):
    before = scrape(client)
    for _ in range(3):
        assert client.get("/v1/resource/tekton/task/git-clone").status_code == 200
    assert client.get("/v1/resource/tekton/task/no-such-task").status_code == 404
    assert client.get("/no/such/page/at/all").status_code == 404
    assert client.get("/livez").status_code == 200
    assert client.post("/v1/listeners/ns1/no-such-listener", json={}).status_code == 404  # a receiver's own app
    after = scrape(client)
    route = "/v1/resource/<catalog>/<kind>/<name>"
    requests = "taskhub_http_requests_total"
    assert (
        value(after, requests, method="GET", route=route, code="200")
        - value(before, requests, method="GET", route=route, code="200")
        == 3
    )
    assert (
        value(after, requests, method="GET", route=route, code="404")
        - value(before, requests, method="GET", route=route, code="404")
        == 1
    )
    assert value(after, requests, method="GET", route="unmatched", code="404") >= 1
    assert value(after, requests, method="GET", route="/livez", code="200") >= 1
    sink = "/v1/listeners/<namespace>/<name>"
    assert (
        value(after, requests, method="POST", route=sink, code="404")
        - value(before, requests, method="POST", route=sink, code="404")
        == 1
    )
    latency = "taskhub_http_request_duration_seconds_count"
    assert value(after, latency, method="GET", route=route) - value(before, latency, method="GET", route=route) == 4
    assert value(after, "taskhub_http_request_duration_seconds_bucket", method="GET", route=route, le="+Inf") >= 4
    assert not any("/no/such" in dict(labels).get("route", "") for _, labels in after)


def test_a_private_hub_wants_a_read_token_for_its_metrics(settings, indexed):
    import dataclasses

    app = create_app(dataclasses.replace(settings, private=True, token_cache_seconds=0))
    client = app.test_client()
    assert client.get("/metrics").status_code == 401
    assert value(scrape(client, bearer(issue(app, "prometheus", "read"))), "taskhub_http_requests_total",
                 method="GET", route="/metrics", code="401") >= 1  # fmt: skip


def test_syncs_count_their_outcome_duration_versions_and_problems(client, engine, settings, fixture_catalog, tmp_path):
    with Session(engine) as session, session.begin():
        add_catalog(session, "metered", str(fixture_catalog))
    before = scrape(client)
    summary = sync_by_name(engine, "metered", settings.catalogs_dir, registries=lambda host: None)  # type: ignore[arg-type,return-value]
    with Session(engine) as session, session.begin():
        add_catalog(session, "vanishing", str(tmp_path / "not-there"))
    with contextlib.suppress(TaskhubError):
        sync_by_name(engine, "vanishing", settings.catalogs_dir, registries=lambda host: None)  # type: ignore[arg-type,return-value]
    after = scrape(client)
    labels = {"catalog": "metered", "kind": "catalog"}
    syncs = "taskhub_catalog_syncs_total"
    assert value(after, syncs, **labels, outcome="success") - value(before, syncs, **labels, outcome="success") == 1
    assert value(after, syncs, catalog="vanishing", kind="catalog", outcome="failure") >= 1
    assert value(after, "taskhub_catalog_sync_duration_seconds_count", **labels, outcome="success") >= 1
    assert value(after, "taskhub_catalog_sync_versions", **labels) == summary.versions == 47
    assert value(after, "taskhub_catalog_sync_problems", **labels, level="error") == 5


def test_resolves_count_registry_requests_and_cache_hits(app, bundles, registry):
    client = app.test_client()
    pinned = (
        f"{registry.host}/catalog/task/git-clone@{bundles.head_manifest(f'{registry.host}/catalog/task/git-clone:0.9')}"
    )
    before = scrape(client)
    for _ in range(3):
        assert resolve(client, resolver="bundles", bundle=pinned, name="git-clone").status_code == 200
    after = scrape(client)
    cache = "taskhub_resolver_cache_requests_total"
    assert value(after, cache, cache="answers", result="hit") - value(before, cache, cache="answers", result="hit") == 2
    assert (
        value(after, cache, cache="answers", result="miss") - value(before, cache, cache="answers", result="miss") == 1
    )
    requests = "taskhub_registry_requests_total"
    asked = sum(
        v - value(before, name, **dict(labels))
        for (name, labels), v in after.items()
        if name == requests and dict(labels)["host"] == registry.host and dict(labels)["code"] == "200"
    )
    assert asked >= 1  # the miss read the manifest (and its layer unless a sync kept it on disk); the hits nothing
    assert value(after, "taskhub_registry_request_duration_seconds_count", host=registry.host) >= asked


def test_jobs_and_runs_are_counted_by_kind_state_and_outcome(client, engine):
    queue = JobQueue(engine)
    done = threading.Event()

    def handler(context):
        done.set()
        return ["ok"]

    before = scrape(client)
    queue.enqueue(JobKind("metered-job"), "target")
    worker = Worker(queue, {"metered-job": handler}, concurrency=1)
    thread = threading.Thread(target=worker.run, daemon=True)
    thread.start()
    assert done.wait(60)
    while value(scrape(client), "taskhub_jobs", kind="metered-job", state="succeeded") != 1:
        pass  # the worker records the outcome right after the handler returns
    worker.request_stop()
    thread.join(60)
    records = RunRecords(engine)
    run = records.create({"kind": "TaskRun", "metadata": {"name": "metered"}}, backend="local")
    records.failed(run, "ResolutionFailed", "no such task")
    after = scrape(client)
    finished = "taskhub_jobs_finished_total"
    assert (
        value(after, finished, kind="metered-job", outcome="succeeded")
        - value(before, finished, kind="metered-job", outcome="succeeded")
        == 1
    )
    assert value(after, "taskhub_job_duration_seconds_count", kind="metered-job", outcome="succeeded") >= 1
    runs = "taskhub_runs_finished_total"
    assert (
        value(after, runs, backend="local", outcome="failed") - value(before, runs, backend="local", outcome="failed")
        == 1
    )
    assert value(after, "taskhub_run_duration_seconds_count", backend="local", outcome="failed") >= 1


def test_every_metric_is_listed_in_the_readme(client):
    families = {
        family.name
        for family in text_string_to_metric_families(client.get("/metrics").get_data(as_text=True))
        if family.name.startswith("taskhub_") and not family.name.endswith("_created")  # a process's own
    }
    documented = set(re.findall(r"`(taskhub_[a-z_]+)`", README.read_text()))
    # prometheus_client names counter families without _total
    missing = {name for name in families if name not in documented and f"{name}_total" not in documented}
    assert families and not missing, missing


@SQLITE_ONLY  # the server and its processes are what is tested, not the database
def test_taskhub_serve_sums_the_metrics_of_its_worker_processes(run, fixture_catalog):
    run("db", "upgrade")
    run("catalog", "add", "tekton", str(fixture_catalog))
    run("catalog", "sync")
    with serving(run, "--workers", "2") as (base, _, _, _):
        for _ in range(20):
            with urllib.request.urlopen(f"{base}/v1/catalogs", timeout=10) as response:
                assert response.status == 200
        for _ in range(5):  # whichever process answers the scrape, it reports all of them
            with urllib.request.urlopen(f"{base}/metrics", timeout=10) as response:
                text = response.read().decode()
            samples = {
                (sample.name, frozenset(sample.labels.items())): sample.value
                for family in text_string_to_metric_families(text)
                for sample in family.samples
            }
            assert value(samples, "taskhub_http_requests_total", method="GET", route="/v1/catalogs", code="200") == 20
            assert value(samples, "taskhub_jobs", kind="catalog-sync", state="succeeded") >= 0
