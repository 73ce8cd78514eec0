"""The resolver API: Tekton's resolver parameters in, the resource bytes pinned by digest out.

``GET /v1/resolve?resolver=bundles&bundle=...&name=...&kind=task`` or ``POST /v1/resolve`` with
``{"resolver": "hub", "params": {"name": "git-clone", "version": ">=0.7, <2.0"}}`` (``params`` may also be
Tekton's list of ``{"name", "value"}``). The answer holds ``data`` (the resource as stored), ``annotations``,
``refSource`` and what the reference resolved to.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from flask import Blueprint, Response, current_app, jsonify, request

from catalog.errors import InvalidRequest, PayloadTooLarge
from catalog.resolver import Resolved, params_mapping
from hub.registries import Resolvers
from hub.urls import base_url

bp = Blueprint("resolve_api", __name__)

MAX_BODY_BYTES = 64 * 1024


def resolvers() -> Resolvers:
    return current_app.extensions["taskhub.resolvers"]


def _params_of(body: Any) -> tuple[Any, Mapping[str, Any]]:
    if not isinstance(body, dict):
        raise InvalidRequest("the body must be a JSON object: {resolver, params}", reason="invalid-payload")
    params = params_mapping(body.get("params", {}))
    unknown = set(body) - {"resolver", "params"}
    if unknown:
        raise InvalidRequest(f"unknown field(s): {', '.join(sorted(unknown))}", reason="invalid-payload")
    return body.get("resolver"), params


def resolve(resolver: Any, params: Mapping[str, Any]) -> Resolved:
    """Run the named resolver on the params."""
    return resolvers().resolve(resolver, params, base_url())


@bp.get("/v1/resolve")
def resolve_get() -> Response:
    params = request.args.to_dict(flat=False)
    repeated = [key for key, values in params.items() if len(values) > 1]
    if repeated:
        raise InvalidRequest(f"parameter {repeated[0]!r} is given more than once", reason="invalid-params")
    flat = {key: values[0] for key, values in params.items()}
    resolver = flat.pop("resolver", None)
    response = jsonify(resolve(resolver, flat).to_json())
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.post("/v1/resolve")
def resolve_post() -> Response:
    if request.content_length is not None and request.content_length > MAX_BODY_BYTES:
        raise PayloadTooLarge(f"the body is over {MAX_BODY_BYTES} bytes")
    raw = request.stream.read(MAX_BODY_BYTES + 1)
    if len(raw) > MAX_BODY_BYTES:
        raise PayloadTooLarge(f"the body is over {MAX_BODY_BYTES} bytes")
    try:
        body = json.loads(raw)
    except (ValueError, RecursionError):
        raise InvalidRequest("the body must be JSON: {resolver, params}", reason="invalid-payload") from None
    resolver, params = _params_of(body)
    response = jsonify(resolve(resolver, params).to_json())
    response.headers["Cache-Control"] = "no-store"
    return response
