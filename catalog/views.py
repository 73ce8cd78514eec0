"""What a read of the index returns: plain records built from one row of one query, no ORM objects.

A resource's row carries its summary (catalog/summaries.py), so a resource with its versions, its latest version
and the union of their tags, categories and platforms comes from one indexed query.

The records are slotted dataclasses that nothing changes once built, not frozen ones: a frozen dataclass sets each
field through object.__setattr__, which made building a resource's view (every read of one does) twice as costly.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Row

from catalog.models import Catalog, Resource, ResourceVersion
from catalog.versions import Version


@dataclass(slots=True)
class Named:
    """A tag, category or platform: its id and name."""

    id: int
    name: str


def named_list(pairs: list[list[Any]] | None) -> list[Named]:
    return [Named(int(i), str(n)) for i, n in pairs or ()]


@dataclass(slots=True)
class CatalogInfo:
    id: int
    name: str
    type: str
    provider: str
    source: str
    org: str | None


@dataclass(slots=True)
class ResourceInfo:
    id: int
    name: str
    kind: str
    catalog: CatalogInfo
    created_at: datetime


@dataclass(slots=True)
class VersionBrief:
    """A live version as the resource's summary lists it."""

    id: int
    version: str
    min_pipelines_version: str | None
    modified_at: datetime
    deprecated: bool

    @property
    def is_prerelease(self) -> bool:
        return Version.parse(self.version).is_prerelease


@dataclass(slots=True)
class VersionInfo:
    """One version; ``manifest``, ``readme`` and ``samples`` only when the read asked for the content."""

    id: int
    version: str
    resource: ResourceInfo
    display_name: str | None
    description: str
    deprecated: bool
    min_pipelines_version: str | None
    web_url: str | None
    raw_url: str | None
    modified_at: datetime
    removed_at: datetime | None
    path: str
    bundle_ref: str | None
    tags: list[Named]
    categories: list[Named]
    platforms: list[Named]
    manifest: str = ""
    readme: str | None = None
    samples: dict[str, str] = field(default_factory=dict)


@dataclass(slots=True)
class ResourceView:
    """A resource, the version shown (its latest unless asked otherwise), every live version in version order,
    and the union of their tags, categories and platforms."""

    resource: ResourceInfo
    latest: VersionInfo
    versions: list[VersionBrief]
    tags: list[Named]
    categories: list[Named]
    platforms: list[Named]
    release_id: int | None = None  # the highest version that is not a prerelease (Artifact Hub's default)

    def narrowed(self, versions: list[VersionBrief], latest: VersionInfo) -> ResourceView:
        """The same resource listing only some versions; the union stays that of every live version."""
        return replace(self, versions=versions, latest=latest)


# The columns of each record, in the order the builders below read them.
CATALOG_COLUMNS = (Catalog.id, Catalog.name, Catalog.type, Catalog.provider, Catalog.source, Catalog.org)
RESOURCE_COLUMNS = (
    Resource.id,
    Resource.name,
    Resource.kind,
    Resource.created_at,
    Resource.summary,
    Resource.latest_release_id,
)
VERSION_COLUMNS = (
    ResourceVersion.id,
    ResourceVersion.version,
    ResourceVersion.display_name,
    ResourceVersion.description,
    ResourceVersion.deprecated,
    ResourceVersion.min_pipelines_version,
    ResourceVersion.web_url,
    ResourceVersion.raw_url,
    ResourceVersion.modified_at,
    ResourceVersion.removed_at,
    ResourceVersion.path,
    ResourceVersion.bundle_ref,
    ResourceVersion.facets,
)
CONTENT_COLUMNS = (ResourceVersion.manifest, ResourceVersion.readme, ResourceVersion.samples)


def columns(*, content: bool = False) -> tuple[Any, ...]:
    """Catalog, resource and version columns (and the version's content): one row builds a ResourceView."""
    return (*CATALOG_COLUMNS, *RESOURCE_COLUMNS, *VERSION_COLUMNS, *(CONTENT_COLUMNS if content else ()))


_C, _R, _V = len(CATALOG_COLUMNS), len(RESOURCE_COLUMNS), len(VERSION_COLUMNS)


def version_from(values: tuple[Any, ...], resource: ResourceInfo) -> VersionInfo:
    """A VersionInfo from VERSION_COLUMNS (and CONTENT_COLUMNS, when present)."""
    id_, text, display, description, deprecated, min_pv, web, raw, modified, removed, path, bundle, facets = values[:_V]
    facets = facets or {}
    info = VersionInfo(
        id=id_, version=text, resource=resource, display_name=display, description=description,
        deprecated=deprecated, min_pipelines_version=min_pv, web_url=web, raw_url=raw, modified_at=modified,
        removed_at=removed, path=path, bundle_ref=bundle, tags=named_list(facets.get("tags")),
        categories=named_list(facets.get("categories")), platforms=named_list(facets.get("platforms")),
    )  # fmt: skip
    if len(values) > _V:
        info.manifest, info.readme, info.samples = values[_V], values[_V + 1], values[_V + 2] or {}
    return info


def view_from(row: Row[Any] | tuple[Any, ...]) -> ResourceView:
    """A ResourceView from a row of ``columns()``."""
    values = tuple(row)
    catalog = CatalogInfo(*values[:_C])
    resource_id, name, kind, created_at, summary, release_id = values[_C : _C + _R]
    resource = ResourceInfo(resource_id, name, kind, catalog, created_at)
    summary = summary or {}
    versions = [  # the time zone passed by position: by keyword it costs datetime three times as much
        VersionBrief(int(i), str(v), m, datetime.fromtimestamp(ts, UTC), bool(d))
        for i, v, m, ts, d in summary.get("versions", ())
    ]
    return ResourceView(
        resource=resource,
        latest=version_from(values[_C + _R :], resource),
        versions=versions,
        tags=named_list(summary.get("tags")),
        categories=named_list(summary.get("categories")),
        platforms=named_list(summary.get("platforms")),
        release_id=release_id,
    )
