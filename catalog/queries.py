"""Reading the index: search, resources and their versions, in version order."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from functools import cached_property

from sqlalchemy import ColumnElement, Select, and_, bindparam, exists, func, insert, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, selectinload

from catalog.errors import InvalidKind, InvalidRequest, InvalidVersion, NotFound
from catalog.manifests import KINDS
from catalog.models import (
    Catalog,
    CatalogError,
    Category,
    IndexState,
    Platform,
    Resource,
    ResourceVersion,
    Tag,
    version_categories,
    version_platforms,
    version_tags,
)
from catalog.versions import Version

SORTS = ("relevance", "name", "updated")
# Built once: the resolver asks it on every hub resolve, and building a statement costs more than running it.
_MANIFESTS = (
    select(ResourceVersion.version, ResourceVersion.manifest, ResourceVersion.bundle_ref)
    .join(Resource, ResourceVersion.resource_id == Resource.id)
    .join(Catalog, Resource.catalog_id == Catalog.id)
    .where(
        func.lower(Catalog.name) == bindparam("catalog"),
        Resource.kind == bindparam("kind"),
        Resource.name == bindparam("name"),
        ResourceVersion.removed_at.is_(None),
    )
)


def parse_kind(kind: str, *, path: bool = False) -> str:
    """Map "task"/"Task" (query) or "task" (path: lower case only) to the canonical kind "Task"."""
    canonical = KINDS.get(kind if path else kind.lower())
    if canonical is None:
        supported = " ".join(KINDS.values())
        raise InvalidKind(f"resource kind '{kind}' not supported. Supported kinds are [{supported}]")
    return canonical


def version_key(row: ResourceVersion) -> tuple[object, str]:
    return Version.parse(row.version).sort_key


@dataclass
class ResourceView:
    """A resource with its live versions in ascending version order."""

    resource: Resource
    versions: list[ResourceVersion]
    # The versions tags, categories and platforms are the union over: all live ones, also when `versions` holds
    # only those compatible with a Pipelines version (as upstream's resource-level lists).
    every_version: list[ResourceVersion] | None = None

    @property
    def latest(self) -> ResourceVersion:
        return self.versions[-1]

    @cached_property
    def tags(self) -> list[Tag]:
        return _union(v.tags for v in self.every_version or self.versions)

    @cached_property
    def categories(self) -> list[Category]:
        return _union(v.categories for v in self.every_version or self.versions)

    @cached_property
    def platforms(self) -> list[Platform]:
        return _union(v.platforms for v in self.every_version or self.versions)


def _union(lists):
    rows = {row.id: row for rows in lists for row in rows}
    return sorted(rows.values(), key=lambda r: r.name.lower())


@dataclass
class SearchQuery:
    """A search, with Tekton Hub's /v1/query parameters plus paging and sort."""

    text: str = ""
    kinds: tuple[str, ...] = ()
    catalogs: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    platforms: tuple[str, ...] = ()
    match: str = "contains"
    sort: str = "relevance"
    limit: int = 1000
    offset: int = 0


