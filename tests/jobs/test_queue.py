"""The queue's rules on a real database of each kind: claiming, coalescing, retries, leases, cancel, fencing."""

from __future__ import annotations

import pytest
from sqlalchemy import update

from catalog.errors import Conflict, NotFound
from jobs import CATALOG_SYNC, RUN, JobKind, JobQueue, Progress, QueueTimes
from jobs.models import Job

NOOP = JobKind("noop")


@pytest.fixture
def queue(engine) -> JobQueue:
    return JobQueue(engine, QueueTimes(lease=30, retry_base=0))


def expire_leases(queue: JobQueue) -> None:
    """What a worker killed mid-job leaves once its lease runs out (the wait itself is the worker tests' part)."""
    with queue.engine.begin() as conn:
        conn.execute(update(Job).where(Job.state == "running").values(lease_expires_at=Job.started_at))


def test_jobs_are_claimed_oldest_first_once_and_only_of_the_given_kinds(queue):
    ids = [queue.enqueue(NOOP, str(n)).id for n in range(3)]
    other = queue.enqueue(JobKind("other"), "x").id
    first = queue.claim("w1", ["noop"], limit=2)
    second = queue.claim("w2", ["noop"], limit=5)
    assert [c.id for c in first] == ids[:2]
    assert [c.id for c in second] == ids[2:]
    assert queue.claim("w3", ["noop"]) == []
    assert [c.id for c in queue.claim("w3")] == [other]
    job = queue.get(ids[0])
    assert (job.state, job.worker, job.attempts) == ("running", "w1", 1)
    assert job.lease_expires_at > job.started_at


def test_a_sync_requested_while_one_is_queued_joins_it(queue):
    first = queue.enqueue(CATALOG_SYNC, "tekton", created_by="alice")
    again = queue.enqueue(CATALOG_SYNC, "tekton", created_by="bob")
    other = queue.enqueue(CATALOG_SYNC, "community")
    assert (again.id, again.coalesced) == (first.id, True)
    assert other.id != first.id and not other.coalesced
    # Once it runs, a new request is a new job: the running sync may have read the catalog before the change.
    queue.claim("w1", ["catalog-sync"], limit=1)
    after = queue.enqueue(CATALOG_SYNC, "tekton")
    assert after.id not in (first.id, other.id) and not after.coalesced
    runs = [queue.enqueue(RUN, "7").id, queue.enqueue(RUN, "7").id]
    assert runs[0] != runs[1]  # runs never coalesce


def test_progress_result_and_success_are_stored(queue):
    job_id = queue.enqueue(NOOP, "t", {"n": 1}).id
    (claim,) = queue.claim("w1")
    assert claim.payload == {"n": 1}
    assert queue.heartbeat(claim, Progress(3, 10, "reading")) is False
    job = queue.get(job_id)
    assert (job.progress_done, job.progress_total, job.progress_message) == (3, 10, "reading")
    assert queue.succeed(claim, ["12 resources"], Progress(10, 10, "done"))
    job = queue.get(job_id)
    assert (job.state, job.result, job.progress_done, job.error) == ("succeeded", ["12 resources"], 10, None)
    assert job.finished_at is not None


def test_a_failing_job_is_retried_then_fails_with_its_error(queue):
    job_id = queue.enqueue(JobKind("flaky", max_attempts=3), "t").id
    for attempt in (1, 2):
        (claim,) = queue.claim("w1")
        assert claim.attempt == attempt
        assert queue.fail(claim, f"network down ({attempt})") == "queued"
        assert queue.get(job_id).error == f"network down ({attempt})"
    (claim,) = queue.claim("w1")
    assert queue.fail(claim, "network down (3)") == "failed"
    job = queue.get(job_id)
    assert (job.state, job.attempts, job.error) == ("failed", 3, "network down (3)")
    assert queue.claim("w1") == []


def test_a_failure_that_retrying_cannot_help_fails_at_once(queue):
    job_id = queue.enqueue(NOOP, "gone").id
    (claim,) = queue.claim("w1")
    assert queue.fail(claim, "catalog 'gone' not found", retry=False) == "failed"
    assert queue.get(job_id).attempts == 1


