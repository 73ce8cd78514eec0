"""Caching of API GET answers: ETag and Cache-Control for clients, and a per-worker cache of whole responses.

Every answer of the read APIs is a function of the URL and the index, and the index has a generation number
that every change bumps. A worker keeps answers keyed by (generation, host, URL) and looks the generation up
at most every ``generation_check_interval`` seconds, so a repeated request costs no query at all.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from dataclasses import dataclass

from flask import Blueprint, Request, Response, current_app, request
from sqlalchemy import Engine, select
from werkzeug.wrappers import Response as BaseResponse

from catalog.models import IndexState

MAX_ENTRIES = 4096
MAX_BODY_BYTES = 2 * 1024 * 1024


@dataclass(frozen=True)
class _Entry:
    status: int
    headers: tuple[tuple[str, str], ...]
    body: bytes


class ResponseCache:
    def __init__(self, engine: Engine, check_interval: float, max_age: int) -> None:
        self.engine = engine
        self.check_interval = check_interval
        self.max_age = max_age
        self._lock = threading.Lock()
        self._entries: OrderedDict[tuple[int, str, str], _Entry] = OrderedDict()
        self._generation = -1
        self._checked_at = 0.0

    def generation(self) -> int:
        now = time.monotonic()
        if now - self._checked_at >= self.check_interval:
            with self.engine.connect() as conn:
                generation = conn.scalar(select(IndexState.generation).where(IndexState.id == 1)) or 0
            with self._lock:
                if generation != self._generation:
                    self._entries.clear()
                    self._generation = generation
                self._checked_at = now
        return self._generation

    def _key(self, req: Request) -> tuple[int, str, str]:
        return (self.generation(), req.host, req.full_path)

    def lookup(self, req: Request) -> BaseResponse | None:
        key = self._key(req)
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None:
                self._entries.move_to_end(key)
        if entry is None:
            return None
        response = Response(entry.body, status=entry.status, headers=list(entry.headers))
        return response.make_conditional(req)

    def store(self, req: Request, response: Response) -> None:
        if response.status_code != 200 or response.direct_passthrough or response.is_streamed:
            return
        body = response.get_data()
        if len(body) > MAX_BODY_BYTES:
            return
        entry = _Entry(response.status_code, tuple(response.headers.items()), body)
        key = self._key(req)
        with self._lock:
            self._entries[key] = entry
            while len(self._entries) > MAX_ENTRIES:
                self._entries.popitem(last=False)


def _cache() -> ResponseCache:
    return current_app.extensions["taskhub.response_cache"]


def cache_responses(bp: Blueprint) -> None:
    """Serve repeated GETs of bp from the cache; give every 200 an ETag and Cache-Control."""

    @bp.before_request
    def _serve_cached() -> BaseResponse | None:
        if request.method not in ("GET", "HEAD"):
            return None
        return _cache().lookup(request)

    @bp.after_request
    def _remember(response: Response) -> BaseResponse:
        if request.method not in ("GET", "HEAD") or response.status_code != 200 or "ETag" in response.headers:
            return response
        response.cache_control.public = True
        response.cache_control.max_age = _cache().max_age
        response.add_etag()
        _cache().store(request, response)
        return response.make_conditional(request)
