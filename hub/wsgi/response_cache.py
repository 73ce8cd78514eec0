"""Caching of API GET answers: ETag and Cache-Control for clients, and a per-worker cache of whole responses.

Every answer of the read APIs is a function of the URL and the index, and the index has a generation number
that every change bumps. A worker keeps answers keyed by (generation, host, URL) and looks the generation up
at most every ``generation_check_interval`` seconds. Hits are answered by a WSGI wrapper in front of Flask,
so a repeated request costs no query and no Flask request at all.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass

from flask import Blueprint, Response, current_app, request
from sqlalchemy import Engine, select
from sqlalchemy.exc import SQLAlchemyError
from werkzeug.http import parse_etags

from catalog.models import IndexState
from hub.wsgi.server import Environ, StartResponse, WSGIApp

MAX_ENTRIES = 4096
MAX_BODY_BYTES = 2 * 1024 * 1024


@dataclass(frozen=True)
class _Entry:
    etag: str
    headers: list[tuple[str, str]]
    not_modified_headers: list[tuple[str, str]]
    body: bytes


class ResponseCache:
    def __init__(self, engine: Engine, check_interval: float, max_age: int) -> None:
        self.engine = engine
        self.check_interval = check_interval
        self.max_age = max_age
        self._lock = threading.Lock()
        self._entries: dict[tuple[int, str, str, str], _Entry] = {}
        self._generation = -1
        self._checked_at = 0.0

    def generation(self) -> int | None:
        """The index generation, or None when the database cannot say (then nothing is cached or served)."""
        now = time.monotonic()
        if now - self._checked_at >= self.check_interval:
            try:
                with self.engine.connect() as conn:
                    generation = conn.scalar(select(IndexState.generation).where(IndexState.id == 1)) or 0
            except SQLAlchemyError:
                with self._lock:
                    self._entries.clear()
                    self._generation, self._checked_at = -1, 0.0
                return None
            with self._lock:
                if generation != self._generation:
                    self._entries.clear()
                    self._generation = generation
                self._checked_at = now
        return self._generation

    def _key(self, environ: Environ) -> tuple[int, str, str, str] | None:
        generation = self.generation()
        if generation is None:
            return None
        path = environ.get("SCRIPT_NAME", "") + environ.get("PATH_INFO", "")
        host = f"{environ.get('wsgi.url_scheme', 'http')}://{environ.get('HTTP_HOST', '')}"  # answers hold links
        return (generation, host, path, environ.get("QUERY_STRING", ""))

    def store(self, environ: Environ, response: Response) -> None:
        """Remember a finished 200 answer to a GET (with its ETag already set)."""
        if response.is_streamed or response.direct_passthrough:
            return
        body = response.get_data()
        etag = response.get_etag()[0]
        if len(body) > MAX_BODY_BYTES or not etag:
            return
        headers = list(response.headers.items())
        kept = {"etag", "cache-control", "vary"}
        entry = _Entry(etag, headers, [(k, v) for k, v in headers if k.lower() in kept], body)
        key = self._key(environ)
        if key is None:
            return
        with self._lock:
            if len(self._entries) >= MAX_ENTRIES:
                del self._entries[next(iter(self._entries))]
            self._entries[key] = entry

    def wrap(self, app: WSGIApp) -> WSGIApp:
        """A WSGI app that answers cached GETs itself and hands everything else to app."""

        def cached_or_app(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
            if environ.get("REQUEST_METHOD") == "GET" and "HTTP_RANGE" not in environ:
                key = self._key(environ)
                entry = self._entries.get(key) if key is not None else None
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
        if request.method != "GET" or response.status_code != 200 or response.cache_control.no_store:
            return response  # a status answer says no-store: it must not also say public
        cache: ResponseCache = current_app.extensions["taskhub.response_cache"]
        response.cache_control.public = True
        response.cache_control.max_age = cache.max_age
        response.add_etag()
        cache.store(request.environ, response)
        response.make_conditional(request)
        return response
