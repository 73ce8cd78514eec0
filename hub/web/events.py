"""The events pages: every request the sinks and catalog webhooks received, and one event with its headers
(secret values redacted) and what each trigger did: which interceptor stopped it and why, which runs it made."""

from __future__ import annotations

from flask import Blueprint, current_app, render_template, request

from catalog.errors import NotFound
from hub.triggers_service import TriggersService
from triggers.events import event_json
from triggers.models import EVENT_STATUSES

bp = Blueprint("events_web", __name__)
PAGE_SIZE, MAX_PAGE_SIZE, LARGEST_ID = 25, 100, 2**31 - 1


def _bounded(name: str, default: int, lowest: int, highest: int) -> int:
    try:
        value = int(request.args.get(name, default))
    except ValueError:
        return default
    return min(max(value, lowest), highest)


@bp.get("/events")
def events() -> str:
    service: TriggersService = current_app.extensions["taskhub.triggers"]
    status = request.args.get("status", "")
    status = status if status in EVENT_STATUSES else ""
    limit, offset = _bounded("limit", PAGE_SIZE, 1, MAX_PAGE_SIZE), _bounded("offset", 0, 0, LARGEST_ID)
    rows, total = service.events.recent(status=status or None, limit=limit, offset=offset)
    return render_template("events.html", events=[event_json(r) for r in rows], total=total, status=status,
                           statuses=EVENT_STATUSES, limit=limit, offset=offset, page_size=PAGE_SIZE)  # fmt: skip


@bp.get("/events/<int:number>")
def event(number: int) -> str:
    service: TriggersService = current_app.extensions["taskhub.triggers"]
    row = service.events.get(number) if number <= LARGEST_ID else None
    if row is None:
        raise NotFound(f"event {number} not found")
    return render_template("event.html", event=event_json(row, detail=True))
