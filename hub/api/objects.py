"""The objects API: apply, list, read and delete the hub's objects (/v1/objects), as `taskhub apply|get|delete`.

``POST /v1/objects`` takes one or more documents (YAML or JSON) and admits them all before writing any; reads need
``objects:read`` (an EventListener or a ConfigMap is configuration, not catalog content) and writes
``objects:write``. A Secret's values are never given back: its `data` lists its keys with null values.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, current_app, jsonify, request
from werkzeug.exceptions import UnsupportedMediaType

from catalog.errors import InvalidRequest
from hub.objects import ObjectService
from hub.wsgi.auth import current_identity, require_scope
from runner.objects import ObjectStore, kind_named
from runner.objects.documents import documents_of
from runner.objects.store import check_name, check_namespace

bp = Blueprint("objects_api", __name__)

BODY_TYPES = ("application/yaml", "application/x-yaml", "text/yaml", "text/x-yaml", "application/json", "")


def store() -> ObjectStore:
    return current_app.extensions["taskhub.objects"]


@bp.after_request
def _not_cached(response: Response) -> Response:
    response.headers["Cache-Control"] = "no-store"
    return response


def _namespace(default: str | None = "default") -> str | None:
    raw = request.args.get("namespace")
    return check_namespace(raw) if raw else default


@bp.post("/v1/objects")
@require_scope("objects:write")
def apply_objects() -> tuple[Response, int]:
    """Create or update every object of the body; 400 naming every problem, and nothing written, if one is bad."""
    if request.mimetype not in BODY_TYPES:
        raise UnsupportedMediaType(f"send objects as application/yaml or application/json, not {request.mimetype}")
    try:
        text = request.get_data(cache=False).decode()
    except UnicodeDecodeError:
        raise InvalidRequest("the body is not UTF-8 text", reason="invalid-payload") from None
    identity = current_identity()
    applied = ObjectService(store()).apply(
        documents_of(text), namespace=_namespace(None), created_by=identity.name if identity else ""
    )
    body = [{"kind": a.kind, "namespace": a.namespace, "name": a.name, "action": a.action} for a in applied]
    return jsonify(data=body), 200


@bp.get("/v1/objects/<kind>")
@require_scope("objects:read")
def list_objects(kind: str) -> Response:
    """Every object of a kind in ?namespace= (default: default), or in all of them with ?allNamespaces=true."""
    info = kind_named(kind)
    everywhere = request.args.get("allNamespaces") in ("true", "1")
    items = store().list(info.kind, None if everywhere else _namespace())
    return jsonify(data=items)


@bp.get("/v1/objects/<kind>/<name>")
@require_scope("objects:read")
def get_object(kind: str, name: str) -> Response:
    info = kind_named(kind)
    return jsonify(data=store().require(info.kind, _namespace(), check_name(name)))


@bp.delete("/v1/objects/<kind>/<name>")
@require_scope("objects:write")
def delete_object(kind: str, name: str) -> tuple[Response, int]:
    info = kind_named(kind)
    store().delete(info.kind, _namespace(), check_name(name))
    body: dict[str, Any] = {"kind": info.kind, "namespace": _namespace() if info.namespaced else "", "name": name}
    return jsonify(data=body), 200
