"""Writes and administration over HTTP: catalogs and registries added and their refresh set, catalog refresh,
registry sync, publish, and API tokens.

Each endpoint needs a token with its scope (`hub.wsgi.auth.require_scope`). Syncs and publishes are queued as jobs
for a worker (hub.services, which the command line runs in the foreground) and answered at once: 202, with Tekton
Hub's Job fields (``{id, catalogName, status}``, the id being the job's) and the job as /v1/jobs shows it, whose
Location says where to watch it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Blueprint, Response, jsonify, request
from sqlalchemy.orm import Session

from catalog.errors import CatalogSourceError, InvalidReference, InvalidRequest, NotFound
from catalog.models import CATALOG_TYPES, DEFAULT_REFRESH_SECONDS, OCI, Catalog
from catalog.publish import bundle_target
from catalog.sources import is_git_url
from catalog.sync import add_catalog, get_catalog
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
from jobs.clock import database_now
from jobs.scheduler import parse_refresh, set_refresh, sync_schedules

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


# -- adding catalogs and registries, and how often they are synced ------------------------------------------

_CATALOG_FIELDS = {"name", "source", "revision", "contextDir", "type", "org", "refresh"}
_REGISTRY_FIELDS = {"name", "registry", "repositories", "type", "refresh"}


def _fields(body: dict[str, Any], known: set[str]) -> dict[str, Any]:
    """The body, refused when it holds a field the operation does not know (a misspelt "refresh" is no default)."""
    unknown = sorted(set(body) - known)
    if unknown:
        raise InvalidRequest(
            f"unknown field {', '.join(map(repr, unknown))}; known: {', '.join(sorted(known))}",
            reason="invalid-payload",
        )
    return body


def _optional(body: dict[str, Any], key: str) -> str | None:
    return _string(body, key) if body.get(key) is not None else None


def _refresh(body: dict[str, Any]) -> int:
    return parse_refresh(_string(body, "refresh")) if "refresh" in body else DEFAULT_REFRESH_SECONDS


def catalog_json(session: Session, catalog: Catalog) -> dict[str, Any]:
    """A catalog or registry as these operations answer: how often it is synced, its last sync and the next."""
    (plan,) = sync_schedules(session, [catalog])
    due = plan.next_at or database_now(session)
    return {
        "name": catalog.name,
        "type": catalog.type,
        "provider": catalog.provider,
        "refresh": plan.refresh,
        "lastSync": {
            "at": plan.last_at.isoformat() if plan.last_at else None,
            "outcome": plan.outcome,
            "error": plan.error,
        },
        "nextSyncAt": None if plan.refresh == "never" else due.isoformat(),
        "syncing": plan.syncing,
    }


def _added(add: Callable[[Session], Catalog]) -> tuple[Response, int]:
    session = db.session()
    try:
        with session.begin():
            catalog = add(session)
            body = catalog_json(session, catalog)
    except CatalogSourceError as exc:
        raise InvalidRequest(str(exc), reason="invalid-source") from None
    response = jsonify(data=body)
    response.headers["Location"] = f"/v1/catalogs/{body['name']}"
    return response, 201


@bp.post("/v1/catalogs")
@require_scope("admin")
def add_git_catalog() -> tuple[Response, int]:
    body = _fields(_json_object(), _CATALOG_FIELDS)
    source = _string(body, "source")
    if not is_git_url(source) or source.startswith("file:"):
        raise InvalidRequest(
            f"source {source!r}: the API adds git repositories (https, ssh or git URLs); add a directory or a "
            "file:// repository with `taskhub catalog add` on the hub's host",
            reason="invalid-source",
        )
    name, kind, refresh = _string(body, "name"), _catalog_type(body), _refresh(body)
    revision, context_dir, org = (_optional(body, key) for key in ("revision", "contextDir", "org"))
    return _added(lambda session: add_catalog(
        session, name, source, revision=revision, context_dir=context_dir, type=kind, org=org, refresh_seconds=refresh
    ))  # fmt: skip


@bp.post("/v1/registries")
@require_scope("admin")
def add_registry() -> tuple[Response, int]:
    body = _fields(_json_object(), _REGISTRY_FIELDS)
    target = _string(body, "registry")
    try:
        _, prefix = bundle_target(target)
    except InvalidReference as exc:
        raise InvalidRequest(str(exc), reason="invalid-payload") from None
    repositories = body.get("repositories", [])
    if not isinstance(repositories, list) or not all(isinstance(r, str) and r for r in repositories):
        raise InvalidRequest("'repositories' must be a list of non-empty strings", reason="invalid-payload")
    repos = [r if r.startswith(f"{prefix}/") else f"{prefix}/{r}" for r in repositories]
    name, kind, refresh = _string(body, "name"), _catalog_type(body), _refresh(body)
    return _added(lambda session: add_catalog(
        session, name, target, type=kind, repositories=repos, refresh_seconds=refresh
    ))  # fmt: skip


def _catalog_type(body: dict[str, Any]) -> str:
    kind = body.get("type", "community")
    if kind not in CATALOG_TYPES:
        raise InvalidRequest(f"'type' must be one of {', '.join(CATALOG_TYPES)}", reason="invalid-payload")
    return str(kind)


def _set_refresh(name: str, *, registry: bool) -> Response:
    body = _fields(_json_object(), {"refresh"})
    seconds = parse_refresh(_string(body, "refresh"))
    session = db.session()
    with session.begin():
        catalog = get_catalog(session, name)
        if registry and catalog.provider != OCI:
            raise NotFound(f"{name!r} is a catalog, not a registry: set its refresh with PATCH /v1/catalogs/{name}")
        set_refresh(catalog, seconds)
        return jsonify(data=catalog_json(session, catalog))


@bp.patch("/v1/catalogs/<name>")
@require_scope("catalog:refresh")
def set_catalog_refresh(name: str) -> Response:
    return _set_refresh(name, registry=False)


@bp.patch("/v1/registries/<name>")
@require_scope("registry:sync")
def set_registry_refresh(name: str) -> Response:
    return _set_refresh(name, registry=True)


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
