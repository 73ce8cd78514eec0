"""Prometheus metrics of the catalog side: syncs of catalogs and registries, requests to registries, and the
resolver's caches. Names and labels follow Prometheus' conventions (prometheus.io/docs/practices/naming): base
units (seconds), `_total` on counters, labels of bounded cardinality (catalog and registry names are the
operator's, never a request's). Across processes they are summed by prometheus_client's multiprocess mode
(hub/metrics.py)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

# Syncs run from under a second (a directory) to minutes (a large git clone or registry).
SYNC_BUCKETS = (0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800)
# Registry requests: a kept-alive GET on loopback is a millisecond; a blob over a slow link many seconds.
REQUEST_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)

SYNCS = Counter(
    "taskhub_catalog_syncs_total",
    "Syncs of catalogs (kind=catalog: git or directory) and registries (kind=registry), by outcome",
    ["catalog", "kind", "outcome"],
)
SYNC_SECONDS = Histogram(
    "taskhub_catalog_sync_duration_seconds",
    "How long syncs took, fetching and indexing, by outcome",
    ["catalog", "kind", "outcome"],
    buckets=SYNC_BUCKETS,
)
SYNC_VERSIONS = Gauge(
    "taskhub_catalog_sync_versions",
    "Versions the last successful sync indexed",
    ["catalog", "kind"],
    multiprocess_mode="mostrecent",
)
SYNC_PROBLEMS = Gauge(
    "taskhub_catalog_sync_problems",
    "Problems the last successful sync found in the catalog's files, by level (error: the file was rejected)",
    ["catalog", "kind", "level"],
    multiprocess_mode="mostrecent",
)
REGISTRY_REQUESTS = Counter(
    "taskhub_registry_requests_total",
    "HTTP requests to OCI registries by host, method and status code (code=error: no answer)",
    ["host", "method", "code"],
)
REGISTRY_SECONDS = Histogram(
    "taskhub_registry_request_duration_seconds",
    "Time to a registry's answer headers (or to the failure), by host",
    ["host"],
    buckets=REQUEST_BUCKETS,
)
RESOLVER_CACHE = Counter(
    "taskhub_resolver_cache_requests_total",
    "Lookups in the resolver's caches (answers: resolved objects in memory; tags: a tag's digest; blobs: "
    "manifests and layers on disk), by result (hit, miss)",
    ["cache", "result"],
)


def cache_lookup(cache: str, found: object) -> None:
    """Count one lookup in `cache`: a hit when found is not None."""
    RESOLVER_CACHE.labels(cache, "miss" if found is None else "hit").inc()
