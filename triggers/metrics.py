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


def count_event(source: str, namespace: str, name: str, outcome: str) -> None:
    """Count one event of the listener (or catalog, with no namespace) that ended with outcome."""
    EVENTS.labels(source, f"{namespace}/{name}" if namespace else name, outcome).inc()
