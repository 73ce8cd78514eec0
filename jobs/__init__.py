"""Background work as durable jobs in the hub's own database (SQLite or PostgreSQL, no other server).

    queue = JobQueue(engine, QueueTimes(lease=30))
    queue.enqueue(CATALOG_SYNC, "tekton", created_by="admin")     # -> Enqueued(id, coalesced)
    Worker(queue, {"catalog-sync": handler}, concurrency=2).run()  # until worker.stop is set

A handler takes a JobContext: `target`, `payload`, `progress(done, total, message)`, `report(message)`, and
`cancel`, an event set when the job is cancelled, loses its lease, or its worker stops. It returns a JSON-able
summary (the job's result), or raises JobFailed(message, retry=...) with an error a person can act on; any other
exception is retried too, up to the kind's max_attempts, with exponential backoff. The worker renews the lease
(and stores progress) by itself. A job whose worker stops renewing its lease is taken back by any worker: queued
again if its kind is idempotent, recorded abandoned otherwise.
"""

from jobs.context import JobCancelled, JobContext, JobFailed
from jobs.kinds import CATALOG_SYNC, CLUSTER_TRIGGER_EVENT, KINDS, PUBLISH, REGISTRY_SYNC, RUN, TRIGGER_EVENT
from jobs.queue import Claim, Enqueued, JobKind, JobQueue, Progress, QueueTimes
from jobs.worker import Handler, Periodic, Worker

__all__ = [
    "CATALOG_SYNC",
    "CLUSTER_TRIGGER_EVENT",
    "KINDS",
    "PUBLISH",
    "REGISTRY_SYNC",
    "RUN",
    "TRIGGER_EVENT",
    "Claim",
    "Enqueued",
    "Handler",
    "JobCancelled",
    "JobContext",
    "JobFailed",
    "JobKind",
    "JobQueue",
    "Periodic",
    "Progress",
    "QueueTimes",
    "Worker",
]
