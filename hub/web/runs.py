"""The runs pages: the list of runs and one run with its task graph, statuses, timings and logs."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from flask import Blueprint, current_app, render_template, request

from catalog.errors import NotFound
from hub.wsgi.auth import check_run_reader
from runner.models import STATUSES
from runner.records import RunRecords
from runner.run_details import format_duration
from runner.run_graph import draw, logs_by_node, run_graph

bp = Blueprint("runs_web", __name__)
bp.before_request(check_run_reader)  # runs' params and logs are not public unless the operator says so

PAGE_SIZE = 25
MAX_PAGE_SIZE = 100
REFRESH_SECONDS = 2  # how often the page of a run that has not ended reloads itself
_LARGEST_ID = 2**31 - 1  # runs.id is a 32-bit integer; a larger id is no run, not a database error


def _records() -> RunRecords:
    records: RunRecords = current_app.extensions["taskhub.runs"]
    return records


def _bounded_int(name: str, default: int, lowest: int, highest: int) -> int:
    """An integer query argument clamped to [lowest, highest]; the default when it is missing or no number."""
    try:
        value = int(request.args.get(name, default))
    except ValueError:
        return default
    return min(max(value, lowest), highest)


@bp.get("/runs")
def runs() -> str:
    status = request.args.get("status", "")
    status = status if status in STATUSES else ""
    limit = _bounded_int("limit", PAGE_SIZE, 1, MAX_PAGE_SIZE)
    offset = _bounded_int("offset", 0, 0, _LARGEST_ID)
    summaries, total = _records().recent(limit=limit, offset=offset, status=status or None)
    return render_template(
        "runs.html",
        runs=summaries,
        total=total,
        status=status,
        statuses=STATUSES,
        limit=limit,
        offset=offset,
        page_size=PAGE_SIZE,
    )


@bp.get("/runs/<int:run_id>")
def run(run_id: int) -> str:
    records = _records()
    detail = records.get(run_id) if run_id <= _LARGEST_ID else None
    if detail is None:
        raise NotFound(f"There is no run {run_id}.")
    graph = run_graph(detail.object, detail.children, ended=detail.finished)
    logs, other_logs = logs_by_node(graph, records.logs(run_id))
    return render_template(
        "run.html",
        run=detail,
        graph=graph,
        drawing=draw(graph),
        logs=logs,
        other_logs=other_logs,
        refresh=None if detail.finished else REFRESH_SECONDS,
    )


@bp.app_template_filter("run_duration")
def run_duration(seconds: float | None) -> str:
    """<1s, 42s, 1m 05s, 2h 03m; a dash when unknown."""
    return "—" if seconds is None else format_duration(seconds)


@bp.app_template_filter("run_time")
def run_time(value: datetime | None) -> str:
    """A UTC time to the second; a dash when there is none."""
    if value is None:
        return "—"
    if value.tzinfo is not None:
        value = value.astimezone(UTC)
    return value.strftime("%Y-%m-%d %H:%M:%S UTC")


@bp.app_template_filter("run_value")
def run_value(value: Any) -> str:
    """A param value as written: a string as it is, an array or object as JSON."""
    return value if isinstance(value, str) else json.dumps(value)