class CatalogIndex:
    """Queries over the index, in one session."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def generation(self) -> int:
        return self.session.scalar(select(IndexState.generation).where(IndexState.id == 1)) or 0

    def catalogs(self) -> list[Catalog]:
        return list(self.session.scalars(select(Catalog).order_by(Catalog.name)))

    def catalog(self, name: str) -> Catalog:
        catalog = self.session.scalar(select(Catalog).where(func.lower(Catalog.name) == name.lower()))
        if catalog is None:
            raise NotFound(f"catalog {name!r} not found")
        return catalog

    def catalog_kinds(self) -> list[tuple[Catalog, str]]:
        """(catalog, kind) for each kind a catalog holds live versions of, by catalog name then kind."""
        live = exists().where(ResourceVersion.resource_id == Resource.id, ResourceVersion.removed_at.is_(None))
        # DISTINCT over ids only: PostgreSQL cannot compare the catalog's JSON column.
        pairs = self.session.execute(select(Resource.catalog_id, Resource.kind).where(live).distinct()).all()
        catalogs = {c.id: c for c in self.catalogs()}
        found = [(catalogs[catalog_id], kind) for catalog_id, kind in pairs]
        return sorted(found, key=lambda pair: (pair[0].name, pair[1]))

    def catalog_errors(self, name: str) -> list[CatalogError]:
        return list(self.catalog(name).errors)

    def daily_counts(self) -> dict[str, list[tuple[date, int]]]:
        """How many live resources ("packages") and live versions ("snapshots") were first indexed each day,
        in day order: what Artifact Hub's stats chart."""
        live_version = ResourceVersion.removed_at.is_(None)
        live_resource = exists().where(ResourceVersion.resource_id == Resource.id, live_version)
        out = {}
        for key, column, condition in (
            ("packages", Resource.created_at, live_resource),
            ("snapshots", ResourceVersion.indexed_at, live_version),
        ):
            day = func.date(column)
            rows = self.session.execute(select(day, func.count()).where(condition).group_by(day).order_by(day))
            out[key] = [(_as_date(d), int(n)) for d, n in rows]
        return out

    def categories(self, names: Sequence[str]) -> list[Category]:
        """The categories named (ignoring case), by name, used or not, as Tekton Hub lists its configured ones;
        those the index does not hold yet are added, so that each keeps its id from then on."""
        wanted = {name.lower(): name for name in names}
        stmt = select(Category).where(func.lower(Category.name).in_(list(wanted)))
        rows = list(self.session.scalars(stmt))
        missing = wanted.keys() - {row.name.lower() for row in rows}
        if missing:
            try:
                self.session.execute(insert(Category), [{"name": wanted[key]} for key in wanted if key in missing])
                self.session.commit()
            except IntegrityError:  # another worker added them first
                self.session.rollback()
            rows = list(self.session.scalars(stmt))
        return sorted(rows, key=lambda row: (row.name.lower(), row.name))

    def facets(self) -> dict[str, list[str]]:
        """The values the web UI offers as filters: what live versions carry."""

        def names(model, table, column):
            used = exists().where(
                getattr(table.c, column) == model.id,
                table.c.version_id == ResourceVersion.id,
                ResourceVersion.removed_at.is_(None),
            )
            spellings = self.session.scalars(
                select(model.name).where(used).order_by(func.lower(model.name), model.name)
            )
            # Filters match names ignoring case, so "CLI" and "cli" are one choice.
            return list({name.lower(): name for name in reversed(list(spellings))}.values())[::-1]

        return {
            "kind": [k for k in KINDS.values()],
            "catalog": [c.name for c in self.catalogs()],
            "category": names(Category, version_categories, "category_id"),
            "platform": names(Platform, version_platforms, "platform_id"),
            "tag": names(Tag, version_tags, "tag_id"),
        }

    # -- resources ---------------------------------------------------------------------------------------

    def _load(self, stmt: Select[tuple[Resource]]) -> list[ResourceView]:
        stmt = stmt.options(
            selectinload(Resource.catalog),
            selectinload(Resource.versions).selectinload(ResourceVersion.tags),
            selectinload(Resource.versions).selectinload(ResourceVersion.categories),
            selectinload(Resource.versions).selectinload(ResourceVersion.platforms),
        )
        views = []
        for resource in self.session.scalars(stmt):
            live = sorted((v for v in resource.versions if v.removed_at is None), key=version_key)
            if live:
                views.append(ResourceView(resource, live))
        return views

    def resource_by_id(self, resource_id: int) -> ResourceView:
        views = self._load(select(Resource).where(Resource.id == resource_id))
        if not views:
            raise NotFound("resource not found")
        return views[0]

    def resource(self, catalog: str, kind: str, name: str) -> ResourceView:
        stmt = (
            select(Resource)
            .join(Catalog)
            .where(func.lower(Catalog.name) == catalog.lower(), Resource.kind == kind, Resource.name == name)
        )
        views = self._load(stmt)
        if not views:
            raise NotFound("resource not found")
        return views[0]

    def manifests(self, catalog: str, kind: str, name: str) -> list[tuple[str, str, str | None]]:
        """(version, manifest, bundle_ref) of each live version of a resource, in one query and without the rest
        of the resource; NotFound when it has none."""
        params = {"catalog": catalog.lower(), "kind": kind, "name": name}
        rows = [(str(v), str(m), b) for v, m, b in self.session.execute(_MANIFESTS, params)]
        if not rows:
            raise NotFound("resource not found")
        return rows

    def compatible(self, view: ResourceView, pipelines_version: str) -> ResourceView:
        """The view restricted to versions whose minimum Pipelines version is at most pipelines_version."""
        try:
            cluster = Version.parse(pipelines_version)
        except InvalidVersion as exc:
            raise InvalidRequest(str(exc)) from None
        versions = [
            v
            for v in view.versions
            if v.min_pipelines_version is None or Version.parse(v.min_pipelines_version) <= cluster
        ]
        if not versions:
            raise NotFound("resource not found compatible with minPipelinesVersion")
        return ResourceView(view.resource, versions, every_version=view.versions)

    def version(self, catalog: str, kind: str, name: str, version: str) -> ResourceVersion:
        """A version by its text (``0.9``) or an equal version (``0.9.0``); removed versions still resolve."""
        stmt = (
            select(ResourceVersion)
            .join(Resource)
            .join(Catalog)
            .where(func.lower(Catalog.name) == catalog.lower(), Resource.kind == kind, Resource.name == name)
            .options(selectinload(ResourceVersion.resource).selectinload(Resource.catalog))
        )
        rows = list(self.session.scalars(stmt))
        exact = [r for r in rows if r.version == version]
        if exact:
            return exact[0]
        try:
            wanted = Version.parse(version)
        except InvalidVersion:
            raise NotFound("resource not found") from None
        same = sorted((r for r in rows if Version.parse(r.version) == wanted), key=lambda r: r.removed_at is not None)
        if not same:
            raise NotFound("resource not found")
        return same[0]

    def version_by_id(self, version_id: int) -> ResourceVersion:
        row = self.session.get(ResourceVersion, version_id)
        if row is None:
            raise NotFound("resource not found")
        return row

    def view_of(self, row: ResourceVersion) -> ResourceView:
        return self.resource_by_id(row.resource_id)

    # -- search ------------------------------------------------------------------------------------------

    def search(self, query: SearchQuery) -> tuple[list[ResourceView], int]:
        """Resources matching query, ranked, with the total count before paging."""
        if query.match not in ("contains", "exact"):
            raise InvalidRequest(f"match must be 'contains' or 'exact', not {query.match!r}")
        if query.sort not in SORTS:
            raise InvalidRequest(f"sort must be one of {', '.join(SORTS)}")
        kinds = [parse_kind(k) for k in query.kinds]
        live = ResourceVersion.removed_at.is_(None)
        stmt = select(Resource).join(Catalog).where(exists().where(ResourceVersion.resource_id == Resource.id, live))
        if kinds:
            stmt = stmt.where(Resource.kind.in_(kinds))
        if query.catalogs:
            stmt = stmt.where(func.lower(Catalog.name).in_([c.lower() for c in query.catalogs]))
        for values, model, table, column in (
            (query.categories, Category, version_categories, "category_id"),
            (query.tags, Tag, version_tags, "tag_id"),
            (query.platforms, Platform, version_platforms, "platform_id"),
        ):
            if values:
                stmt = stmt.where(
                    _version_has(table, column, model, func.lower(model.name).in_([v.lower() for v in values]))
                )
        text = query.text.strip().lower()
        if text and query.match == "exact":
            stmt = stmt.where(func.lower(Resource.name) == text)
        elif text:
            stmt = stmt.where(
                or_(
                    func.lower(Resource.name).contains(text, autoescape=True),
                    exists().where(
                        ResourceVersion.resource_id == Resource.id,
                        live,
                        or_(
                            func.lower(ResourceVersion.display_name).contains(text, autoescape=True),
                            func.lower(ResourceVersion.description).contains(text, autoescape=True),
                        ),
                    ),
                    _version_has(version_tags, "tag_id", Tag, func.lower(Tag.name).contains(text, autoescape=True)),
                )
            )
        views = self._load(stmt)
        views.sort(key=_sort_key(query.sort, text))
        return views[query.offset : query.offset + query.limit], len(views)


