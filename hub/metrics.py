"""Prometheus metrics of the hub: HTTP requests by route and status, the queue read from the database, and the
exposition of every taskhub metric (catalog/metrics.py, jobs/metrics.py, runner/metrics.py, triggers/metrics.py)
at /metrics.

`taskhub serve` runs several worker processes (and its embedded job worker); prometheus_client's multiprocess
mode sums their samples, kept in files under PROMETHEUS_MULTIPROC_DIR (`serve` makes a fresh one before its processes
start: hub/wsgi/server.py, metrics_directory). A process without
it (a test, a lone command) reports its own samples.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import REGISTRY, Collector
from sqlalchemy import Engine, func, select
from werkzeug.exceptions import HTTPException
from werkzeug.routing import Map

from hub.wsgi.server import MULTIPROC_ENV, ROUTE_KEY, Environ, StartResponse, WSGIApp

# Paths answered outside Flask's URL map (hub/wsgi/health.py).
OUTER_ROUTES = frozenset({"/livez", "/readyz"})
UNMATCHED = "unmatched"  # paths no route matches (scans, typos): one label value, not one per path
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
MAX_REMEMBERED_PATHS = 4096
# Cached API answers take under a millisecond; a resolve from a cold registry or a sync through the API seconds.
HTTP_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)

HTTP_REQUESTS = Counter(
    "taskhub_http_requests_total",
    "HTTP requests answered, by method, route (the URL rule, e.g. /v1/resource/<catalog>/<kind>/<name>) and "
    "status code",
    ["method", "route", "code"],
)
HTTP_SECONDS = Histogram(
    "taskhub_http_request_duration_seconds",
    "Time from receiving a request to its answer's status and headers, by method and route",
    ["method", "route"],
    buckets=HTTP_BUCKETS,
)


class RouteNames:
    """The route of a request path: the URL rule it matches, remembered per (method, path) up to a bound."""

    def __init__(self, url_map: Map) -> None:
        self.url_map = url_map
        self._known: dict[tuple[str, str], str] = {}
        self._lock = threading.Lock()

    def __call__(self, environ: Environ) -> str:
        noted = environ.get(ROUTE_KEY)
        if noted is not None:
            return str(noted)
        path, method = environ.get("PATH_INFO", ""), environ.get("REQUEST_METHOD", "")
        if path in OUTER_ROUTES:
            return path
        key = (method, path)
        route = self._known.get(key)
        if route is None:
            try:
                rule, _ = self.url_map.bind("taskhub", path_info=path).match(method=method, return_rule=True)
                route = rule.rule
            except HTTPException:  # no route (404), or not this method (405): the path's own route if any
                route = self._any_method(path)
            with self._lock:
                if len(self._known) >= MAX_REMEMBERED_PATHS:
                    self._known.clear()
                self._known[key] = route
        return route

    def _any_method(self, path: str) -> str:
        for method in ("GET", "POST", "PUT", "DELETE"):
            try:
                rule, _ = self.url_map.bind("taskhub", path_info=path).match(method=method, return_rule=True)
                return str(rule.rule)
            except HTTPException:
                continue
        return UNMATCHED


def count_requests(app: WSGIApp, routes: RouteNames) -> WSGIApp:
    """A WSGI layer counting every request and timing it to its answer's status and headers (every answer but a
    run's followed logs is whole by then); refusals, probes and cached answers included: it sits outside every
    other layer."""

    # Each series' child, looked up once: label values are routes, methods and codes, a bounded set.
    children: dict[tuple[str, str, str], tuple[Any, Any]] = {}

    def counted(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        started = time.perf_counter()
        status = ["500"]

        def start(code: str, headers: list[tuple[str, str]], exc_info: object = None) -> object:
            status[0] = code.split(" ", 1)[0]
            return start_response(code, headers, exc_info)

        def done() -> None:
            method = environ.get("REQUEST_METHOD", "")
            method = method if method in METHODS else "other"
            key = (method, routes(environ), status[0])
            series = children.get(key)
            if series is None:
                series = children[key] = (HTTP_REQUESTS.labels(*key), HTTP_SECONDS.labels(*key[:2]))
            series[0].inc()
            series[1].observe(time.perf_counter() - started)

        try:
            return app(environ, start)
        finally:
            done()

    return counted


class QueueCollector(Collector):
    """taskhub_jobs: the jobs in the database by kind and state, read at each scrape (every replica says the
    same; the worker's counters say what it did itself)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def collect(self) -> Iterator[GaugeMetricFamily]:
        from jobs.models import Job

        family = GaugeMetricFamily(
            "taskhub_jobs",
            "Jobs in the queue by kind and state (queued, running, succeeded, ...)",
            labels=["kind", "state"],
        )
        try:
            with self.engine.connect() as conn:
                rows = conn.execute(select(Job.kind, Job.state, func.count()).group_by(Job.kind, Job.state)).all()
        except Exception:  # the database is away: /readyz says so; the other metrics still answer
            rows = []
        for kind, state, count in rows:
            family.add_metric([kind, state], count)
        yield family


def exposition(engine: Engine) -> bytes:
    """Every metric in Prometheus' text format: summed over the processes of this server in multiprocess mode."""
    queue = CollectorRegistry(auto_describe=False)
    queue.register(QueueCollector(engine))
    if os.environ.get(MULTIPROC_ENV):
        registry = CollectorRegistry()
        MultiProcessCollector(registry)
        return generate_latest(registry) + generate_latest(queue)
    return generate_latest(REGISTRY) + generate_latest(queue)
