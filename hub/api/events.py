"""The events API: every request the sinks and catalog webhooks received, newest first, and one event in detail
(headers with secret values redacted, each trigger's outcome, the runs it created). Reads follow the hub's read
rules, as runs do; bodies are never served."""

from __future__ import annotations

import uuid

from flask import Blueprint, Response, current_app, jsonify, request, url_for

from catalog.errors import InvalidRequest, NotFound
from hub.triggers_service import TriggersService
from triggers.events import event_json
from triggers.models import CATALOG, EVENT_STATUSES, LISTENER, TriggerEvent

bp = Blueprint("events_api", __name__)
MAX_LIMIT, DEFAULT_LIMIT, MAX_ID = 100, 20, 2**31 - 1


def service() -> TriggersService:
    return current_app.extensions["taskhub.triggers"]


@bp.after_request
def _not_cached(response: Response) -> Response:
    response.headers["Cache-Control"] = "no-store"  # an event changes until it is processed
    return response


def _choice(name: str, allowed: tuple[str, ...]) -> str | None:
    value = request.args.get(name) or None
    if value is not None and value not in allowed:
        raise InvalidRequest(f"{name} must be one of: {', '.join(allowed)}", reason="invalid-params")
    return value


def _int(name: str, default: int, low: int, high: int) -> int:
    raw = request.args.get(name)
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise InvalidRequest(f"{name} must be an integer", reason="invalid-params") from None
    if not low <= value <= high:
        raise InvalidRequest(f"{name} must be between {low} and {high}", reason="invalid-params")
    return value


def _with_link(body: dict, row: TriggerEvent) -> dict:
    body["links"] = {"self": url_for("events_api.get_event", key=str(row.id))}
    return body


@bp.get("/v1/events")
def list_events() -> tuple[Response, int, dict[str, str]]:
    """The newest events first; ?source=listener|catalog, ?namespace=, ?name=, ?status= narrow them."""
    rows, total = service().events.recent(
        source=_choice("source", (LISTENER, CATALOG)), namespace=request.args.get("namespace") or None,
        name=request.args.get("name") or None, status=_choice("status", EVENT_STATUSES),
        limit=_int("limit", DEFAULT_LIMIT, 1, MAX_LIMIT), offset=_int("offset", 0, 0, MAX_ID),
    )  # fmt: skip
    return jsonify(data=[_with_link(event_json(r), r) for r in rows]), 200, {"Pagination-Total-Count": str(total)}


@bp.get("/v1/events/<key>")
def get_event(key: str) -> Response:
    """One event by its number or its eventID: headers, outcomes, created runs."""
    return jsonify(data=_with_link(event_json(event_of(key), detail=True), event_of(key)))


def event_of(key: str) -> TriggerEvent:
    lookup: int | str
    if key.isascii() and key.isdigit() and int(key) <= MAX_ID:  # "³".isdigit(), but int() refuses it
        lookup = int(key)
    else:
        try:
            lookup = str(uuid.UUID(key))
        except ValueError:
            raise NotFound(f"event {key[:80]!r} not found") from None
    row = service().events.get(lookup)
    if row is None:
        raise NotFound(f"event {key[:80]} not found")
    return row
