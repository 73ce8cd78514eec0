"""Bringing the index in line with a catalog tree, in the caller's transaction.

The caller owns the transaction (``with Session(engine) as s, s.begin():``): if anything fails, nothing of the
sync is kept and the previous index stays served. Unchanged input writes nothing and leaves the index
generation, and so every ETag, as it was.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Generic, TypeVar

from sqlalchemy import select, update
from sqlalchemy.orm import Session, selectinload

from catalog.errors import Conflict, NotFound
from catalog.models import (
    Catalog,
    CatalogError,
    Category,
    IndexState,
    Platform,
    Resource,
    ResourceVersion,
    Tag,
    utcnow,
)
from catalog.sources import Checkout, check_context_dir, checkout, detect_provider, web_urls
from catalog.tree import LEVELS, CatalogTree, VersionEntry, read_catalog_tree

CATALOG_TYPES = ("official", "community", "verified", "enterprise", "private")


@dataclass
class SyncSummary:
    """What a sync did, for the person who ran it."""

    catalog: str
    revision: str | None = None
    resources: int = 0
    versions: int = 0
    added: int = 0
    updated: int = 0
    removed: int = 0
    problems: Counter[str] = field(default_factory=Counter)
    problems_changed: bool = False

    @property
    def changed(self) -> bool:
        return bool(self.added or self.updated or self.removed or self.problems_changed)

    def lines(self) -> list[str]:
        head = f"{self.catalog}: {self.resources} resources, {self.versions} versions"
        if self.revision:
            head += f" at {self.revision[:12]}"
        change = f"{self.added} added, {self.updated} updated, {self.removed} removed"
        if not self.changed:
            change = "no changes"
        problems = ", ".join(f"{self.problems[level]} {level}" for level in LEVELS if self.problems[level])
        lines = [head, f"  {change}", f"  problems: {problems or 'none'}"]
        if any(self.problems[level] for level in ("critical", "error", "warning")):
            lines.append(f"  see them with: taskhub catalog errors {self.catalog}")
        return lines


def add_catalog(
    session: Session,
    name: str,
    source: str,
    *,
    revision: str | None = None,
    context_dir: str | None = None,
    type: str = "community",
) -> Catalog:
    """Register a catalog; it is indexed by the next sync."""
    from catalog.manifests import is_dns1123_label

    if not is_dns1123_label(name):
        raise Conflict(f"catalog name {name!r} must be lower-case letters, digits and '-' (a DNS-1123 label)")
    if type not in CATALOG_TYPES:
        raise Conflict(f"catalog type {type!r} must be one of {', '.join(CATALOG_TYPES)}")
    if session.scalar(select(Catalog).where(Catalog.name == name)) is not None:
        raise Conflict(f"catalog {name!r} already exists")
    provider = detect_provider(source)
    if provider == "local":
        source = str(Path(source).resolve())
    catalog = Catalog(
        name=name,
        source=source,
        revision=revision,
        context_dir=check_context_dir(context_dir),
        type=type,
        provider=provider,
    )
    session.add(catalog)
    session.flush()
    return catalog


def get_catalog(session: Session, name: str) -> Catalog:
    catalog = session.scalar(select(Catalog).where(Catalog.name == name.lower()))
    if catalog is None:
        raise NotFound(f"catalog {name!r} not found")
    return catalog


def fetch_catalog(catalog: Catalog, work_dir: Path) -> tuple[Checkout, CatalogTree]:
    """Check out a catalog's source and walk it; touches no database."""
    files = checkout(catalog.name, catalog.source, catalog.revision, catalog.context_dir, work_dir)
    return files, read_catalog_tree(files.root, files.modified)


_Named = TypeVar("_Named", Tag, Category, Platform)


class _Names(Generic[_Named]):
    """Tag, category and platform rows by name, created on first use."""

    def __init__(self, session: Session, model: type[_Named]) -> None:
        self.session = session
        self.model: type[_Named] = model
        self.rows: dict[str, _Named] = {row.name: row for row in session.scalars(select(model))}

    def get(self, names: list[str]) -> list[_Named]:
        out = []
        for name in names:
            row = self.rows.get(name)
            if row is None:
                row = self.model(name=name)
                self.session.add(row)
                self.rows[name] = row
            out.append(row)
        return sorted(out, key=lambda r: r.name)


