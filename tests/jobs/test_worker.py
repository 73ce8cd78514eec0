"""A worker in this process, on a real database of each kind: progress, cancel, stopping, kinds."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from jobs import JobContext, JobKind, JobQueue, QueueTimes, Worker
from tests.jobs.processes import wait_until

SLOW = JobKind("slow")


@contextmanager
def running(worker: Worker) -> Iterator[Worker]:
    thread = threading.Thread(target=worker.run, daemon=True)
    thread.start()
    try:
        yield worker
    finally:
        worker.request_stop()
        thread.join(timeout=60)
        assert not thread.is_alive()


@pytest.fixture
def queue(engine) -> JobQueue:
    return JobQueue(engine, QueueTimes(lease=30, retry_base=0))


def test_progress_is_visible_while_the_job_runs_and_the_result_after(queue):
    may_finish = threading.Event()

    def slow(context: JobContext) -> dict[str, int]:
        context.progress(2, 5, "reading task/hello")
        may_finish.wait()
        context.progress(5, 5, "indexed")
        return {"versions": 5}

    job_id = queue.enqueue(SLOW, "t").id
    with running(Worker(queue, {"slow": slow}, poll_interval=0.05)):
        job = wait_until(lambda: (j := queue.get(job_id)).progress_done == 2 and j, "progress to be stored")
        assert (job.state, job.progress_total, job.progress_message) == ("running", 5, "reading task/hello")
        may_finish.set()
        job = wait_until(lambda: (j := queue.get(job_id)).state == "succeeded" and j, "the job to end")
    assert (job.result, job.progress_done, job.progress_message) == ({"versions": 5}, 5, "indexed")


def test_a_cancel_reaches_the_running_handler(queue):
    started = threading.Event()

    def slow(context: JobContext) -> None:
        started.set()
        context.cancel.wait()
        context.check_cancelled()

    job_id = queue.enqueue(SLOW, "t").id
    with running(Worker(queue, {"slow": slow}, poll_interval=0.05)):
        started.wait()
        assert queue.cancel(job_id) == "running"
        job = wait_until(lambda: (j := queue.get(job_id)).state == "cancelled" and j, "the job to stop")
    assert job.error == "cancelled" and job.finished_at is not None


def test_a_stopping_worker_lets_running_jobs_finish_within_the_grace_period(queue):
    started, may_finish = threading.Event(), threading.Event()

    def quick(context: JobContext) -> str:
        started.set()
        may_finish.wait()
        return "finished during the grace period"

    job_id = queue.enqueue(JobKind("quick"), "a").id
    worker = Worker(queue, {"quick": quick}, poll_interval=0.05, grace=600)
    with running(worker):
        started.wait()
        worker.request_stop()
        queue.enqueue(JobKind("quick"), "not taken once stopping")
        may_finish.set()
    job = queue.get(job_id)
    assert (job.state, job.result) == ("succeeded", "finished during the grace period")
    assert [j.state for j in queue.list()[0]] == ["queued", "succeeded"]


def test_a_stopping_worker_hands_back_what_is_still_running_after_the_grace_period(queue):
    started = threading.Event()
    told = []

    def stuck(context: JobContext) -> str:
        started.set()
        told.append(context.cancel.wait(600))
        return "too late to count"

    job_id = queue.enqueue(JobKind("stuck"), "b").id
    worker = Worker(queue, {"stuck": stuck}, poll_interval=0.05, grace=0)
    with running(worker):
        started.wait()
        worker.request_stop()
    job = queue.get(job_id)
    assert (job.state, job.attempts, job.worker, job.result) == ("queued", 0, None, None)
    wait_until(lambda: told, "the handler to be told")
    assert told == [True]
    assert queue.get(job_id).state == "queued"  # what the handler returned afterwards is not recorded


def test_a_worker_takes_only_its_kinds(queue):
    ran = []
    mine = queue.enqueue(JobKind("mine"), "a").id
    theirs = queue.enqueue(JobKind("theirs"), "b").id
    handlers = {"mine": lambda c: ran.append(c.id), "theirs": lambda c: ran.append(c.id)}
    with running(Worker(queue, handlers, kinds=["mine"], poll_interval=0.05)):
        wait_until(lambda: queue.get(mine).state == "succeeded", "its job")
    assert ran == [mine] and queue.get(theirs).state == "queued"
    with pytest.raises(ValueError, match="no handler for job kinds: publish"):
        Worker(queue, handlers, kinds=["mine", "publish"])


def test_an_unexpected_error_is_recorded_with_its_type_and_retried(queue):
    def broken(context: JobContext) -> None:
        raise KeyError("spec")

    job_id = queue.enqueue(JobKind("broken", max_attempts=2), "t").id
    with running(Worker(queue, {"broken": broken}, poll_interval=0.05)):
        job = wait_until(lambda: (j := queue.get(job_id)).state == "failed" and j, "the job to give up")
    assert (job.attempts, job.error) == (2, "KeyError: 'spec'")
