"""Per-client rate limits on search and resolve: a token bucket per client, kept in each worker process.

The limits are enforced by a WSGI layer in front of the response cache, so a cached answer counts like any
other. Buckets live in the worker's memory: with N server workers a client gets up to N times the limit, and
a restart forgets them. That is the price of costing no database write per request.
"""

from __future__ import annotations

import math
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from hub.wsgi.server import Environ, StartResponse, WSGIApp

# Renders a refusal (status, error name, message, extra headers) for the request in environ.
Refuse = Callable[[Environ, StartResponse, int, str, str, dict[str, str]], Iterable[bytes]]

# Path prefixes of each limited class of requests. Add a prefix here (or pass `paths`) to limit a new endpoint.
LIMITED_PATHS: dict[str, tuple[str, ...]] = {
    "resolve": ("/v1/resolve",),
    "search": ("/v1/query", "/api/v1/packages/search"),
}
# The web UI searches on its home page: "/" with a query string is a search, "/" alone is not.
WEB_SEARCH_PATH = "/"
MAX_CLIENTS = 10_000
ENVIRON_CLIENT_KEY = "taskhub.client"
_RATE = re.compile(r"^\s*(\d+)\s*/\s*(second|minute|hour)\s*$")
_PERIODS = {"second": 1.0, "minute": 60.0, "hour": 3600.0}


@dataclass(frozen=True)
class Rate:
    """At most ``requests`` per ``seconds``, with bursts up to ``requests``."""

    requests: int
    seconds: float

    @classmethod
    def parse(cls, text: str, setting: str = "rate limit") -> Rate | None:
        """``N/second``, ``N/minute`` or ``N/hour``; ``0`` (or ``0/...``) means no limit (None)."""
        if text.strip() in ("", "0"):
            return None
        match = _RATE.match(text)
        if match is None:
            raise ValueError(f"{setting}={text!r}: expected N/second, N/minute, N/hour, or 0 for no limit")
        requests = int(match.group(1))
        return cls(requests, _PERIODS[match.group(2)]) if requests else None


class TokenBuckets:
    """One token bucket per client; the least recently seen clients are forgotten beyond max_clients."""

    def __init__(self, rate: Rate, max_clients: int = MAX_CLIENTS, clock: Callable[[], float] = time.monotonic):
        self.rate = rate
        self.max_clients = max_clients
        self.clock = clock
        self._lock = threading.Lock()
        # client -> (tokens left, when last updated)
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    def take(self, client: str) -> float:
        """Spend one request of client's bucket: 0 when allowed, else the seconds until the next one is."""
        per_second = self.rate.requests / self.rate.seconds
        now = self.clock()
        with self._lock:
            tokens, updated = self._buckets.pop(client, (float(self.rate.requests), now))
            tokens = min(float(self.rate.requests), tokens + (now - updated) * per_second)
            allowed = tokens >= 1.0
            if allowed:
                tokens -= 1.0
            self._buckets[client] = (tokens, now)
            if len(self._buckets) > self.max_clients:
                # A forgotten client starts again with a full bucket, as it would after a quiet period.
                self._buckets.popitem(last=False)
        return 0.0 if allowed else (1.0 - tokens) / per_second


def limit_class(path: str, query_string: str, paths: Mapping[str, tuple[str, ...]] = LIMITED_PATHS) -> str | None:
    """The class of limit a request falls under ("resolve", "search"), or None."""
    if path == WEB_SEARCH_PATH:
        return "search" if query_string else None
    for name, prefixes in paths.items():
        for prefix in prefixes:
            if path == prefix or path.startswith(prefix + "/"):
                return name
    return None


class RateLimitGate:
    """WSGI layer refusing requests over their client's limit with 429 and Retry-After."""

    def __init__(
        self,
        wsgi: WSGIApp,
        limits: Mapping[str, Rate | None],
        refuse: Refuse,
        paths: Mapping[str, tuple[str, ...]] = LIMITED_PATHS,
    ) -> None:
        self.wsgi = wsgi
        self.buckets = {name: TokenBuckets(rate) for name, rate in limits.items() if rate is not None}
        self.refuse = refuse
        self.paths = paths

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        if not self.buckets:
            return self.wsgi(environ, start_response)
        name = limit_class(environ.get("PATH_INFO", ""), environ.get("QUERY_STRING", ""), self.paths)
        buckets = self.buckets.get(name) if name else None
        if buckets is None:
            return self.wsgi(environ, start_response)
        # Set by the access gate: the token's name when one was sent, else the client's address.
        client = environ.get(ENVIRON_CLIENT_KEY) or f"addr:{environ.get('REMOTE_ADDR', '')}"
        wait = buckets.take(client)
        if not wait:
            return self.wsgi(environ, start_response)
        rate = buckets.rate
        period = {1.0: "second", 60.0: "minute", 3600.0: "hour"}[rate.seconds]
        message = f"rate limit of {rate.requests} {name} requests per {period} exceeded; retry in {math.ceil(wait)} s"
        return self.refuse(environ, start_response, 429, "rate-limited", message, {"Retry-After": str(math.ceil(wait))})
