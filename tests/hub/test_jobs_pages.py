"""The jobs pages over real jobs in the queue: a catalog sync a worker ran, a publish it ran to failure, and jobs
still queued; the list, its filters and one job's detail, in the test client (SQLite and PostgreSQL) and in headless
Chromium, and who may read them."""

from __future__ import annotations

import dataclasses
import re
import threading
from dataclasses import dataclass

import pytest
from flask import Flask
from playwright.sync_api import Page, expect
from sqlalchemy import Engine

from catalog.registry import Registry
from catalog.sync import SyncSummary
from hub.app import create_app
from hub.config import Settings
from jobs import CATALOG_SYNC, PUBLISH, REGISTRY_SYNC, RUN, JobContext, JobFailed, JobQueue, QueueTimes, Worker
from jobs.syncs import CatalogSyncer
from tests.hub.test_auth import bearer, issue
from tests.jobs.processes import wait_until

REFUSED = "registry.example refused the push: unauthorized; store its credentials with `taskhub registry add`"


@dataclass
class QueuedJobs:
    synced: int  # a catalog-sync of the test catalog, succeeded
    failed: int  # a publish that failed on every attempt
    waiting: int  # a registry-sync still queued
    run: int  # a run still queued
    worker: str  # the worker that ran the first two


@pytest.fixture
def app(settings: Settings) -> Flask:
    """A hub whose run records, and so jobs, are public: the pages need no sign-in."""
    return create_app(dataclasses.replace(settings, public_runs=True))


@pytest.fixture
def jobs(engine: Engine, settings: Settings, indexed: SyncSummary) -> QueuedJobs:
    """Jobs as a worker leaves them: a real sync of the test catalog, and a publish whose handler always fails."""
    queue = JobQueue(engine, QueueTimes(retry_base=0))

    def no_registry(host: str) -> Registry:
        raise AssertionError(f"no registry in this test ({host})")

    def refused(context: JobContext) -> None:
        context.progress(3, 47, "pushed task/git-clone:0.9")
        raise JobFailed(REFUSED)

    synced = queue.enqueue(CATALOG_SYNC, "tekton", created_by="scheduler@hub-1").id
    failed = queue.enqueue(PUBLISH, "tekton", {"registry": "registry.example/catalog"}, created_by="admin").id
    handlers = {CATALOG_SYNC.name: CatalogSyncer(engine, settings.catalogs_dir, no_registry).handle,
                PUBLISH.name: refused}  # fmt: skip
    worker = Worker(queue, handlers, poll_interval=0.05)
    thread = threading.Thread(target=worker.run, daemon=True)
    thread.start()
    try:
        for job_id, state in ((synced, "succeeded"), (failed, "failed")):
            wait_until(lambda: queue.get(job_id).state == state, f"job {job_id} to be {state}")  # noqa: B023
    finally:
        worker.request_stop()
        thread.join(timeout=60)
    waiting = queue.enqueue(REGISTRY_SYNC, "bundles", created_by="admin").id
    run = queue.enqueue(RUN, "42", {"name": "build"}, created_by="ci").id
    return QueuedJobs(synced, failed, waiting, run, worker.name)


def rows(html: str) -> list[tuple[str, str]]:
    """(job id, state) of each row of the jobs table, top to bottom."""
    return re.findall(r'data-job-id="(\d+)" data-state="(\w+)"', html)


def test_the_list_shows_every_job_newest_first_and_filters(app: Flask, jobs: QueuedJobs) -> None:
    http = app.test_client()
    page = http.get("/jobs").get_data(as_text=True)
    assert rows(page) == [(str(jobs.run), "queued"), (str(jobs.waiting), "queued"),
                          (str(jobs.failed), "failed"), (str(jobs.synced), "succeeded")]  # fmt: skip
    assert "4 jobs" in page and REFUSED in page
    assert rows(http.get("/jobs?state=failed").get_data(as_text=True)) == [(str(jobs.failed), "failed")]
    assert rows(http.get("/jobs?kind=registry-sync").get_data(as_text=True)) == [(str(jobs.waiting), "queued")]
    assert rows(http.get("/jobs?kind=catalog-sync&state=queued").get_data(as_text=True)) == []
    # An unknown filter is no filter, never an error.
    assert len(rows(http.get("/jobs?kind=nope&state=bogus&offset=x").get_data(as_text=True))) == 4


