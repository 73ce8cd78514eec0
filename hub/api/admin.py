"""Writes and administration over HTTP: catalog refresh, registry sync, publish, and API tokens.

Each endpoint needs a token with its scope (`hub.wsgi.auth.require_scope`). Syncs and publishes are queued as jobs
for a worker (hub.services, which the command line runs in the foreground) and answered at once: 202, with Tekton
Hub's Job fields (``{id, catalogName, status}``, the id being the job's) and the job as /v1/jobs shows it, whose
Location says where to watch it.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, jsonify, request

from catalog.errors import InvalidRequest
from hub import db
from hub.api.jobs import job_json, job_link, services
from hub.models import ApiToken
from hub.tokens import (
    check_grant,
    check_scopes,
    create_token,
    list_tokens,
    live_token,
    revoke_token,
    token_state,
)
from hub.wsgi.auth import current_identity, require_scope
from jobs import Enqueued

bp = Blueprint("admin_api", __name__)


def _queued(name: str, enqueued: Enqueued) -> dict[str, Any]:
    """Tekton Hub's Job fields ({id, catalogName, status}) of a queued job, with the job as /v1/jobs shows it."""
    job = services().queue.get(enqueued.id)
    assert job is not None
    return {**job_json(job), "catalogName": name, "status": job.state}


def _accepted(name: str, enqueued: Enqueued) -> tuple[Response, int, dict[str, str]]:
    return jsonify(_queued(name, enqueued)), 202, {"Location": job_link(enqueued.id)}


def _requester() -> str:
    identity = current_identity()
    return identity.name if identity else ""


def _json_object() -> dict[str, Any]:
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise InvalidRequest("the request body must be a JSON object", reason="invalid-payload")
    return body


def _string(body: dict[str, Any], key: str, default: str | None = None) -> str:
    value = body.get(key, default)
    if not isinstance(value, str) or not value:
        raise InvalidRequest(f"{key!r} must be a non-empty string", reason="invalid-payload")
    return value


# -- catalogs and registries ------------------------------------------------------------------------------


@bp.post("/v1/catalog/<name>/refresh")
@bp.post("/catalog/<name>/refresh")
@require_scope("catalog:refresh")
def refresh_catalog(name: str) -> tuple[Response, int, dict[str, str]]:
    """Queue a sync of the catalog (joining one already queued): 202, the job as Location."""
    (name,) = services().syncs.names(name)  # 404 before anything is queued
    return _accepted(name, services().syncs.request(name, created_by=_requester()))


@bp.post("/v1/catalog/refresh")
@bp.post("/catalog/refresh")
@require_scope("catalog:refresh")
def refresh_all() -> tuple[Response, int]:
    """Queue a sync of every catalog: 202 with their jobs."""
    syncs = services().syncs
    return jsonify([_queued(n, syncs.request(n, created_by=_requester())) for n in syncs.names()]), 202


@bp.post("/v1/registries/<name>/sync")
@require_scope("registry:sync")
def sync_registry(name: str) -> tuple[Response, int, dict[str, str]]:
    (name,) = services().syncs.names(name, registries_only=True)
    return _accepted(name, services().syncs.request(name, created_by=_requester()))


@bp.post("/v1/catalog/<name>/publish")
@require_scope("catalog:publish")
def publish(name: str) -> tuple[Response, int, dict[str, str]]:
    """Check the target, then queue the publish: 202, the job as Location."""
    target = _string(_json_object(), "registry")
    services().publish.check(name, target)
    (name,) = services().syncs.names(name)
    return _accepted(name, services().publish.request(name, target, created_by=_requester()))


# -- tokens -----------------------------------------------------------------------------------------------


def token_json(row: ApiToken) -> dict[str, Any]:
    """A token as listed: everything but its text, which is never stored."""

    def stamp(moment: Any) -> str | None:
        return moment.isoformat() if moment else None

    return {
        "name": row.name,
        "scopes": row.scopes,
        "state": token_state(row),
        "createdBy": row.created_by,
        "createdAt": stamp(row.created_at),
        "expiresAt": stamp(row.expires_at),
        "lastUsedAt": stamp(row.last_used_at),
        "revokedAt": stamp(row.revoked_at),
    }


@bp.post("/v1/tokens")
@require_scope("tokens:create")
def create() -> tuple[Response, int]:
    body = _json_object()
    scopes = body.get("scopes")
    if not isinstance(scopes, list) or not all(isinstance(s, str) for s in scopes):
        raise InvalidRequest("'scopes' must be a list of strings", reason="invalid-payload")
    creator = current_identity()
    assert creator is not None  # require_scope saw it
    check_grant(creator, check_scopes(scopes))
    session = db.session()
    with session.begin():
        created = create_token(
            session,
            _string(body, "name"),
            scopes,
            _string(body, "expires") if "expires" in body else None,
            creator=creator,
        )
    expires_at = created.expires_at.isoformat() if created.expires_at else None
    data = {"name": created.name, "scopes": created.scopes, "expiresAt": expires_at, "token": created.token}
    return jsonify(data=data), 201


@bp.get("/v1/tokens")
@require_scope("tokens:create")
def tokens() -> Response:
    response = jsonify(data=[token_json(t) for t in list_tokens(db.session(), current_identity())])
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.delete("/v1/tokens/<name>")
@require_scope("tokens:create")
def revoke(name: str) -> Response:
    creator = current_identity()
    assert creator is not None
    session = db.session()
    with session.begin():
        check_grant(creator, live_token(session, name, viewer=creator).scopes)
        row = revoke_token(session, name, viewer=creator)
        data = token_json(row)
    return jsonify(data=data)
