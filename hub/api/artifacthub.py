"""The Artifact Hub API for Tekton packages: the subset `tkn hub --type artifact` and Tekton's hub resolver use.

Repository names are catalog names. Tekton's hub resolver asks for ``tekton-catalog-tasks`` and
``tekton-catalog-pipelines`` when a run names no catalog; when no catalog has those names they stand for the
configured default catalog (``TASKHUB_ARTIFACT_HUB_DEFAULT_CATALOG``, ``tekton``), so such runs work unchanged.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime

from flask import Blueprint, Response, current_app, jsonify, request

from catalog.errors import InvalidRequest, NotFound
from catalog.queries import CatalogIndex, Page, ResourceView, SearchQuery, artifact_catalog
from hub import db
from hub.api.artifacthub_json import (
    PATH_KINDS,
    REPOSITORY_KINDS,
    ArtifactHubShapes,
    organization,
)
from hub.api.artifacthub_json import stats as stats_shape
from hub.urls import base_url
from hub.wsgi.response_cache import cache_responses

bp = Blueprint("artifacthub_api", __name__, url_prefix="/api/v1")
cache_responses(bp)

# Paging as artifacthub/hub's handlers: 20 by default, more than 60 is refused.
DEFAULT_LIMIT = 20
MAX_LIMIT = 60
SORTS = {"relevance": "relevance", "stars": "relevance", "last_updated": "updated"}
_INT = re.compile(r"^-?\d{1,18}$")
_BOOLS = {"1": True, "t": True, "true": True, "0": False, "f": False, "false": False}
PAGINATION_TOTAL_COUNT = "Pagination-Total-Count"


def shapes() -> ArtifactHubShapes:
    return ArtifactHubShapes(base_url())


def invalid(message: str) -> InvalidRequest:
    """A 400 worded as Artifact Hub words it (its ErrInvalidInput reads "invalid input")."""
    return InvalidRequest(f"invalid input: {message}")


# -- query parameters, checked as artifacthub/hub checks them -----------------------------------------------


def int_arg(name: str, default: int) -> int:
    raw = request.args.get(name, "")
    if raw == "":
        return default
    if not _INT.match(raw):
        raise invalid(f"invalid {name}: {raw}")
    return int(raw)


def bool_arg(name: str) -> bool:
    raw = request.args.get(name, "")
    if raw == "":
        return False
    # Go's strconv.ParseBool: 1, t, T, TRUE, true, True and their false twins.
    value = _BOOLS.get(raw.lower()) if raw in (raw.lower(), raw.upper(), raw.capitalize()) else None
    if value is None:
        raise invalid(f"invalid {name.replace('_', ' ')}: {raw}")
    return value


def kinds_arg() -> set[int]:
    kinds = set()
    for raw in request.args.getlist("kind"):
        if not _INT.match(raw):
            raise invalid(f"invalid kind: {raw}")
        kinds.add(int(raw))
    return kinds


def names_arg(name: str, what: str) -> set[str]:
    values = request.args.getlist(name)
    if any(v == "" for v in values):
        raise invalid(f"invalid {what}")
    return set(values)


def with_total(body: object, total: int) -> Response:
    response = jsonify(body)
    response.headers[PAGINATION_TOTAL_COUNT] = str(total)
    return response


# -- repositories and packages ------------------------------------------------------------------------------


def package_kind(repo_kind: str) -> str:
    """The canonical kind of a {repoKind} path segment; other Artifact Hub kinds have no packages here."""
    kind = PATH_KINDS.get(repo_kind)
    if kind is None:
        raise NotFound(f"no {repo_kind} packages here: this hub serves {', '.join(PATH_KINDS)}")
    return kind


def catalog_for(index: CatalogIndex, repo: str, kind: str | None) -> tuple[str, str | None]:
    """(catalog, kind or None) that a repository name stands for: itself, or for Artifact Hub's default names
    (when no catalog has them) the configured default catalog, restricted to the name's kind."""
    return artifact_catalog(index, repo, kind, current_app.config["TASKHUB"].artifact_hub_default_catalog)


def find_package(repo_kind: str, repo: str, name: str, version: str | None) -> ResourceView:
    """The package showing a version (its default version, the highest release, when version is None), with
    the version's content."""
    kind = package_kind(repo_kind)
    index = db.index()
    catalog, _ = catalog_for(index, repo, kind)
    try:
        if version is None:
            return index.resource(catalog, kind, name, content=True, release=True)
        return index.version(catalog, kind, name, version, content=True)
    except NotFound:
        wanted = f"{repo_kind}/{repo}/{name}" + (f"/{version}" if version is not None else "")
        raise NotFound(f"package {wanted} not found") from None


@bp.get("/packages/<repo_kind>/<repo>/<name>")
def package(repo_kind: str, repo: str, name: str) -> Response:
    """The package at its default version: what the resolver and tkn read available_versions from."""
    return jsonify(shapes().package(find_package(repo_kind, repo, name, None)))


