"""The jobs pages: background work (syncs, publishes, runs, events) as the queue records it, and one job's detail."""

from __future__ import annotations

import json
from typing import Any

from flask import Blueprint, render_template, request

from catalog.errors import NotFound
from hub import db
from hub.api.jobs import readable_kinds
from jobs import JobQueue
from jobs.models import FINISHED, STATES

bp = Blueprint("jobs_web", __name__)

PAGE_SIZE = 25
REFRESH_SECONDS = 2  # how often the page of a job that has not ended reloads itself
_LARGEST_ID = 2**31 - 1  # jobs.id is a 32-bit integer; a larger id is no job, not a database error


def _offset() -> int:
    try:
        return min(max(int(request.args.get("offset", 0)), 0), _LARGEST_ID)
    except ValueError:
        return 0


@bp.get("/jobs")
def jobs() -> str:
    # As the jobs API reads them: every job with runs:read (they carry runs), else the kinds the token queues.
    readable = readable_kinds()
    kind = request.args.get("kind", "")
    kind = kind if kind in readable else ""
    state = request.args.get("state", "")
    state = state if state in STATES else ""
    offset = _offset()
    jobs = JobQueue(db.engine())
    listed, total = jobs.list(kind=kind or None, kinds=readable, state=state or None, limit=PAGE_SIZE, offset=offset)
    return render_template(
        "jobs.html", jobs=listed, total=total, kind=kind, kinds=sorted(readable), state=state, states=STATES,
        offset=offset, page_size=PAGE_SIZE,
    )  # fmt: skip


@bp.get("/jobs/<int:job_id>")
def job(job_id: int) -> str:
    readable = readable_kinds()
    found = JobQueue(db.engine()).get(job_id) if job_id <= _LARGEST_ID else None
    if found is None or found.kind not in readable:  # one the token may not read is no job of its
        raise NotFound(f"There is no job {job_id}.")
    return render_template("job.html", job=found, refresh=None if found.state in FINISHED else REFRESH_SECONDS)


@bp.app_template_filter("job_json")
def job_json(value: Any) -> str:
    """A payload or result as indented JSON."""
    return json.dumps(value, indent=2, sort_keys=True)