def test_retries_back_off(engine):
    queue = JobQueue(engine, QueueTimes(retry_base=3600, retry_max=7200))
    queue.enqueue(NOOP, "t")
    (claim,) = queue.claim("w1")
    queue.fail(claim, "boom")
    assert queue.claim("w1") == []  # not before its backoff
    job = queue.get(claim.id)
    assert job.state == "queued" and (job.run_after - job.started_at).total_seconds() >= 3600


def test_expired_leases_are_taken_back_by_kind(queue):
    sync = queue.enqueue(CATALOG_SYNC, "tekton").id
    run = queue.enqueue(RUN, "5").id
    last_try = queue.enqueue(JobKind("once", max_attempts=1), "x").id
    held = {c.id: c for c in queue.claim("dead-worker", limit=3)}
    assert queue.reclaim_expired() == []  # leases still good
    expire_leases(queue)
    taken = {r.id: r.state for r in queue.reclaim_expired()}
    assert taken == {sync: "queued", run: "abandoned", last_try: "failed"}
    assert queue.get(run).error == "its worker dead-worker stopped renewing its lease"
    assert queue.reclaim_expired() == []  # once
    # The old holder can no longer write: not a heartbeat, not an outcome.
    assert queue.heartbeat(held[sync]) is None
    assert queue.succeed(held[sync], "late") is False
    (again,) = queue.claim("w2")
    assert (again.id, again.attempt) == (sync, 2)
    assert queue.succeed(held[sync], "late") is False  # attempt 1's holder, even with the job running again
    assert queue.succeed(again, "ok") is True


def test_cancel_a_queued_job_at_once_and_ask_a_running_one(queue):
    queued = queue.enqueue(NOOP, "a").id
    running = queue.enqueue(NOOP, "b").id
    assert queue.cancel(queued) == "cancelled"
    (claim,) = queue.claim("w1")
    assert claim.id == running
    assert queue.cancel(running) == "running"
    assert queue.heartbeat(claim) is True  # the worker learns it at its next heartbeat
    assert queue.cancelled(claim, "stopped at the user's request")
    assert queue.get(running).state == "cancelled"
    with pytest.raises(Conflict, match="already ended: cancelled"):
        queue.cancel(running)
    with pytest.raises(NotFound):
        queue.cancel(999_999)


def test_a_stopping_worker_hands_back_what_it_cannot_finish(queue):
    sync = queue.enqueue(CATALOG_SYNC, "tekton").id
    run = queue.enqueue(RUN, "9").id
    claims = {c.id: c for c in queue.claim("w1", limit=2)}
    assert queue.release(claims[sync], "worker stopped") == "queued"
    assert queue.release(claims[run], "its worker w1 stopped before it ended") == "abandoned"
    (again,) = queue.claim("w2")
    assert (again.id, again.attempt) == (sync, 1)  # a hand-back does not use up an attempt
    assert queue.get(run).error == "its worker w1 stopped before it ended"


def test_jobs_are_listed_newest_first_with_filters(queue):
    for name in ("a", "b", "c"):
        queue.enqueue(CATALOG_SYNC, name)
    queue.enqueue(NOOP, "a")
    jobs, total = queue.list(kind="catalog-sync", limit=2)
    assert total == 3 and [j.target for j in jobs] == ["c", "b"]
    jobs, total = queue.list(target="a")
    assert total == 2 and {j.kind for j in jobs} == {"catalog-sync", "noop"}
    assert queue.list(state="running") == ([], 0)


def test_a_job_queued_within_a_transaction_exists_only_if_it_commits(queue):
    class Abandoned(Exception):
        pass

    with pytest.raises(Abandoned), queue.engine.begin() as conn:
        queue.enqueue_in(conn, NOOP, "lost")
        raise Abandoned
    assert queue.claim("w1") == []
    with queue.engine.begin() as conn:
        job_id = queue.enqueue_in(conn, NOOP, "kept", {"n": 2}, created_by="el:ns1/el1")
    (claim,) = queue.claim("w1")
    assert (claim.id, claim.target, claim.payload) == (job_id, "kept", {"n": 2})
    assert queue.get(job_id).created_by == "el:ns1/el1"
    with pytest.raises(ValueError, match="coalesce"), queue.engine.begin() as conn:
        queue.enqueue_in(conn, CATALOG_SYNC, "tekton")
