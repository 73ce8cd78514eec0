"""Prometheus metrics of the sinks: events by where they came in and how they ended."""

from __future__ import annotations

from prometheus_client import Counter

EVENTS = Counter(
    "taskhub_trigger_events_total",
    "Events received by EventListener sinks (source=listener, listener=NAMESPACE/NAME) and catalog push webhooks "
    "(source=catalog, listener=CATALOG), by outcome: refused (answered 4xx/5xx), duplicate (a delivery seen "
    "before), done (its triggers ran), failed (its job could not finish). Requests for listeners that do not "
    'exist count under listener="".',
    ["source", "listener", "outcome"],
)


SPOOL = Counter(
    "taskhub_trigger_spool_events_total",
    "Events through the sinks' spool (triggers/spool.py), by stage: spooled (kept on disk before their 202) and "
    "recorded (moved into the database with their jobs by the spool's mover). Spooled running ahead of recorded "
    "for long means the mover is stopped or cannot reach the database.",
    ["stage"],
)


def count_spool(stage: str, events: int = 1) -> None:
    """Count events spooled, or recorded from the spool."""
    SPOOL.labels(stage).inc(events)


def count_event(source: str, namespace: str, name: str, outcome: str) -> None:
    """Count one event of the listener (or catalog, with no namespace) that ended with outcome."""
    EVENTS.labels(source, f"{namespace}/{name}" if namespace else name, outcome).inc()