def _as_date(value: date | str) -> date:
    """A date() of SQL: a date on PostgreSQL, its ISO text on SQLite."""
    return value if isinstance(value, date) else date.fromisoformat(value)


def _version_has(table, column: str, model, condition: ColumnElement[bool]) -> ColumnElement[bool]:
    return exists().where(
        table.c.version_id == ResourceVersion.id,
        ResourceVersion.resource_id == Resource.id,
        ResourceVersion.removed_at.is_(None),
        getattr(table.c, column) == model.id,
        and_(condition),
    )


def _sort_key(sort: str, text: str):
    def by_name(view: ResourceView) -> tuple[str, str, str]:
        return (view.resource.name, view.resource.kind, view.resource.catalog.name)

    if sort == "updated":
        return lambda v: (-v.latest.modified_at.timestamp(), *by_name(v))
    if sort == "name" or not text:
        return by_name

    def relevance(view: ResourceView) -> tuple[int, str, str, str]:
        name = view.resource.name
        latest = view.latest
        if name == text:
            rank = 0
        elif name.startswith(text):
            rank = 1
        elif text in name:
            rank = 2
        elif text in (latest.display_name or "").lower() or any(text in t.name.lower() for t in view.tags):
            rank = 3
        else:
            rank = 4
        return (rank, *by_name(view))

    return relevance


# The repositories Tekton's hub resolver asks Artifact Hub for by default (its shipped hubresolver-config).
DEFAULT_REPOSITORIES = {"tekton-catalog-tasks": "Task", "tekton-catalog-pipelines": "Pipeline"}


def artifact_catalog(index: CatalogIndex, repo: str, kind: str | None, default: str) -> tuple[str, str | None]:
    """(catalog, kind or None) an Artifact Hub repository name stands for: itself, or for Artifact Hub's default
    names (when no catalog has them) the default catalog, restricted to the name's kind; empty default: itself."""
    alias_kind = DEFAULT_REPOSITORIES.get(repo.lower())
    if not default or alias_kind is None or kind not in (None, alias_kind):
        return repo, None
    try:
        index.catalog(repo)
    except NotFound:
        return default, alias_kind
    return repo, None