@bp.get("/packages/<repo_kind>/<repo>/<name>/summary")
def package_summary(repo_kind: str, repo: str, name: str) -> Response:
    """The package as search lists it."""
    return jsonify(shapes().package_summary(find_package(repo_kind, repo, name, None)))


@bp.get("/packages/<repo_kind>/<repo>/<name>/<version>")
def package_version(repo_kind: str, repo: str, name: str, version: str) -> Response:
    """One version (``0.9.0`` or ``0.9``) with data.manifestRaw: what the resolver and tkn install apply."""
    return jsonify(shapes().package(find_package(repo_kind, repo, name, version)))


def kinds_of(numbers: set[int]) -> tuple[str, ...]:
    """The canonical kinds of Artifact Hub repository kinds (those of other artifacts have no packages here)."""
    return tuple(kind for kind, number in REPOSITORY_KINDS.items() if number in numbers)


def catalogs_of(index: CatalogIndex, orgs: set[str]) -> tuple[int, ...]:
    """The ids of the catalogs belonging to these organizations (none belongs to a user)."""
    return tuple(c.id for c in index.catalogs() if organization(c) in orgs)


@bp.get("/packages/search")
def search_packages() -> Response:
    """Packages matching ts_query_web and the filters, a page at a time, the total in Pagination-Total-Count."""
    limit, offset = int_arg("limit", DEFAULT_LIMIT), int_arg("offset", 0)
    if not 0 < limit <= MAX_LIMIT:
        raise invalid(f"invalid limit (0 < l <= {MAX_LIMIT})")
    if offset < 0:
        raise invalid("invalid offset (o >= 0)")
    sort = request.args.get("sort") or "relevance"
    if sort not in SORTS:
        raise invalid("invalid sort (relevance|stars|last_updated)")
    index = db.index()
    kinds = kinds_arg()
    repos = tuple(catalog_for(index, repo, None) for repo in names_arg("repo", "repository name"))
    orgs, users = names_arg("org", "organization name"), names_arg("user", "user alias")
    deprecated, official = bool_arg("deprecated"), bool_arg("official")
    want_facets = bool_arg("facets")
    s = shapes()
    if bool_arg("verified_publisher"):  # no catalog here is a verified publisher
        return with_total({"packages": [], **({"facets": s.facets([])} if want_facets else {})}, 0)
    # As upstream, facets count the matches before the kind, repository and organization filters.
    candidates = SearchQuery(
        text=request.args.get("ts_query_web", ""),
        sort=SORTS[sort],
        limit=limit,
        offset=offset,
        release=True,
        official=official,
        hide_deprecated=not deprecated,
    )
    query = replace(
        candidates,
        kinds=kinds_of(kinds) if kinds else (),
        repositories=repos,
        catalog_ids=catalogs_of(index, orgs) if (orgs or users) else None,
    )
    page = index.search(query) if not kinds or query.kinds else Page([], 0)
    body: dict[str, object] = {"packages": [s.package_summary(v) for v in page.views]}
    if want_facets:
        catalogs = {c.id: c for c in index.catalogs()}
        counts = index.counts_by_repository(candidates)
        body["facets"] = s.facets([(catalogs[c], kind, n) for c, kind, n in counts])
    return with_total(body, page.total)


@bp.get("/stats")
def stats() -> Response:
    """Artifact Hub's stats. Pipelines-as-Code asks for them to tell an Artifact Hub (200) from a Tekton Hub (404,
    as ``/v1/api/v1/stats`` stays) when its hub type is not set."""
    index = db.index()
    return jsonify(stats_shape(index.daily_counts(), index.catalog_kinds(), datetime.now(UTC)))


@bp.get("/repositories/search")
def search_repositories() -> Response:
    """Repositories (a catalog once per kind it holds), by name; what tkn lists catalogs from."""
    kinds = kinds_arg()
    limit, offset = int_arg("limit", DEFAULT_LIMIT), int_arg("offset", 0)
    if limit > MAX_LIMIT:
        raise invalid(f"invalid limit: {limit} (max: {MAX_LIMIT})")
    if limit < 0 or offset < 0:
        raise invalid("limit and offset must not be negative")
    name = request.args.get("name", "").lower()
    orgs, users = set(request.args.getlist("org")), set(request.args.getlist("user"))
    keep: Callable[[str | None], bool] = (lambda org: org in orgs) if (orgs or users) else (lambda _: True)
    pairs = [
        (catalog, kind)
        for catalog, kind in db.index().catalog_kinds()
        if (not kinds or REPOSITORY_KINDS[kind] in kinds)
        and name in catalog.name.lower()
        and keep(organization(catalog))
    ]
    s = shapes()
    return with_total([s.repository_listing(c, k) for c, k in pairs[offset : offset + limit]], len(pairs))
