"""The jobs API: background work as the queue records it (/v1/jobs), and cancelling it.

What the write endpoints queue (a refresh, a registry sync, a publish, a run) answers 202 with `Location:
/v1/jobs/{id}`; polling that shows its state, progress, result and error. A job is readable with runs:read (jobs
carry runs, their targets and errors) or with the scope that queues its kind, and public when run records are
(TASKHUB_PUBLIC_RUNS); cancelling needs the scope that queues its kind.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from flask import Blueprint, Response, current_app, jsonify, request, url_for

from catalog.errors import InvalidRequest, NotFound
from hub.api.runs import DEFAULT_LIMIT, MAX_ID, MAX_LIMIT, int_arg
from hub.services import Services
from hub.tokens import InvalidToken, MissingScope
from hub.wsgi.auth import RUN_READ_SCOPES, current_identity
from jobs import KINDS
from jobs.models import STATES, Job

bp = Blueprint("jobs_api", __name__)

# The scope that queues (and so may read and cancel) each kind of job.
KIND_SCOPES = {
    "catalog-sync": "catalog:refresh",
    "registry-sync": "registry:sync",
    "publish": "catalog:publish",
    "run": "runs:write",
    "trigger-event": "objects:write",
}


def job_json(job: Job) -> dict[str, Any]:
    """A job as the API shows it."""
    links = {
        "self": url_for("jobs_api.get_job", job_id=job.id),
        "cancel": url_for("jobs_api.cancel_job", job_id=job.id),
    }
    if job.kind == "run" and job.target.isdigit():
        links["run"] = url_for("runs_api.get_run", run_id=int(job.target))
    return {**job.to_json(), "links": links}


def job_link(job_id: int) -> str:
    return url_for("jobs_api.get_job", job_id=job_id)


def services() -> Services:
    services: Services = current_app.extensions["taskhub.services"]
    return services


def readable_kinds() -> list[str]:
    """The kinds of job the request may read: every one with runs:read (or public run records), else those whose
    scope its token holds; 401 without a token, 403 with a token holding none of them."""
    if current_app.config["TASKHUB"].public_runs:
        return list(KINDS)
    identity = current_identity()
    if identity is None:
        message = (
            "jobs are not public on this hub: send an API token with the 'runs:read' scope or the scope of the job"
        )
        raise InvalidToken(message, reason="missing-token")
    if any(identity.allows(scope) for scope in RUN_READ_SCOPES):
        return list(KINDS)
    kinds = [kind for kind, scope in KIND_SCOPES.items() if identity.allows(scope)]
    if not kinds:
        raise MissingScope("runs:read", identity.name)
    return kinds


def checks_scopes(view: Callable[..., Any]) -> Callable[..., Any]:
    """Marks a view that checks the token's scopes itself (for a private hub's gate, as `require_scope` does)."""

    @functools.wraps(view)
    def checked(*args: Any, **kwargs: Any) -> Any:
        return view(*args, **kwargs)

    checked.required_scope = "the job's kind's"  # type: ignore[attr-defined]
    return checked


@bp.after_request
def _not_cached(response: Response) -> Response:
    response.headers["Cache-Control"] = "no-store"  # a job changes until it ends
    return response


def _job(job_id: int, kinds: list[str]) -> Job:
    job = services().queue.get(job_id) if job_id <= MAX_ID else None
    if job is None or job.kind not in kinds:  # one the token may not read is no job of its
        raise NotFound(f"job {job_id} not found")
    return job


def _choice(name: str, allowed: Any) -> str | None:
    value = request.args.get(name) or None
    if value is not None and value not in allowed:
        raise InvalidRequest(f"{name} must be one of: {', '.join(allowed)}", reason="invalid-params")
    return value


@bp.get("/v1/jobs")
@checks_scopes
def list_jobs() -> tuple[Response, int, dict[str, str]]:
    """The newest jobs first, a page at a time, filtered by kind, state and target; the total is in
    Pagination-Total-Count."""
    kinds = readable_kinds()
    kind = _choice("kind", list(KINDS))
    state = _choice("state", STATES)
    target = request.args.get("target") or None
    limit = int_arg("limit", DEFAULT_LIMIT, 1, MAX_LIMIT)
    offset = int_arg("offset", 0, 0, MAX_ID)
    if kind is not None and kind not in kinds:
        raise MissingScope(KIND_SCOPES[kind], getattr(current_identity(), "name", None))
    listed, total = services().queue.list(
        kind=kind, kinds=None if len(kinds) == len(KINDS) else kinds, state=state, target=target, limit=limit,
        offset=offset,
    )  # fmt: skip
    return jsonify(data=[job_json(job) for job in listed]), 200, {"Pagination-Total-Count": str(total)}


@bp.get("/v1/jobs/<int:job_id>")
@checks_scopes
def get_job(job_id: int) -> Response:
    return jsonify(data=job_json(_job(job_id, readable_kinds())))


@bp.post("/v1/jobs/<int:job_id>/cancel")
@checks_scopes
def cancel_job(job_id: int) -> tuple[Response, int]:
    """A queued job is cancelled at once; a running one is asked to stop (202); 409 once it has ended."""
    identity = current_identity()
    if identity is None:
        raise InvalidToken("cancelling a job needs an API token with the scope of its kind", reason="missing-token")
    job = _job(job_id, readable_kinds())
    scope = KIND_SCOPES.get(job.kind, "admin")
    if not identity.allows(scope):
        raise MissingScope(scope, identity.name)
    services().cancel_job(job_id)
    return jsonify(data=job_json(_job(job_id, [job.kind]))), 202
