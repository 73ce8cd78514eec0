"""Writes and administration over HTTP: catalog refresh, registry sync, publish, and API tokens.

Each endpoint needs a token with its scope (`hub.wsgi.auth.require_scope`). Syncs and publishes run synchronously in
the request through the services the command line uses (hub.services), and answer with Tekton Hub's Job shape
(``{id, catalogName, status}``) plus what was done.
"""

from __future__ import annotations

import itertools
import logging
import time
from dataclasses import dataclass, field
from typing import Any

from flask import Blueprint, Response, current_app, jsonify, request

from catalog.errors import InvalidRequest, NotFound, TaskhubError
from hub import db
from hub.models import ApiToken
from hub.services import Services
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

log = logging.getLogger(__name__)
bp = Blueprint("admin_api", __name__)
_job_ids = itertools.count(int(time.time() * 1000))


@dataclass
class Job:
    """The outcome of one sync or publish: Tekton Hub's Job fields plus what was done."""

    catalog: str
    status: str = "done"
    summary: list[str] = field(default_factory=list)
    error: str | None = None
    id: int = field(default_factory=lambda: next(_job_ids))

    def json(self) -> dict[str, Any]:
        """The Job as the API returns it."""
        body: dict[str, Any] = {"id": self.id, "catalogName": self.catalog, "status": self.status}
        body["summary"] = self.summary
        if self.error:
            body["error"] = self.error
        return body


def sync_job(name: str) -> Job:
    """Fetch and index one catalog or registry as `taskhub catalog sync` does; a failure keeps the old index."""
    job = Job(catalog=name)
    try:
        job.summary = _services().syncs.sync_here(name, created_by=_requester()).lines()
    except NotFound:
        raise
    except TaskhubError as exc:
        job.status, job.error = "failed", str(exc)
    log.info("job %s: sync of %s %s", job.id, name, job.status)
    return job


def publish_job(name: str, target: str) -> Job:
    """Push every indexed version of a catalog to target as `taskhub catalog publish` does."""
    job = Job(catalog=name)
    summary = _services().publish.publish_here(name, target, created_by=_requester())
    job.summary = summary.lines()
    if summary.failed or summary.stopped:
        job.status, job.error = "failed", summary.stopped or "some versions were not published"
    log.info("job %s: publish of %s to %s %s", job.id, name, target, job.status)
    return job


def _services() -> Services:
    services: Services = current_app.extensions["taskhub.services"]
    return services


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
def refresh_catalog(name: str) -> Response:
    (name,) = _services().syncs.names(name)  # 404 before any work
    return jsonify(sync_job(name).json())


@bp.post("/v1/catalog/refresh")
@bp.post("/catalog/refresh")
@require_scope("catalog:refresh")
def refresh_all() -> Response:
    return jsonify([sync_job(n).json() for n in _services().syncs.names()])


@bp.post("/v1/registries/<name>/sync")
@require_scope("registry:sync")
def sync_registry(name: str) -> Response:
    (name,) = _services().syncs.names(name, registries_only=True)
    return jsonify(sync_job(name).json())


@bp.post("/v1/catalog/<name>/publish")
@require_scope("catalog:publish")
def publish(name: str) -> Response:
    target = _string(_json_object(), "registry")
    _services().publish.check(name, target)
    return jsonify(publish_job(name.lower(), target).json())


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
