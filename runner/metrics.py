"""Prometheus metrics of runs: how runs ended and how long they took, by backend (local, kubernetes)."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

# From a one-step TaskRun (a second) to long pipelines (hours).
RUN_BUCKETS = (1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200, 14400)

RUNS = Counter(
    "taskhub_runs_finished_total",
    "Runs that ended, by backend and outcome (succeeded, failed, cancelled)",
    ["backend", "outcome"],
)
RUN_SECONDS = Histogram(
    "taskhub_run_duration_seconds",
    "How long runs took from their start (or, for one that never started, from being accepted) to their end",
    ["backend", "outcome"],
    buckets=RUN_BUCKETS,
)
