"""The Tekton Hub v1 API, wire-compatible with tektoncd/hub, plus its legacy redirects."""

from __future__ import annotations

import json
import re

from flask import Blueprint, Response, current_app, jsonify, redirect, request
from flask.json.provider import DefaultJSONProvider

from catalog.db import database_error
from catalog.errors import InvalidRequest, NotFound
from catalog.queries import SearchQuery, parse_kind
from catalog.tree import LEVELS
from hub import db
from hub.api.tekton_json import TektonShapes, catalog_full, named
from hub.urls import base_url
from hub.wsgi.response_cache import cache_responses

bp = Blueprint("tekton_api", __name__)
cache_responses(bp)

MAX_LIMIT = 1000
_PIPELINES_VERSION = r"^\d+(?:\.\d+){0,2}$"
MATCHES = ("exact", "contains")
_UINT_MAX = 2**64 - 1  # Go's strconv.ParseUint(s, 10, 64)
_ID_MAX = 2**31 - 1  # the largest id a row can have; larger ones name nothing


def shapes() -> TektonShapes:
    return TektonShapes(base_url())


def go_quote(text: str) -> str:
    """``text`` as Go's ``%q`` writes it (strconv.Quote): goa quotes the values it refuses that way."""
    out = ['"']
    for char in text:
        code = ord(char)
        if char in ('"', "\\"):
            out.append("\\" + char)
        elif char in _GO_ESCAPES:
            out.append(_GO_ESCAPES[char])
        elif char.isprintable() or char == " ":
            out.append(char)
        elif code < 0x80:
            out.append(f"\\x{code:02x}")
        elif code <= 0xFFFF:
            out.append(f"\\u{code:04x}")
        else:
            out.append(f"\\U{code:08x}")
    out.append('"')
    return "".join(out)


_GO_ESCAPES = {"\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\v": "\\v"}


def enum_error(name: str, value: str, allowed: tuple[str, ...]) -> InvalidRequest:
    """goa's InvalidEnumValueError, word for word."""
    choices = ", ".join(go_quote(a) for a in allowed)
    return InvalidRequest(
        f"value of {name} must be one of {choices} but got value {go_quote(value)}", reason="invalid_enum_value"
    )


def path_kind(kind: str) -> str:
    """The {kind} path parameter: lower case only, as goa's enum validation has it."""
    if kind not in ("task", "pipeline", "stepaction"):
        raise enum_error("kind", kind, ("task", "pipeline", "stepaction"))
    return parse_kind(kind, path=True)


def parse_uint(name: str, raw: str) -> int:
    """An unsigned integer parameter as goa decodes it (strconv.ParseUint), or its invalid_field_type error."""
    if not raw.isascii() or not raw.isdigit() or int(raw) > _UINT_MAX:
        raise InvalidRequest(
            f"invalid value {go_quote(raw)} for {go_quote(name)}, must be a unsigned integer",
            reason="invalid_field_type",
        )
    return int(raw)


def path_id(name: str, raw: str) -> int:
    """A row id in a path; one no row can have is not found, as upstream's query finds nothing for it."""
    value = parse_uint(name, raw)
    if value > _ID_MAX:
        raise NotFound("resource not found")
    return value


def uint_arg(name: str, default: int, maximum: int | None = None) -> int:
    raw = request.args.get(name)
    if raw is None or raw == "":
        return default
    value = parse_uint(name, raw)
    return min(value, maximum) if maximum is not None else value


# What jsonify writes (with the hub's json.sort_keys off), built once rather than for each answer; upstream's goa
# never indents, so neither does this in Flask's debug mode. Bodies are built afresh from rows and never refer to
# themselves: no check for circular references (13% of the encoding).
_ENCODER = json.JSONEncoder(separators=(",", ":"), default=DefaultJSONProvider.default, check_circular=False)


def data(body: object) -> Response:
    """``{"data": body}``, the envelope of every Tekton Hub answer."""
    return Response(_ENCODER.encode({"data": body}) + "\n", mimetype="application/json")


# -- status and lists --------------------------------------------------------------------------------------


def status() -> Response:
    """{services:[api, db]}: the body of GET / and GET /v1 for API clients."""
    services: list[dict[str, str]] = [{"name": "api", "status": "ok"}]
    error = database_error(db.engine())
    services.append(
        {"name": "db", "status": "ok"} if error is None else {"name": "db", "status": "Error", "error": error}
    )
    response = jsonify(services=services)
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/v1")
def v1_status() -> Response:
    return status()


@bp.get("/v1/query")
def query() -> Response:
    match = request.args.get("match") or "contains"
    if match not in MATCHES:
        raise enum_error("match", match, MATCHES)
    search = SearchQuery(
        text=request.args.get("name", ""),
        kinds=tuple(parse_kind(k) for k in request.args.getlist("kinds")),
        catalogs=tuple(request.args.getlist("catalogs")),
        categories=tuple(request.args.getlist("categories")),
        tags=tuple(request.args.getlist("tags")),
        platforms=tuple(request.args.getlist("platforms")),
        match=match,
        limit=uint_arg("limit", MAX_LIMIT, MAX_LIMIT) or MAX_LIMIT,
        offset=uint_arg("offset", 0),
    )
    return resource_list(search)


