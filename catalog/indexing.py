"""Bringing the index of one catalog in line with a walked tree, in the caller's transaction.

The caller owns the transaction (``with Session(engine) as s, s.begin():``): if anything fails, nothing of the
sync is kept and the previous index stays served. Unchanged input writes nothing and leaves the index
generation, and so every ETag, as it was. Version folders the walk found unchanged (catalog/tree.py, Known) are
kept as they are: their rows are only marked live.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Table, delete, insert, select, update
from sqlalchemy.orm import Session

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
    version_categories,
    version_platforms,
    version_tags,
)
from catalog.sources import Checkout, web_urls
from catalog.summaries import facet_lists, refresh_resources
from catalog.tree import LEVELS, CatalogTree, Known, Problem, VersionEntry


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


_NAMED: dict[str, tuple[type[Tag] | type[Category] | type[Platform], Table, str]] = {
    "tags": (Tag, version_tags, "tag_id"),
    "categories": (Category, version_categories, "category_id"),
    "platforms": (Platform, version_platforms, "platform_id"),
}


class _NameIds:
    """Ids of tag, category or platform rows by name; missing rows are inserted in one statement."""

    def __init__(self, session: Session, model: type[Tag] | type[Category] | type[Platform]) -> None:
        self.session = session
        self.model = model
        self.ids: dict[str, int] = {name: id_ for id_, name in session.execute(select(model.id, model.name))}

    def ensure(self, names: set[str]) -> None:
        missing = sorted(names - self.ids.keys())
        if missing:
            stmt = insert(self.model).returning(self.model.id, self.model.name, sort_by_parameter_order=True)
            self.ids.update({name: id_ for id_, name in self.session.execute(stmt, [{"name": n} for n in missing])})


def _fingerprint(values: dict[str, Any], entry: VersionEntry) -> str:
    """A digest of everything indexed for a version: equal fingerprints mean there is nothing to write."""
    meta = entry.meta
    data = {**values, "tags": meta.tags, "categories": meta.categories, "platforms": meta.platforms}
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()


def apply_tree(session: Session, catalog: Catalog, files: Checkout, tree: CatalogTree) -> SyncSummary:
    """Make the index of one catalog match its walked tree, with a handful of bulk statements."""
    summary = SyncSummary(catalog=catalog.name, revision=files.revision)
    now = utcnow()
    resource_ids = {
        (kind, name): id_
        for id_, kind, name in session.execute(
            select(Resource.id, Resource.kind, Resource.name).where(Resource.catalog_id == catalog.id)
        )
    }
    new_resources = sorted({(e.meta.kind, e.name) for e in tree.versions} - resource_ids.keys())
    if new_resources:
        stmt = insert(Resource).returning(Resource.id, Resource.kind, Resource.name, sort_by_parameter_order=True)
        rows = [{"catalog_id": catalog.id, "kind": k, "name": n, "created_at": now} for k, n in new_resources]
        resource_ids.update({(kind, name): id_ for id_, kind, name in session.execute(stmt, rows)})
    existing: dict[tuple[int, str], tuple[int, str, datetime | None, str | None]] = {
        (resource_id, version): (id_, fingerprint, removed_at, source_key)
        for id_, resource_id, version, fingerprint, removed_at, source_key in session.execute(
            select(
                ResourceVersion.id,
                ResourceVersion.resource_id,
                ResourceVersion.version,
                ResourceVersion.fingerprint,
                ResourceVersion.removed_at,
                ResourceVersion.source_key,
            )
            .join(Resource)
            .where(Resource.catalog_id == catalog.id)
        )
    }
    resource_of = {row[0]: resource_id for (resource_id, _), row in existing.items()}
    removed_at_of = {row[0]: row[2] for row in existing.values()}

    inserts: list[tuple[dict[str, Any], VersionEntry]] = []
    updates: list[tuple[int, dict[str, Any], VersionEntry]] = []
    revived: list[int] = []
    new_keys: list[dict[str, Any]] = []  # same files, another key: a file touched, or one the hub does not read
    seen = {u.version_id for u in tree.unchanged}
    revived.extend(id_ for id_ in seen if removed_at_of.get(id_) is not None)
    key_of = {row[0]: row[3] for row in existing.values()}
    new_keys.extend(
        {"id": u.version_id, "source_key": u.source_key}
        for u in tree.unchanged
        if key_of.get(u.version_id) != u.source_key
    )
    for entry in tree.versions:
        resource_id = resource_ids[(entry.meta.kind, entry.name)]
        values = _version_values(catalog, files, entry)
        values["fingerprint"] = _fingerprint(values, entry)
        values["source_key"] = entry.source_key  # not part of the fingerprint: no client sees it
        old = existing.get((resource_id, entry.version))
        if old is None:
            inserts.append(({**values, "resource_id": resource_id, "indexed_at": now}, entry))
            continue
        old_id, old_fingerprint, removed_at, old_key = old
        seen.add(old_id)
        if old_fingerprint != values["fingerprint"]:
            updates.append((old_id, {**values, "removed_at": None, "indexed_at": now}, entry))
            continue
        if removed_at is not None:
            revived.append(old_id)  # back as it was: the row, and the bundle it was published as, still hold
        if old_key != entry.source_key:
            new_keys.append({"id": old_id, "source_key": entry.source_key})
    removed = [row[0] for row in existing.values() if row[0] not in seen and row[2] is None]

    names = _names_of(session, [entry for _, entry in inserts] + [entry for _, _, entry in updates])
    for values, entry in inserts:
        values["facets"] = names.facets(entry)
    for _, values, entry in updates:
        values["facets"] = names.facets(entry)
    links: list[tuple[int, VersionEntry]] = []
    if inserts:
        new_ids = session.scalars(
            insert(ResourceVersion).returning(ResourceVersion.id, sort_by_parameter_order=True),
            [values for values, _ in inserts],
        ).all()
        links.extend(zip(new_ids, (entry for _, entry in inserts), strict=True))
    for id_, values, entry in updates:
        session.execute(update(ResourceVersion).where(ResourceVersion.id == id_).values(**values))
        links.append((id_, entry))
    if updates:
        changed = [id_ for id_, _, _ in updates]
        for _, table, _ in _NAMED.values():
            session.execute(delete(table).where(table.c.version_id.in_(changed)))
    if removed:
        session.execute(update(ResourceVersion).where(ResourceVersion.id.in_(removed)).values(removed_at=now))
    if revived:
        session.execute(
            update(ResourceVersion).where(ResourceVersion.id.in_(revived)).values(removed_at=None, indexed_at=now)
        )
    if links:
        names.link(session, links)
    if new_keys:  # nothing a client sees: not counted as a change
        session.execute(update(ResourceVersion), new_keys)
    touched = {values["resource_id"] for values, _ in inserts}
    touched.update(resource_of[id_] for id_ in [*(u[0] for u in updates), *removed, *revived])
    refresh_resources(session, touched)

    summary.added, summary.updated, summary.removed = len(inserts), len(updates) + len(revived), len(removed)
    summary.problems_changed = _replace_problems(session, catalog, tree)
    summary.problems.update(p.level for p in tree.problems)
    # Every version of the tree is now live, and nothing else of this catalog is.
    live = {(e.meta.kind, e.name) for e in tree.versions} | {(u.kind, u.name) for u in tree.unchanged}
    summary.versions, summary.resources = len(tree.versions) + len(tree.unchanged), len(live)
    catalog.synced_revision = files.revision
    catalog.synced_at = now
    catalog.last_error = None
    if summary.changed:
        session.execute(update(IndexState).values(generation=IndexState.generation + 1))
    return summary


class _Names:
    """The ids of every tag, category and platform the written versions carry (missing rows inserted)."""

    def __init__(self, ids: dict[str, _NameIds]) -> None:
        self.ids = ids

    def facets(self, entry: VersionEntry) -> dict[str, list[list[Any]]]:
        """The version's ``facets`` column."""
        return facet_lists(
            {attr: [(ids.ids[n], n) for n in getattr(entry.meta, attr)] for attr, ids in self.ids.items()}
        )

    def link(self, session: Session, links: list[tuple[int, VersionEntry]]) -> None:
        """The version_tags, version_categories and version_platforms rows of the written versions."""
        for attribute, (_, table, column) in _NAMED.items():
            ids = self.ids[attribute].ids
            rows = [
                {"version_id": version_id, column: ids[name]}
                for version_id, entry in links
                for name in getattr(entry.meta, attribute)
            ]
            if rows:
                session.execute(insert(table), rows)


