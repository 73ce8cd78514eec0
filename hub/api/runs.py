"""The runs API: start runs and read their records (/v1/runs).

``POST /v1/runs`` takes a TaskRun or PipelineRun (JSON, or YAML with ``Content-Type: application/yaml``), records
it as Pending, queues its `run` job and answers 202 at once with the record (its own link in ``links.self``) and
the job's Location (/v1/jobs/ID); a worker then pins it and runs it on the configured backend (TASKHUB_RUN_BACKEND).
References are resolved after the answer, as a cluster resolves them after `kubectl create`: one that cannot be
resolved ends the run Failed, reason ResolutionFailed, with the message. Reads follow the hub's read rules; starting
and cancelling need ``runs:write``.
"""

from __future__ import annotations

import json
from typing import Any

from flask import Blueprint, Response, current_app, jsonify, request, url_for
from werkzeug.exceptions import UnsupportedMediaType

from catalog.errors import Conflict, InvalidRequest, NotFound
from hub.services import RunService
from hub.urls import base_url
from hub.wsgi.auth import check_run_reader, current_identity, require_scope
from runner.launch import InvalidRun, check_run, parse_run
from runner.models import FINISHED, STATUSES
from runner.records import RunRecords
from runner.run_details import RunDetail, logs_as_text

bp = Blueprint("runs_api", __name__)

YAML_TYPES = ("application/yaml", "application/x-yaml", "text/yaml", "text/x-yaml")
MAX_LIMIT = 100
DEFAULT_LIMIT = 20
MAX_ID = 2**31 - 1  # the id column is a 32-bit integer on PostgreSQL


def run_service() -> RunService:
    return current_app.extensions["taskhub.services"].runs


def records() -> RunRecords:
    return current_app.extensions["taskhub.runs"]


@bp.before_request
def _readable() -> None:
    if request.method in ("GET", "HEAD"):
        check_run_reader()


@bp.after_request
def _not_cached(response: Response) -> Response:
    response.headers["Cache-Control"] = "no-store"  # a run changes until it ends
    return response


# -- starting and cancelling -----------------------------------------------------------------------------------


@bp.post("/v1/runs")
@require_scope("runs:write")
def start_run() -> tuple[Response, int, dict[str, str]]:
    """Record the run in the body and queue its job: 202 with the Pending record, and the job as Location. The
    backend must be one the operator accepts for API runs (503 with the reason otherwise)."""
    pass_through = request.args.get("passThrough", "false")
    if pass_through not in ("true", "false"):
        raise InvalidRequest("passThrough must be true or false", reason="invalid-params")
    obj = _run_of_body()
    identity = current_identity()
    run_id, job_id = run_service().submit(
        obj,
        created_by=identity.name if identity else "",
        base_url=base_url(),
        pass_through=pass_through == "true",
    )
    body = _with_links(_detail(run_id).to_json(), run_id)
    job = url_for("jobs_api.get_job", job_id=job_id)
    body["job"], body["links"]["job"] = job_id, job
    return jsonify(data=body), 202, {"Location": job}


@bp.post("/v1/runs/<int:run_id>/cancel")
@require_scope("runs:write")
def cancel_run(run_id: int) -> tuple[Response, int]:
    """Ask the run to stop (one still queued ends at once): 202 while it is Pending or Running, 409 once it has
    ended."""
    status = run_service().cancel(run_id) if run_id <= MAX_ID else None
    if status is None:
        raise NotFound(f"run {run_id} not found")
    if status in FINISHED:
        raise Conflict(f"run {run_id} already ended: {status}")
    return jsonify(data=_with_links(_detail(run_id).to_json(), run_id)), 202


def _run_of_body() -> dict[str, Any]:
    data = request.get_data(cache=False)  # more than MAX_CONTENT_LENGTH: 413
    try:
        text = data.decode()
    except UnicodeDecodeError:
        raise InvalidRun("the body is not UTF-8 text") from None
    if request.mimetype in YAML_TYPES:
        return parse_run(text, aliases=False)
    if request.mimetype not in ("application/json", ""):
        raise UnsupportedMediaType(f"send the run as application/json or application/yaml, not {request.mimetype}")
    try:
        obj = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise InvalidRun(f"not JSON: {exc}") from None
    return check_run(obj)


# -- reading -----------------------------------------------------------------------------------------------------


@bp.get("/v1/runs")
def list_runs() -> tuple[Response, int, dict[str, str]]:
    """The newest runs first, a page at a time; the total is in Pagination-Total-Count."""
    limit = int_arg("limit", DEFAULT_LIMIT, 1, MAX_LIMIT)
    offset = int_arg("offset", 0, 0, MAX_ID)
    status = request.args.get("status") or None
    if status is not None and status not in STATUSES:
        raise InvalidRequest(f"status must be one of: {', '.join(STATUSES)}", reason="invalid-params")
    summaries, total = records().recent(limit=limit, offset=offset, status=status)
    body = [_with_links(summary.to_json(), summary.id) for summary in summaries]
    return jsonify(data=body), 200, {"Pagination-Total-Count": str(total)}


@bp.get("/v1/runs/<int:run_id>")
def get_run(run_id: int) -> Response:
    """Everything stored about one run: params, lock, tasks, final object, child TaskRuns, timings."""
    return jsonify(data=_with_links(_detail(run_id).to_json(), run_id))


@bp.get("/v1/runs/<int:run_id>/logs")
def get_run_logs(run_id: int) -> Response:
    """Each container's output; ?task= keeps one pipeline task (or TaskRun); text/plain as `taskhub runs logs`."""
    detail = _detail(run_id)
    task = request.args.get("task")
    task_run = None
    if task:
        task_run = detail.task_run_named(task)
        if task_run is None:
            raise NotFound(f"run {run_id} has no task or TaskRun named {task[:100]!r}")
    wanted = request.args.get("format")
    if wanted not in (None, "json", "text"):
        raise InvalidRequest(f"format must be json or text, not {wanted[:40]!r}", reason="invalid-params")
    logs = records().logs(run_id, task_run)
    if wanted == "text" or (wanted is None and _prefers_text()):
        return Response(logs_as_text(detail, logs), mimetype="text/plain")
    tasks = {row.task_run: row.task for row in detail.tasks if row.task_run}
    return jsonify(
        data=[
            {"task": tasks.get(log.task_run, log.task_run), "taskRun": log.task_run, "container": log.container,
             "step": log.container.removeprefix("step-"), "text": log.text}
            for log in logs
        ]
    )  # fmt: skip


def _prefers_text() -> bool:
    return request.accept_mimetypes.best_match(["application/json", "text/plain"]) == "text/plain"


def _detail(run_id: int) -> RunDetail:
    detail = records().get(run_id) if run_id <= MAX_ID else None
    if detail is None:
        raise NotFound(f"run {run_id} not found")
    return detail


def int_arg(name: str, default: int, low: int, high: int) -> int:
    raw = request.args.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise InvalidRequest(f"{name} must be an integer", reason="invalid-params") from None
    if not low <= value <= high:
        raise InvalidRequest(f"{name} must be between {low} and {high}", reason="invalid-params")
    return value


def _link(run_id: int) -> str:
    return url_for("runs_api.get_run", run_id=run_id)


def _with_links(body: dict[str, Any], run_id: int) -> dict[str, Any]:
    body["links"] = {
        "self": _link(run_id),
        "logs": url_for("runs_api.get_run_logs", run_id=run_id),
        "cancel": url_for("runs_api.cancel_run", run_id=run_id),
    }
    return body