def test_a_failed_jobs_page_says_why_how_often_and_where(app: Flask, jobs: QueuedJobs) -> None:
    http = app.test_client()
    page = http.get(f"/jobs/{jobs.failed}").get_data(as_text=True)
    assert 'id="job-state">failed<' in page
    assert re.search(r'id="job-attempts">3 of 3\b', page)
    assert re.search(r'id="job-progress">3/47 <span class="muted">pushed task/git-clone:0.9</span>', page)
    assert f'id="job-worker">{jobs.worker}<' in page
    assert "registry.example refused the push: unauthorized" in page
    assert '"registry": "registry.example/catalog"' in page.replace("&#34;", '"')
    assert "reloads every" not in page  # it has ended
    synced = http.get(f"/jobs/{jobs.synced}").get_data(as_text=True)
    assert re.search(r'id="job-result">tekton: 19 resources, 47 versions', synced)
    assert 'href="/catalogs/tekton"' in synced
    queued = http.get(f"/jobs/{jobs.run}").get_data(as_text=True)
    assert 'href="/runs/42">run #42</a>' in queued and "reloads every 2 seconds" in queued
    for missing in (f"/jobs/{jobs.run + 100}", "/jobs/99999999999"):
        answer = http.get(missing, headers={"Accept": "text/html"})
        assert answer.status_code == 404 and "There is no job" in answer.get_data(as_text=True)


def test_jobs_are_read_as_the_jobs_api_reads_them(settings: Settings, jobs: QueuedJobs) -> None:
    closed = create_app(settings)  # run records are not public by default
    http = closed.test_client()
    for path in ("/jobs", f"/jobs/{jobs.failed}"):
        anonymous = http.get(path, headers={"Accept": "text/html"})
        assert anonymous.status_code == 401 and 'name="token"' in anonymous.get_data(as_text=True)  # sign in
        assert "jobs are not public on this hub" in anonymous.get_data(as_text=True)
        assert http.get(path, headers=bearer(issue(closed, f"ro{len(path)}", "read"))).status_code == 403
    # A token that may queue syncs reads the sync jobs, as the jobs API lets it, and no other.
    refresher = bearer(issue(closed, "ci", "catalog:refresh"))
    assert rows(http.get("/jobs", headers=refresher).get_data(as_text=True)) == [(str(jobs.synced), "succeeded")]
    assert http.get(f"/jobs/{jobs.synced}", headers=refresher).status_code == 200
    assert http.get(f"/jobs/{jobs.failed}", headers=refresher).status_code == 404
    browser = closed.test_client()
    token = issue(closed, "auditor", "runs:read")
    assert browser.post("/login", data={"token": token, "next": "/jobs"}).status_code == 302
    assert rows(browser.get("/jobs", headers={"Accept": "text/html"}).get_data(as_text=True))


@pytest.mark.browser
def test_browser_finds_the_failed_job_and_reads_its_error(page: Page, hub_url: str, jobs: QueuedJobs) -> None:
    page.goto("/catalogs")
    page.get_by_role("navigation").get_by_role("link", name="Jobs").click()
    page.wait_for_url(f"{hub_url}/jobs")
    expect(page.locator("#jobs tr[data-job-id]")).to_have_count(4)
    failed = page.locator(f'#jobs tr[data-job-id="{jobs.failed}"]')
    expect(failed.locator(".kind")).to_have_text("publish")
    expect(failed.locator(".attempts")).to_have_text("3/3")
    expect(failed.locator(".worker")).to_have_text(jobs.worker)
    expect(failed.locator(".error")).to_have_text(REFUSED)

    page.get_by_label("State").select_option("failed")
    page.wait_for_url(re.compile(r"state=failed"))
    expect(page.locator("#jobs tr[data-job-id]")).to_have_count(1)
    expect(page.locator("#job-count")).to_have_text("1 failed job")
    page.get_by_label("Kind").select_option("catalog-sync")
    page.wait_for_url(re.compile(r"kind=catalog-sync"))
    expect(page.locator("#jobs tr[data-job-id]")).to_have_count(0)
    page.get_by_label("State").select_option("")
    expect(page.locator(f'#jobs tr[data-job-id="{jobs.synced}"] .progress')).to_contain_text("47/47")

    page.goto("/jobs?state=failed")
    page.get_by_role("link", name=f"#{jobs.failed}").click()
    page.wait_for_url(f"{hub_url}/jobs/{jobs.failed}")
    expect(page.locator("#job-error")).to_have_text(REFUSED)
    expect(page.locator("#job-attempts")).to_have_text("3 of 3")
    page.locator("#job-target").get_by_role("link", name="tekton").click()  # what it published
    page.wait_for_url(f"{hub_url}/catalogs/tekton")