def apply_tree(session: Session, catalog: Catalog, files: Checkout, tree: CatalogTree) -> SyncSummary:
    """Make the index of one catalog match its walked tree."""
    summary = SyncSummary(catalog=catalog.name, revision=files.revision)
    resources = {
        (r.kind, r.name): r
        for r in session.scalars(
            select(Resource)
            .where(Resource.catalog_id == catalog.id)
            .options(
                selectinload(Resource.versions).selectinload(ResourceVersion.tags),
                selectinload(Resource.versions).selectinload(ResourceVersion.categories),
                selectinload(Resource.versions).selectinload(ResourceVersion.platforms),
            )
        )
    }
    tags, categories, platforms = _Names(session, Tag), _Names(session, Category), _Names(session, Platform)
    now = utcnow()
    seen: set[int] = set()
    for entry in tree.versions:
        resource = resources.get((entry.meta.kind, entry.name))
        if resource is None:
            resource = Resource(catalog=catalog, kind=entry.meta.kind, name=entry.name, versions=[])
            session.add(resource)
            resources[(entry.meta.kind, entry.name)] = resource
        existing = {v.version: v for v in resource.versions}
        row = existing.get(entry.version)
        web_url, raw_url = web_urls(
            catalog.provider,
            files.web_base,
            files.revision or "",
            f"{catalog.context_dir}/{entry.path}" if catalog.context_dir else entry.path,
        )
        values = _version_values(entry, web_url, raw_url)
        names = (
            tags.get(entry.meta.tags),
            categories.get(entry.meta.categories),
            platforms.get(entry.meta.platforms),
        )
        if row is None:
            row = ResourceVersion(**values, indexed_at=now)
            row.tags, row.categories, row.platforms = names
            resource.versions.append(row)
            summary.added += 1
        elif _differs(row, values, names):
            for key, value in values.items():
                setattr(row, key, value)
            row.tags, row.categories, row.platforms = names
            row.removed_at = None
            row.indexed_at = now
            summary.updated += 1
        if row.id is not None:
            seen.add(row.id)
    live_resources = set()
    for resource in resources.values():
        for row in resource.versions:
            if row.id is not None and row.id not in seen and row.removed_at is None:
                row.removed_at = now
                summary.removed += 1
            if row.removed_at is None:
                summary.versions += 1
                live_resources.add(resource.id or id(resource))
    summary.resources = len(live_resources)
    summary.problems_changed = _replace_problems(session, catalog, tree)
    summary.problems.update(p.level for p in tree.problems)
    catalog.synced_revision = files.revision
    catalog.synced_at = now
    catalog.last_error = None
    if summary.changed:
        session.execute(update(IndexState).values(generation=IndexState.generation + 1))
    return summary


def _version_values(entry: VersionEntry, web_url: str | None, raw_url: str | None) -> dict[str, object]:
    meta = entry.meta
    return {
        "version": entry.version,
        "api_version": meta.api_version,
        "display_name": meta.display_name,
        "description": meta.description,
        "deprecated": meta.deprecated,
        "min_pipelines_version": meta.min_pipelines_version,
        "path": entry.path,
        "web_url": web_url,
        "raw_url": raw_url,
        "manifest": entry.manifest,
        "digest": entry.digest,
        "readme": entry.readme,
        "samples": entry.samples,
        "modified_at": entry.modified_at,
    }


def _differs(
    row: ResourceVersion, values: dict[str, object], names: tuple[list[Tag], list[Category], list[Platform]]
) -> bool:
    if row.removed_at is not None:
        return True
    if any(getattr(row, key) != value for key, value in values.items()):
        return True
    return (row.tags, row.categories, row.platforms) != names


def _replace_problems(session: Session, catalog: Catalog, tree: CatalogTree) -> bool:
    old = [(e.level, e.path, e.message) for e in catalog.errors]
    new = [(p.level, p.path, p.message) for p in tree.problems]
    if old == new:
        return False
    catalog.errors.clear()
    session.flush()
    catalog.errors.extend(CatalogError(level=lvl, path=path, message=msg) for lvl, path, msg in new)
    return True


def sync_catalog(session: Session, catalog: Catalog, work_dir: Path) -> SyncSummary:
    """Fetch, walk and index one catalog in the session's transaction."""
    files, tree = fetch_catalog(catalog, work_dir)
    return apply_tree(session, catalog, files, tree)
