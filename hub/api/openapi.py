"""The hub's OpenAPI 3.0 document (hub/api/openapi.yaml, shipped in the package), served as JSON and as YAML."""

from __future__ import annotations

import functools
from importlib.resources import files
from typing import Any

import yaml
from flask import Blueprint, Response, jsonify

bp = Blueprint("openapi_api", __name__)


@functools.cache
def openapi_text() -> str:
    """The document as written in hub/api/openapi.yaml."""
    return files("hub.api").joinpath("openapi.yaml").read_text(encoding="utf-8")


@functools.cache
def openapi_document() -> dict[str, Any]:
    """The document, parsed once per process."""
    document: dict[str, Any] = yaml.safe_load(openapi_text())
    return document


@bp.get("/v1/openapi.json")
def openapi_json() -> Response:
    return jsonify(openapi_document())


@bp.get("/openapi.yaml")
def openapi_yaml() -> Response:
    return Response(openapi_text(), content_type="application/yaml; charset=utf-8")