@bp.get("/v1/resources")
def resources() -> Response:
    return resource_list(
        SearchQuery(
            sort="name", limit=uint_arg("limit", MAX_LIMIT, MAX_LIMIT) or MAX_LIMIT, offset=uint_arg("offset", 0)
        )
    )


def resource_list(search: SearchQuery) -> Response:
    """A page of resources without their versions list; 404 when nothing matches, as upstream."""
    page = db.index().search(search)
    if not page.views:
        raise NotFound("resource not found")
    s = shapes()
    response = data([s.resource(v, with_versions=False) for v in page.views])
    response.headers["Pagination-Total-Count"] = str(page.total)
    return response


@bp.get("/v1/catalogs")
def catalogs() -> Response:
    return data([catalog_full(c) for c in db.index().catalogs()])


@bp.get("/v1/categories")
@bp.get("/categories")
def categories() -> Response:
    """Every configured category, used or not (Tekton Hub lists those of its config), sorted by name."""
    return data(named(db.index().categories(current_app.config["TASKHUB"].category_names)))


@bp.get("/catalog/<name>/error")
def catalog_errors(name: str) -> Response:
    grouped: dict[str, list[str]] = {level: [] for level in LEVELS}
    for error in db.index().catalog_errors(name):
        grouped[error.level].append(f"{error.path}: {error.message}")
    return data([{"type": level, "errors": errors} for level, errors in grouped.items() if errors])


# -- resources by id ---------------------------------------------------------------------------------------


@bp.get("/v1/resource/<resource_id>")
def resource_by_id(resource_id: str) -> Response:
    return data(shapes().resource(db.index().resource_by_id(path_id("id", resource_id))))


@bp.get("/v1/resource/<resource_id>/versions")
def resource_versions(resource_id: str) -> Response:
    _, rows = db.index().versions(path_id("id", resource_id))
    return data(shapes().versions(rows))


@bp.get("/v1/resource/version/<version_id>")
def version_by_id(version_id: str) -> Response:
    return data(shapes().version(db.index().version_by_id(path_id("versionID", version_id))))


# -- resources by catalog, kind and name -------------------------------------------------------------------


@bp.get("/v1/resource/<catalog>/<kind>/<name>")
def resource(catalog: str, kind: str, name: str) -> Response:
    index = db.index()
    view = index.resource(catalog, path_kind(kind), name)
    pipelines_version = request.args.get("pipelinesversion")
    if pipelines_version:  # goa treats an empty value as none
        if not re.match(_PIPELINES_VERSION, pipelines_version):
            raise InvalidRequest(  # goa's InvalidPatternError
                f"pipelinesversion must match the regexp {go_quote(_PIPELINES_VERSION)} "
                f"but got value {go_quote(pipelines_version)}",
                reason="invalid_pattern",
            )
        view = index.compatible(view, pipelines_version)
    return data(shapes().resource(view))


@bp.get("/v1/resource/<catalog>/<kind>/<name>/raw")
def latest_raw(catalog: str, kind: str, name: str) -> Response:
    view = db.index().resource(catalog, path_kind(kind), name, content=True)
    return raw_response(view.latest.manifest)


@bp.get("/v1/resource/<catalog>/<kind>/<name>/<version>")
def version(catalog: str, kind: str, name: str, version: str) -> Response:
    return data(shapes().version(db.index().version(catalog, path_kind(kind), name, version)))


@bp.get("/v1/resource/<catalog>/<kind>/<name>/<version>/yaml")
def version_yaml(catalog: str, kind: str, name: str, version: str) -> Response:
    row = db.index().version(catalog, path_kind(kind), name, version, content=True).latest
    return data({"yaml": row.manifest})


@bp.get("/v1/resource/<catalog>/<kind>/<name>/<version>/readme")
def version_readme(catalog: str, kind: str, name: str, version: str) -> Response:
    row = db.index().version(catalog, path_kind(kind), name, version, content=True).latest
    if row.readme is None:
        raise NotFound("resource not found")
    return data({"readme": row.readme})


@bp.get("/v1/resource/<catalog>/<kind>/<name>/<version>/raw")
def version_raw(catalog: str, kind: str, name: str, version: str) -> Response:
    row = db.index().version(catalog, path_kind(kind), name, version, content=True).latest
    return raw_response(row.manifest)


def raw_response(manifest: str) -> Response:
    return Response(manifest, mimetype="text/plain", content_type="text/plain; charset=utf-8")


# -- legacy unversioned paths: redirects to their /v1 twins -----------------------------------------------


def _to_v1(code: int = 302) -> Response:
    target = "/v1" + request.path
    if request.query_string:
        target += "?" + request.query_string.decode("latin-1")
    return redirect(target, code=code)  # type: ignore[return-value]


@bp.get("/resources")
def legacy_resources() -> Response:
    return _to_v1(301)


@bp.get("/query")
@bp.get("/resource/<resource_id>")
@bp.get("/resource/<resource_id>/versions")
@bp.get("/resource/version/<version_id>")
@bp.get("/resource/<catalog>/<kind>/<name>")
@bp.get("/resource/<catalog>/<kind>/<name>/<version>")
def legacy(**_: object) -> Response:
    return _to_v1()