def _names_of(session: Session, entries: list[VersionEntry]) -> _Names:
    found = {}
    for attribute, (model, _, _) in _NAMED.items():
        names = _NameIds(session, model)
        names.ensure({name for entry in entries for name in getattr(entry.meta, attribute)})
        found[attribute] = names
    return _Names(found)


def _version_values(catalog: Catalog, files: Checkout, entry: VersionEntry) -> dict[str, Any]:
    meta = entry.meta
    repo_path = f"{catalog.context_dir}/{entry.path}" if catalog.context_dir else entry.path
    web_url, raw_url = web_urls(catalog.provider, files.web_base, files.revision or "", repo_path)
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
        # A changed version drops the bundle it was published as; a registry's versions carry their own.
        "bundle_ref": entry.bundle_ref,
    }


def known_versions(session: Session, catalog: Catalog) -> dict[str, Known]:
    """What the last syncs read from each version folder of a catalog (by folder path): its digest, its row and
    the problems reported in it, so that a walk can skip the folders whose files have not changed."""
    problems: dict[str, list[Problem]] = defaultdict(list)
    rows = session.execute(
        select(CatalogError.level, CatalogError.path, CatalogError.message)
        .where(CatalogError.catalog_id == catalog.id)
        .order_by(CatalogError.id)
    )
    for level, path, message in rows:
        problems["/".join(path.split("/")[:3])].append(Problem(level, path, message))  # <kind>/<name>/<version>
    versions = session.execute(
        select(ResourceVersion.id, ResourceVersion.path, ResourceVersion.source_key)
        .join(Resource)
        .where(Resource.catalog_id == catalog.id, ResourceVersion.source_key.is_not(None))
    )
    known = {}
    for id_, path, key in versions:
        folder = path.rsplit("/", 1)[0]
        known[folder] = Known(key, id_, tuple(problems.get(folder, ())))
    return known


def _replace_problems(session: Session, catalog: Catalog, tree: CatalogTree) -> bool:
    where = CatalogError.catalog_id == catalog.id
    old = session.execute(
        select(CatalogError.level, CatalogError.path, CatalogError.message).where(where).order_by(CatalogError.id)
    ).all()
    new = [(p.level, p.path, p.message) for p in tree.problems]
    if [tuple(row) for row in old] == new:
        return False
    session.execute(delete(CatalogError).where(where))
    if new:
        rows = [{"catalog_id": catalog.id, "level": lvl, "path": path, "message": msg} for lvl, path, msg in new]
        session.execute(insert(CatalogError), rows)
    session.expire(catalog, ["errors"])
    return True
