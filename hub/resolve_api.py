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
from catalog.resolver import Resolved
from hub import db
from hub.registries import Resolvers

bp = Blueprint("resolve_api", __name__)

MAX_BODY_BYTES = 64 * 1024
RESOLVERS = ("bundles", "hub")


def resolvers() -> Resolvers:
    return current_app.extensions["taskhub.resolvers"]


def _params_of(body: Any) -> tuple[Any, Mapping[str, Any]]:
    if not isinstance(body, dict):
        raise InvalidRequest("the body must be a JSON object: {resolver, params}", reason="invalid-payload")
    params = body.get("params", {})
    if isinstance(params, list):  # Tekton's own shape: [{name, value}]
        pairs = {}
        for item in params:
            if not isinstance(item, dict) or not isinstance(item.get("name"), str) or "value" not in item:
                raise InvalidRequest("each param must be an object with a name and a value", reason="invalid-payload")
            pairs[item["name"]] = item["value"]
        params = pairs
    if not isinstance(params, dict):
        raise InvalidRequest("params must be an object or a list of {name, value}", reason="invalid-payload")
    unknown = set(body) - {"resolver", "params"}
    if unknown:
        raise InvalidRequest(f"unknown field(s): {', '.join(sorted(unknown))}", reason="invalid-payload")
    return body.get("resolver"), params


def resolve(resolver: Any, params: Mapping[str, Any]) -> Resolved:
    """Run the named resolver on the params."""
    if resolver not in RESOLVERS:
        raise InvalidRequest(f"resolver must be one of: {', '.join(RESOLVERS)}", reason="invalid-params")
    if resolver == "bundles":
        return resolvers().bundles.resolve(params)
    base = current_app.config["TASKHUB"].public_url or request.host_url
    return resolvers().hub.resolve(db.index(), params, base)


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
