"""Workers as separate processes on a real database: many of them, killed ones, a scheduler among them, and a
database that goes away and comes back."""

from __future__ import annotations

import itertools
from collections import Counter

import pytest
from sqlalchemy import update
from sqlalchemy.orm import Session

from catalog.models import Catalog
from jobs import CATALOG_SYNC, JobKind, JobQueue
from jobs.leases import Leases
from jobs.scheduler import SCHEDULER_LEASE
from tests.catalog.factories import write_version
from tests.conftest import register
from tests.jobs.processes import log_lines, wait_until, workers
from tests.jobs.tcp_proxy import TcpProxy

NOOP = JobKind("noop")


def finished(queue: JobQueue, *ids: int) -> bool:
    return all(queue.get(job_id).state in ("succeeded", "failed", "cancelled", "abandoned") for job_id in ids)


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_two_workers_drain_200_jobs_and_run_none_twice(engine, database_url, tmp_path):
    queue, log = JobQueue(engine), tmp_path / "ran.log"
    with workers(database_url, log, count=2, concurrency=4):
        ids = [queue.enqueue(NOOP, str(n)).id for n in range(200)]
        wait_until(lambda: queue.list(kind="noop", state="succeeded", limit=1)[1] == 200, "200 jobs to succeed")
    ran = log_lines(log, "ran")
    counts = Counter(job for job, _, _ in ran)
    assert sorted(counts) == ids and set(counts.values()) == {1}
    assert len({worker for _, _, worker in ran}) == 2  # both took part


def test_a_killed_workers_job_is_taken_back_after_its_lease(engine, database_url, tmp_path):
    queue, log = JobQueue(engine), tmp_path / "ran.log"
    sync_like = queue.enqueue(JobKind("hold-first"), "a").id
    run_like = queue.enqueue(JobKind("hold-run", idempotent=False, max_attempts=1), "b").id
    with workers(database_url, log, concurrency=2, lease=1, poll=0.1) as (first,):
        wait_until(lambda: len(log_lines(log, "started")) == 2, "both jobs to start")
        first.kill()
        with workers(database_url, log, lease=1, poll=0.1, kinds="hold-first") as (second,):
            wait_until(lambda: finished(queue, sync_like, run_like), "the jobs to be taken back")
            # The idempotent job ran again on the live worker; the run-like one is abandoned, never re-run.
            job = queue.get(sync_like)
            assert (job.state, job.attempts, job.worker) == ("succeeded", 2, second.name)
            abandoned = queue.get(run_like)
            assert abandoned.state == "abandoned"
            assert abandoned.error == f"its worker {first.name} stopped renewing its lease"
    assert [(job, attempt) for job, attempt, _ in log_lines(log, "ran")] == [(sync_like, 2)]


def test_a_job_failing_every_time_stops_after_its_attempts_with_its_error(engine, database_url, tmp_path):
    queue, log = JobQueue(engine), tmp_path / "ran.log"
    job_id = queue.enqueue(JobKind("fail", max_attempts=3), "registry.example").id
    with workers(database_url, log, poll=0.1):
        wait_until(lambda: finished(queue, job_id), "the job to give up")
    job = queue.get(job_id)
    assert (job.state, job.attempts) == ("failed", 3)
    assert job.error == "RuntimeError: the registry refused the push (attempt 3)"
    assert len(log_lines(log, "ran")) == 3


def test_one_scheduler_acts_however_many_workers_run(engine, database_url, tmp_path):
    for name in ("alpha", "beta"):
        write_version(tmp_path / name, f"hello-{name}", "0.1")
        register(engine, name, tmp_path / name)
    with engine.begin() as conn:
        conn.execute(update(Catalog).values(refresh_seconds=1))  # below what `--refresh` accepts, for the test
    queue, log = JobQueue(engine), tmp_path / "ran.log"
    options = {"lease": 2, "poll": 0.1, "scheduler": 0.1, "work_dir": tmp_path / "work"}
    with workers(database_url, log, count=2, concurrency=2, **options) as (one, two):

        def synced_twice() -> bool:
            jobs = queue.list(kind="catalog-sync", state="succeeded", limit=100)[0]
            return all(sum(j.target == name for j in jobs) >= 2 for name in ("alpha", "beta"))

        wait_until(synced_twice, "each catalog to be synced twice by the scheduler")
        holder = Leases(engine).holder(SCHEDULER_LEASE)
        assert holder in (one.name, two.name)
    jobs = queue.list(kind="catalog-sync", limit=100)[0]
    assert {j.created_by for j in jobs} == {f"scheduler@{holder}"}
    for name in ("alpha", "beta"):  # never two syncs of one catalog at once
        spans = sorted((j.started_at, j.finished_at) for j in jobs if j.target == name and j.finished_at)
        assert all(end <= next_start for (_, end), (next_start, _) in itertools.pairwise(spans))
    with Session(engine) as session:
        for catalog in session.query(Catalog):
            assert catalog.last_sync_at is not None and catalog.last_error is None


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_workers_back_off_while_the_database_is_away_and_resume(engine, database_url, tmp_path):
    queue, log = JobQueue(engine), tmp_path / "ran.log"
    host, port = engine.url.host, engine.url.port
    with TcpProxy(host, port) as proxy:
        through_proxy = engine.url.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
        with workers(through_proxy, log, poll=0.1) as (worker,):
            first = queue.enqueue(NOOP, "before").id
            wait_until(lambda: finished(queue, first), "the first job")
            assert "unreachable" not in worker.output()
            proxy.cut()
            wait_until(lambda: "database unreachable" in worker.output(), "the worker to notice")
            second = queue.enqueue(NOOP, "while away").id
            assert queue.get(second).state == "queued"
            proxy.restore()
            wait_until(lambda: finished(queue, second), "the job queued while the database was away")
            assert worker.process.poll() is None
            assert "the database answers again" in worker.output()
    assert queue.get(second).state == "succeeded"


def test_workers_drain_syncs_on_each_database(engine, database_url, tmp_path):
    """A sync queued twice while queued is one job, and runs once."""
    write_version(tmp_path / "cat", "hello", "0.1")
    register(engine, "cat", tmp_path / "cat")
    queue, log = JobQueue(engine), tmp_path / "ran.log"
    first, again = queue.enqueue(CATALOG_SYNC, "cat"), queue.enqueue(CATALOG_SYNC, "cat")
    assert again.id == first.id
    with workers(database_url, log, poll=0.1, work_dir=tmp_path / "work"):
        wait_until(lambda: finished(queue, first.id), "the sync")
    job = queue.get(first.id)
    assert job.state == "succeeded" and job.result[0].startswith("cat: 1 resources, 1 versions")
    assert len(log_lines(log, "ran")) == 1
