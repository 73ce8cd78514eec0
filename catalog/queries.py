"""Reading the index: catalogs, resources and their versions, search. Each read is one indexed query (two for a
page of results whose total cannot be told from the page itself)."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import astuple, dataclass, replace
from datetime import date
from typing import Any

from sqlalchemy import Connection, Select, bindparam, func, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

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
    resource_categories,
    resource_platforms,
    resource_tags,
)
from catalog.search import SORTS, SearchQuery, counted, ordered, shown
from catalog.versions import Version
from catalog.views import VERSION_COLUMNS, ResourceInfo, ResourceView, VersionInfo, columns, version_from, view_from

__all__ = ["SORTS", "CatalogIndex", "ResourceView", "SearchQuery", "parse_kind"]

# Built once: the resolver asks it on every hub resolve, and building a statement costs more than running it.
_MANIFESTS = (
    select(ResourceVersion.version, ResourceVersion.manifest, ResourceVersion.bundle_ref)
    .join(Resource, ResourceVersion.resource_id == Resource.id)
    .join(Catalog, Resource.catalog_id == Catalog.id)
    .where(
        Catalog.name == bindparam("catalog"),
        Resource.kind == bindparam("kind"),
        Resource.name == bindparam("name"),
        ResourceVersion.removed_at.is_(None),
    )
)
# How many tags the web UI offers as filters: the most used ones (and those already chosen).
TOP_TAGS = 50


def parse_kind(kind: str, *, path: bool = False) -> str:
    """Map "task"/"Task" (query) or "task" (path: lower case only) to the canonical kind "Task"."""
    canonical = KINDS.get(kind if path else kind.lower())
    if canonical is None:
        supported = " ".join(KINDS.values())
        raise InvalidKind(f"resource kind '{kind}' not supported. Supported kinds are [{supported}]")
    return canonical


LATEST = ResourceVersion.id == Resource.latest_version_id
RELEASE = ResourceVersion.id == Resource.latest_release_id
ANY_VERSION = ResourceVersion.resource_id == Resource.id


def resource_statement(on: Any = LATEST, *, content: bool = False) -> Select[Any]:
    """Resources with their catalog and a version (``on``: the latest by default): one row, one view."""
    return (
        select(*columns(content=content))
        .select_from(Resource)
        .join(Catalog, Catalog.id == Resource.catalog_id)
        .join(ResourceVersion, on)
    )


def _by_name(on: Any, *, content: bool) -> Select[Any]:
    return resource_statement(on, content=content).where(
        Catalog.name == bindparam("catalog"), Resource.kind == bindparam("kind"), Resource.name == bindparam("name")
    )


# Built once, as _MANIFESTS. RESOURCE_BY_NAME is the one query of /v1/resource/{catalog}/{kind}/{name}, the read
# clients ask most (bench/scale.py runs it in a bare Flask view too, as the floor).
RESOURCE_BY_NAME = _by_name(LATEST, content=False)
_BY_NAME = {
    (False, False): RESOURCE_BY_NAME,
    (True, False): _by_name(LATEST, content=True),
    (False, True): _by_name(RELEASE, content=False),
    (True, True): _by_name(RELEASE, content=True),
}


@dataclass
class Page:
    """A page of search results and the number of results in all."""

    views: list[ResourceView]
    total: int


class _PerGeneration:
    """Answers computed once per index generation and database: they change only when a sync changes the index."""

    def __init__(self, most: int = 256) -> None:
        self.lock = threading.Lock()
        self.most = most
        self.values: dict[Any, tuple[int, Any]] = {}

    def get(self, key: Any, generation: int) -> Any:
        memo = self.values.get(key)
        return memo[1] if memo is not None and memo[0] == generation else None

    def put(self, key: Any, generation: int, value: Any) -> None:
        with self.lock:
            if len(self.values) >= self.most:
                self.values.clear()
            self.values[key] = (generation, value)


_FACETS = _PerGeneration()  # the web UI's filter values
_TOTALS = _PerGeneration()  # how many resources a search without text matches: counting reads every one


class CatalogIndex:
    """Queries over the index, in one session. Statements of plain columns run on the session's connection, or on
    `reads` where a subclass gives one (hub.db.RequestIndex: a web request's connection, which sees what is
    committed)."""

    reads: Connection | None = None

    def __init__(self, session: Session) -> None:
        self.session = session
        self.dialect = session.get_bind().dialect

    def generation(self) -> int:
        return self._execute(select(IndexState.generation).where(IndexState.id == 1)).scalar() or 0

    # -- catalogs ----------------------------------------------------------------------------------------

    def catalogs(self) -> list[Catalog]:
        return list(self.session.scalars(select(Catalog).order_by(Catalog.name)))

    def catalog(self, name: str) -> Catalog:
        catalog = self.session.scalar(select(Catalog).where(Catalog.name == name.lower()))
        if catalog is None:
            raise NotFound(f"catalog {name!r} not found")
        return catalog

    def catalog_kinds(self) -> list[tuple[Catalog, str]]:
        """(catalog, kind) for each kind a catalog holds live versions of, by catalog name then kind."""
        listed = Resource.latest_version_id.is_not(None)
        pairs = self._execute(select(Resource.catalog_id, Resource.kind).where(listed).distinct()).all()
        catalogs = {c.id: c for c in self.catalogs()}
        found = [(catalogs[catalog_id], kind) for catalog_id, kind in pairs]
        return sorted(found, key=lambda pair: (pair[0].name, pair[1]))

    def catalog_errors(self, name: str) -> list[CatalogError]:
        return list(self.catalog(name).errors)

    def daily_counts(self) -> dict[str, list[tuple[date, int]]]:
        """How many live resources ("packages") and live versions ("snapshots") were first indexed each day,
        in day order: what Artifact Hub's stats chart."""
        out = {}
        for key, column, condition in (
            ("packages", Resource.created_at, Resource.latest_version_id.is_not(None)),
            ("snapshots", ResourceVersion.indexed_at, ResourceVersion.removed_at.is_(None)),
        ):
            day = func.date(column)
            rows = self._execute(select(day, func.count()).where(condition).group_by(day).order_by(day))
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
        """The values the web UI offers as filters: what listed resources carry (the most used tags only)."""
        generation, key = self.generation(), str(self.session.get_bind().engine.url)
        memo: dict[str, list[str]] | None = _FACETS.get(key, generation)
        if memo is not None:
            return memo
        facets = {
            "kind": list(KINDS.values()),
            "catalog": [c.name for c in self.catalogs()],
            "category": self._used_names(Category, resource_categories, "category_id"),
            "platform": self._used_names(Platform, resource_platforms, "platform_id"),
            "tag": self._used_names(Tag, resource_tags, "tag_id", TOP_TAGS),
        }
        _FACETS.put(key, generation, facets)
        return facets

    def _used_names(self, model: Any, link: Any, id_column: str, top: int | None = None) -> list[str]:
        uses = func.count(link.c.resource_id)
        stmt = (
            select(model.name, uses)
            .join(link, link.c[id_column] == model.id)
            .join(Resource, Resource.id == link.c.resource_id)
            .where(Resource.latest_version_id.is_not(None))
            .group_by(model.name)
        )
        rows = self._execute(stmt.order_by(uses.desc(), model.name).limit(top) if top else stmt).all()
        # Filters match names ignoring case, so "CLI" and "cli" are one choice.
        chosen: dict[str, str] = {}
        for name, _ in sorted(rows, key=lambda row: (row[0].lower(), row[0])):
            chosen.setdefault(name.lower(), name)
        return list(chosen.values())

    # -- resources ---------------------------------------------------------------------------------------

    def _execute(self, stmt: Any, params: dict[str, Any] | None = None) -> Any:
        """A statement of plain columns run on a connection: the rows an ORM execute would give, without its
        per-statement ORM work (a third of an uncached /v1/resource read's CPU, profiled)."""
        if self.reads is not None:
            return self.reads.execute(stmt, params or {})
        if self.session.new or self.session.dirty or self.session.deleted:
            self.session.flush()  # what the ORM's autoflush would have written first
        return self.session.connection().execute(stmt, params or {})

    def _one(self, stmt: Select[Any], params: dict[str, Any] | None = None) -> ResourceView:
        row = self._execute(stmt, params).first()
        if row is None:
            raise NotFound("resource not found")
        return view_from(row)

    def resource(
        self, catalog: str, kind: str, name: str, *, content: bool = False, release: bool = False
    ) -> ResourceView:
        """A listed resource by catalog, kind and name, showing its latest version (with ``release``: its highest
        that is not a prerelease, Artifact Hub's default), and that version's content when asked."""
        params = {"catalog": catalog.lower(), "kind": kind, "name": name}
        return self._one(_BY_NAME[(content, release)], params)

    def resource_by_id(self, resource_id: int) -> ResourceView:
        return self._one(resource_statement().where(Resource.id == resource_id))

    def _version_row(self, condition: Any, resource: ResourceInfo) -> VersionInfo:
        row = self._execute(select(*VERSION_COLUMNS).where(condition)).first()
        if row is None:
            raise NotFound("resource not found")
        return version_from(tuple(row), resource)

    def versions(self, resource_id: int) -> tuple[ResourceView, list[VersionInfo]]:
        """A listed resource and every live version of it in version order, in one query."""
        stmt = resource_statement(ANY_VERSION).where(
            Resource.id == resource_id, Resource.latest_version_id.is_not(None), ResourceVersion.removed_at.is_(None)
        )
        rows = self._execute(stmt).all()
        if not rows:
            raise NotFound("resource not found")
        views = [view_from(row) for row in rows]
        rows_by_id = {v.latest.id: v.latest for v in views}
        return views[0], [rows_by_id[brief.id] for brief in views[0].versions if brief.id in rows_by_id]

    def manifests(self, catalog: str, kind: str, name: str) -> list[tuple[str, str, str | None]]:
        """(version, manifest, bundle_ref) of each live version of a resource, in one query and without the rest
        of the resource; NotFound when it has none."""
        params = {"catalog": catalog.lower(), "kind": kind, "name": name}
        rows = [(str(v), str(m), b) for v, m, b in self._execute(_MANIFESTS, params)]
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
        latest = view.latest
        if versions[-1].id != latest.id:
            latest = self._version_row(ResourceVersion.id == versions[-1].id, view.resource)
        return view.narrowed(versions, latest)

    def version(self, catalog: str, kind: str, name: str, version: str, *, content: bool = False) -> ResourceView:
        """A resource showing one version, found by its text (``0.9``) or an equal version (``0.9.0``); removed
        versions still resolve (for pinned references)."""
        where = (Catalog.name == catalog.lower(), Resource.kind == kind, Resource.name == name)
        stmt = resource_statement(ANY_VERSION, content=content).where(*where)
        row = self._execute(stmt.where(ResourceVersion.version == version)).first()
        if row is not None:
            return view_from(row)
        try:
            wanted = Version.parse(version)
        except InvalidVersion:
            raise NotFound("resource not found") from None
        known = self._execute(
            select(ResourceVersion.id, ResourceVersion.version, ResourceVersion.removed_at)
            .join(Resource, Resource.id == ResourceVersion.resource_id)
            .join(Catalog, Catalog.id == Resource.catalog_id)
            .where(*where)
        ).all()
        same = sorted((r for r in known if _same_version(r[1], wanted)), key=lambda r: r[2] is not None)
        if not same:
            raise NotFound("resource not found")
        return self._one(stmt.where(ResourceVersion.id == same[0][0]))

    def version_by_id(self, version_id: int) -> ResourceView:
        """The resource showing the version with this id (removed versions too)."""
        return self._one(resource_statement(ANY_VERSION).where(ResourceVersion.id == version_id))

    # -- search ------------------------------------------------------------------------------------------

    def search(self, query: SearchQuery) -> Page:
        """The page of resources matching query, ranked, with the number of matches in all."""
        query.check()
        stmt = ordered(query, resource_statement(shown(query)), self.dialect)
        views = [view_from(row) for row in self._execute(stmt)]
        if views and len(views) < query.limit:
            total = query.offset + len(views)  # a page that is not full tells the total itself
        elif not views and query.offset == 0:
            total = 0
        elif query.text.strip():
            total = self._execute(counted(query, self.dialect)).scalar() or 0
        else:  # the home page and /v1/resources: a count that reads the whole index, once per generation
            generation = self.generation()
            key = (str(self.session.get_bind().engine.url), astuple(replace(query, sort="", limit=0, offset=0)))
            total = _TOTALS.get(key, generation)
            if total is None:
                total = self._execute(counted(query, self.dialect)).scalar() or 0
                _TOTALS.put(key, generation, total)
        return Page(views, total)

    def counts_by_repository(self, query: SearchQuery) -> list[tuple[int, str, int]]:
        """(catalog id, kind, how many resources match) of every pair with matches."""
        stmt = counted(query, self.dialect, Resource.catalog_id, Resource.kind)
        return [(int(c), str(k), int(n)) for c, k, n in self._execute(stmt)]


def _same_version(text: str, wanted: Version) -> bool:
    try:
        return Version.parse(text) == wanted
    except InvalidVersion:
        return False


def _as_date(value: date | str) -> date:
    """A date() of SQL: a date on PostgreSQL, its ISO text on SQLite."""
    return value if isinstance(value, date) else date.fromisoformat(value)


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
