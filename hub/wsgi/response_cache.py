"""Caching of API GET answers: ETag and Cache-Control for clients, and a per-worker cache of whole responses.

Every answer of the read APIs is a function of the URL and the index, and the index has a generation number
that every change bumps. A worker keeps answers keyed by (generation, host, path, the query parameters the view
reads) and looks the generation up at most every ``generation_check_interval`` seconds. Hits are answered by a
WSGI wrapper in front of Flask, so a repeated request costs no query and no Flask request at all.

The key is taken once, when the request comes in: an answer is kept under the generation it was computed at,
never under one a sync committed meanwhile. Which parameters count is learned per path from what the views
read (`request.args` records it), so a parameter no view reads (a cache-buster) does not make a new entry. The
entries are bounded by their bytes (`max_bytes`), the least recently used going first.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

from flask import Blueprint, Request, Response, current_app, request
from sqlalchemy import Engine, select
from sqlalchemy.exc import SQLAlchemyError
from werkzeug.datastructures import ImmutableMultiDict
from werkzeug.http import generate_etag, http_date, parse_etags, quote_etag
from werkzeug.routing import Rule

from catalog.models import IndexState
from hub.wsgi.server import ROUTE_KEY, Environ, StartResponse, WSGIApp

MAX_BODY_BYTES = 2 * 1024 * 1024
_ENTRY_OVERHEAD = 512  # headers and bookkeeping of one entry, roughly
_GENERATION_KEY = "taskhub.cache_generation"
_Key = tuple[int, str, str, tuple[tuple[str, str], ...]]


@dataclass(frozen=True)
class _Entry:
    etag: str
    headers: list[tuple[str, str]]
    not_modified_headers: list[tuple[str, str]]
    body: bytes

    @property
    def size(self) -> int:
        return len(self.body) + _ENTRY_OVERHEAD


class QueryArgs(ImmutableMultiDict[str, str]):
    """request.args that remember which names a view looked up (`read`; None once it looked at them all), for the
    response cache's key. And without werkzeug's cost for a parameter the request leaves out: its `get` raises and
    catches a BadRequestKeyError (an HTTPException, built for nothing) for each one, and views ask for several."""

    read: set[str] | None

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.read = set()

    def _note(self, key: str) -> None:
        if self.read is not None:
            self.read.add(key)

    def __getitem__(self, key: str) -> str:
        self._note(key)
        return super().__getitem__(key)

    def get(self, key: str, default: Any = None, type: Any = None) -> Any:  # type: ignore[override]  # werkzeug's overloads
        self._note(key)
        if not super().__contains__(key):
            return default
        return super().get(key, default, type)

    def getlist(self, key: str, type: Any = None) -> Any:
        self._note(key)
        return super().getlist(key, type)

    def __contains__(self, key: object) -> bool:
        if isinstance(key, str):
            self._note(key)
        return super().__contains__(key)

    def _all(self) -> None:
        self.read = None

    def keys(self, *args: Any, **kwargs: Any) -> Any:
        self._all()
        return super().keys(*args, **kwargs)

    def items(self, *args: Any, **kwargs: Any) -> Any:
        self._all()
        return super().items(*args, **kwargs)

    def to_dict(self, *args: Any, **kwargs: Any) -> Any:
        self._all()
        return super().to_dict(*args, **kwargs)

    def __iter__(self) -> Any:
        self._all()
        return super().__iter__()


class HubRequest(Request):
    """The hub's request: QueryArgs for its query parameters, and the URL rule Flask matched left in the environ
    for the metrics layer (ROUTE_KEY), with no hook run for it."""

    parameter_storage_class = QueryArgs
    _url_rule: Rule | None = None

    @property
    def url_rule(self) -> Rule | None:
        return self._url_rule

    @url_rule.setter
    def url_rule(self, rule: Rule | None) -> None:  # Flask sets it when it matches the request
        self._url_rule = rule
        if rule is not None:
            self.environ[ROUTE_KEY] = rule.rule


class ResponseCache:
    def __init__(self, engine: Engine, check_interval: float, max_age: int, max_bytes: int = 32 * 1024 * 1024) -> None:
        self.engine = engine
        self.check_interval = check_interval
        self.max_age = max_age
        self.max_bytes = max_bytes
        self._lock = threading.Lock()
        self._entries: OrderedDict[_Key, _Entry] = OrderedDict()
        self._bytes = 0
        self._params: dict[str, frozenset[str] | None] = {}  # per path: the parameters its view reads
        self._generation = -1
        self._checked_at = 0.0

    @property
    def entries(self) -> int:
        return len(self._entries)

    @property
    def bytes(self) -> int:
        """The bytes the entries hold (bodies and a fixed overhead each)."""
        return self._bytes

    def generation(self) -> int | None:
        """The index generation, or None when the database cannot say (then nothing is cached or served)."""
        now = time.monotonic()
        if now - self._checked_at >= self.check_interval:
            try:
                with self.engine.connect() as conn:
                    generation = conn.scalar(select(IndexState.generation).where(IndexState.id == 1)) or 0
            except SQLAlchemyError:
                with self._lock:
                    self.clear()
                    self._generation, self._checked_at = -1, 0.0
                return None
            with self._lock:
                if generation != self._generation:
                    self.clear()
                    self._generation = generation
                self._checked_at = now
        return self._generation

    def clear(self) -> None:
        """Forget every kept answer (callers hold no lock; the generation check holds it)."""
        self._entries.clear()
        self._bytes = 0

    def _key(self, environ: Environ, generation: int, params: frozenset[str] | None) -> _Key:
        path = environ.get("SCRIPT_NAME", "") + environ.get("PATH_INFO", "")
        host = f"{environ.get('wsgi.url_scheme', 'http')}://{environ.get('HTTP_HOST', '')}"  # answers hold links
        pairs = parse_qsl(environ.get("QUERY_STRING", ""), keep_blank_values=True)
        kept = tuple(p for p in pairs if params is None or p[0] in params)
        return (generation, host, path, kept)

    def store(self, environ: Environ, response: Response, read: set[str] | None) -> None:
        """Remember a finished 200 answer to a GET (with its ETag already set), under the generation taken when
        the request came in and the parameters its view read."""
        generation = environ.get(_GENERATION_KEY)
        if generation is None or response.is_streamed or response.direct_passthrough:
            return
        body = response.get_data()
        etag = response.get_etag()[0]
        if len(body) > min(MAX_BODY_BYTES, self.max_bytes // 4) or not etag:
            return
        headers = list(response.headers.items())
        kept = {"etag", "cache-control", "vary"}
        entry = _Entry(etag, headers, [(k, v) for k, v in headers if k.lower() in kept], body)
        path = environ.get("SCRIPT_NAME", "") + environ.get("PATH_INFO", "")
        with self._lock:
            known = self._params.get(path, frozenset())
            params = None if read is None or known is None else known | read
            self._params[path] = params
            if generation != self._generation:
                return  # the index changed while the view ran: the answer is for an index no longer served
            key = self._key(environ, generation, params)
            old = self._entries.pop(key, None)
            if old is not None:
                self._bytes -= old.size
            self._entries[key] = entry
            self._bytes += entry.size
            while self._bytes > self.max_bytes and self._entries:
                _, evicted = self._entries.popitem(last=False)
                self._bytes -= evicted.size

    def _lookup(self, environ: Environ, generation: int) -> _Entry | None:
        path = environ.get("SCRIPT_NAME", "") + environ.get("PATH_INFO", "")
        with self._lock:
            if path not in self._params:
                return None
            key = self._key(environ, generation, self._params[path])
            entry = self._entries.get(key)
            if entry is not None:
                self._entries.move_to_end(key)
            return entry

    @property
    def enabled(self) -> bool:
        """False when it may hold no bytes (TASKHUB_RESPONSE_CACHE_BYTES=0): then it costs a request nothing."""
        return self.max_bytes > 0

    def wrap(self, app: WSGIApp) -> WSGIApp:
        """A WSGI app that answers cached GETs itself and hands everything else to app (app itself when the
        cache is off)."""
        if not self.enabled:
            return app

        def cached_or_app(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
            if environ.get("REQUEST_METHOD") == "GET" and "HTTP_RANGE" not in environ:
                generation = self.generation()
                if generation is not None:
                    environ[_GENERATION_KEY] = generation
                    entry = self._lookup(environ, generation)
                    if entry is not None:
                        if_none_match = environ.get("HTTP_IF_NONE_MATCH")
                        if if_none_match and parse_etags(if_none_match).contains_weak(entry.etag):
                            start_response("304 NOT MODIFIED", entry.not_modified_headers)
                            return []
                        start_response("200 OK", entry.headers)
                        return [entry.body]
            return app(environ, start_response)

        return cached_or_app


def cache_responses(bp: Blueprint) -> None:
    """Give every 200 GET answer of bp an ETag and Cache-Control, and remember it for the WSGI wrapper."""

    @bp.after_request
    def _remember(response: Response) -> Response:
        asked = request._get_current_object()  # type: ignore[attr-defined]  # one lookup through the proxy
        environ = asked.environ
        if environ["REQUEST_METHOD"] != "GET" or response.status_code != 200:
            return response
        cache: ResponseCache = current_app.extensions["taskhub.response_cache"]
        # The names the view set, read once: each header werkzeug does not find raises and catches an exception.
        present = {name.lower() for name, _ in response.headers}
        if "cache-control" not in present:
            response.headers.add("Cache-Control", f"public, max-age={cache.max_age}")
        elif response.cache_control.no_store:
            return response  # a status answer says no-store: it must not also say public
        else:
            response.cache_control.public = True
            response.cache_control.max_age = cache.max_age
        if "etag" not in present:
            response.headers.add("ETag", quote_etag(generate_etag(response.get_data())))
        if cache.enabled:
            # werkzeug keeps request.args in the instance dict once read: a view that never read it read no names
            args = asked.__dict__.get("args")
            cache.store(environ, response, args.read if isinstance(args, QueryArgs) else set())
        if environ.keys().isdisjoint(_CONDITIONAL):  # looks up its five names, not every key of the environ
            _dated(response, present)  # all make_conditional would do for a request that sets no conditions
        else:
            response.make_conditional(asked)
        return response


# What makes werkzeug's make_conditional answer 304, 412 or 206 instead of the 200.
_CONDITIONAL = frozenset(
    ("HTTP_IF_NONE_MATCH", "HTTP_IF_MATCH", "HTTP_IF_MODIFIED_SINCE", "HTTP_IF_UNMODIFIED_SINCE", "HTTP_RANGE")
)
_date = (0, "")  # (second, its HTTP date): formatting one costs more than the rest of an answer's headers


def _dated(response: Response, present: set[str]) -> None:
    """Date and Content-Length as make_conditional sets them on an unconditional GET."""
    global _date
    if "date" not in present:
        now, stamp = int(time.time()), _date  # one read: the old pair or the new one, never half of each
        if stamp[0] != now:
            stamp = _date = (now, http_date(now))
        response.headers.add("Date", stamp[1])
    if response.automatically_set_content_length and "content-length" not in present:
        length = response.calculate_content_length()
        if length is not None:
            response.headers.add("Content-Length", str(length))
