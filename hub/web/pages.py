"""The web UI: search the catalog, read a resource's README and YAML, see each catalog's problems."""

from __future__ import annotations

from flask import Blueprint, Response, abort, redirect, render_template, request, url_for

from catalog.errors import InvalidKind, NotFound
from catalog.manifests import KINDS
from catalog.models import RESERVED_CATALOG_NAMES
from catalog.queries import SORTS, ResourceView, SearchQuery, parse_kind
from catalog.tree import LEVELS
from hub import db
from hub.api.tekton import status
from hub.urls import base_url
from hub.web.rendering import highlight_css, readme_html, yaml_html
from hub.web.snippets import bundle_snippet, hub_snippet
from jobs.scheduler import sync_schedules

bp = Blueprint("web", __name__)

PAGE_SIZE = 24
FILTERS = ("kind", "catalog", "category", "platform", "tag")


def wants_html() -> bool:
    best = request.accept_mimetypes.best_match(["application/json", "text/html"])
    return best == "text/html"


@bp.get("/")
def home() -> Response | str:
    if not wants_html():
        return status()
    selected = {f: request.args.getlist(f) for f in FILTERS}
    sort = request.args.get("sort", "relevance")
    if sort not in SORTS:
        sort = "relevance"
    try:
        page = max(int(request.args.get("page", "1")), 1)
    except ValueError:
        page = 1
    text = request.args.get("q", "").strip()
    index = db.index()
    kinds = tuple(KINDS[k.lower()] for k in selected["kind"] if k.lower() in KINDS)
    page_of_results = index.search(
        SearchQuery(
            text=text,
            kinds=kinds,
            catalogs=tuple(selected["catalog"]),
            categories=tuple(selected["category"]),
            platforms=tuple(selected["platform"]),
            tags=tuple(selected["tag"]),
            sort=sort,
            limit=PAGE_SIZE,
            offset=(page - 1) * PAGE_SIZE,
        )
    )
    total = page_of_results.total
    return render_template(
        "index.html",
        views=page_of_results.views,
        total=total,
        text=text,
        sort=sort,
        sorts=SORTS,
        page=page,
        pages=max((total + PAGE_SIZE - 1) // PAGE_SIZE, 1),
        facets=with_chosen(index.facets(), selected),
        selected=selected,
    )


def with_chosen(facets: dict[str, list[str]], selected: dict[str, list[str]]) -> dict[str, list[str]]:
    """The filter choices plus any chosen value they leave out (only the most used tags are offered), so that a
    chosen filter can always be unchecked."""
    out = {}
    for facet, values in facets.items():
        known = {v.lower() for v in values}
        out[facet] = values + [v for v in selected.get(facet, []) if v.lower() not in known]
    return out


def _canonical_kind(kind: str) -> str:
    try:
        return parse_kind(kind)
    except InvalidKind:
        raise NotFound(f"no such kind {kind!r}") from None


@bp.get("/<catalog>/<kind>/<name>")
@bp.get("/<catalog>/<kind>/<name>/<version>")
def resource(catalog: str, kind: str, name: str, version: str | None = None) -> Response | str:
    if catalog in RESERVED_CATALOG_NAMES:
        abort(404)  # an API path no API route took: the API's own "no such path", not a page's message
    canonical = _canonical_kind(kind)
    if kind != canonical.lower():
        return redirect(url_for("web.resource", catalog=catalog, kind=canonical.lower(), name=name, version=version))  # type: ignore[return-value]
    chosen = request.args.get("version")
    if chosen:
        return redirect(url_for("web.resource", catalog=catalog, kind=kind, name=name, version=chosen))  # type: ignore[return-value]
    index = db.index()
    view: ResourceView = index.resource(catalog, canonical, name, content=not version)
    row = index.version(catalog, canonical, name, version, content=True).latest if version else view.latest
    base = base_url().rstrip("/")
    hub_path = f"{view.resource.catalog.name}/{kind}/{name}/{row.version}"
    return render_template(
        "resource.html",
        view=view,
        row=row,
        kind=kind,
        is_latest=row.id == view.latest.id,
        readme=readme_html(row.readme) if row.readme else None,
        yaml=yaml_html(row.manifest),
        highlight_css=highlight_css(),
        kubectl_command=f"kubectl apply -f {base}/v1/resource/{hub_path}/raw",
        tkn_command=(
            f"tkn hub install {kind} {name} --version {row.version} --from {view.resource.catalog.name} "
            f"--type tekton --api-server {base}"
        ),
        raw_url=f"{base}/v1/resource/{hub_path}/raw",
        hub_snippet=hub_snippet(view.resource.kind, view.resource.catalog.name, name, row.version),
        bundle_snippet=bundle_snippet(view.resource.kind, name, row.bundle_ref) if row.bundle_ref else None,
    )


@bp.get("/catalogs")
def catalogs() -> str:
    listed = db.index().catalogs()
    schedules = sync_schedules(db.session(), listed)
    return render_template("catalogs.html", catalogs=list(zip(listed, schedules, strict=True)))


@bp.get("/catalogs/<name>")
def catalog(name: str) -> str:
    catalog = db.index().catalog(name)
    level = request.args.get("level")
    errors = [e for e in catalog.errors if level in (None, "", e.level)]
    counts = {lvl: sum(1 for e in catalog.errors if e.level == lvl) for lvl in LEVELS}
    (schedule,) = sync_schedules(db.session(), [catalog])
    return render_template(
        "catalog.html", catalog=catalog, schedule=schedule, errors=errors, counts=counts, level=level or ""
    )
