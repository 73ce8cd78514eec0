"""Prometheus metrics of the job queue's workers: each job attempt's outcome and duration, by kind. How many jobs
wait or run right now is read from the database when /metrics is scraped (hub/metrics.py), so every replica
reports the same queue."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

# Jobs range from a sink's event (milliseconds) to a sync or a run (minutes, hours for long pipelines).
JOB_BUCKETS = (0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 900, 1800, 3600, 7200)

JOBS = Counter(
    "taskhub_jobs_finished_total",
    "Job attempts a worker ended, by kind and outcome (succeeded, failed, cancelled)",
    ["kind", "outcome"],
)
JOB_SECONDS = Histogram(
    "taskhub_job_duration_seconds",
    "How long job attempts ran on a worker, by kind and outcome",
    ["kind", "outcome"],
    buckets=JOB_BUCKETS,
)
