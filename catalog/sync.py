"""Catalogs: adding them, and syncing them: fetching a source (a directory, a git repository or a registry),
walking it, and indexing what was found (catalog/indexing.py) in a transaction of its own."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from pathlib import Path

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from catalog import metrics
from catalog.errors import CatalogSourceError, Conflict, InvalidRequest, NotFound
from catalog.indexing import SyncSummary, apply_tree, known_versions
from catalog.manifests import is_dns1123_label
from catalog.models import (
    CATALOG_TYPES,
    DEFAULT_REFRESH_SECONDS,
    OCI,
    RESERVED_CATALOG_NAMES,
    Catalog,
    CatalogError,
)
from catalog.publish import bundle_target
from catalog.registry import Registry
from catalog.registry_sync import is_release_tag, known_entries, read_registry
from catalog.sources import Checkout, check_context_dir, check_git_value, checkout, detect_provider
from catalog.tree import LEVELS, CatalogTree, Known, read_catalog_tree


def add_catalog(
    session: Session,
    name: str,
    source: str,
    *,
    revision: str | None = None,
    context_dir: str | None = None,
    type: str = "community",
    repositories: list[str] | None = None,
    org: str | None = None,
    refresh_seconds: int = DEFAULT_REFRESH_SECONDS,
) -> Catalog:
    """Register a catalog (a directory, a git URL, or with repositories a registry), synced every
    `refresh_seconds` (0: only when asked); the next sync indexes it."""
    if not is_dns1123_label(name):
        raise InvalidRequest(
            f"catalog name {name!r} must be lower-case letters, digits and '-' (a DNS-1123 label)",
            reason="invalid-name",
        )
    if name in RESERVED_CATALOG_NAMES:
        raise InvalidRequest(f"catalog name {name!r} is reserved: /{name}/... paths belong to the hub's APIs",
                             reason="invalid-name")  # fmt: skip
    if type not in CATALOG_TYPES:
        raise InvalidRequest(f"catalog type {type!r} must be one of {', '.join(CATALOG_TYPES)}", reason="invalid-type")
    if session.scalar(select(Catalog).where(Catalog.name == name)) is not None:
        raise Conflict(f"catalog {name!r} already exists")
    check_git_value(source, "source")
    check_git_value(revision, "revision")
    provider = detect_provider(source)
    if repositories is not None:
        host, prefix = bundle_target(source)
        provider, source = OCI, f"{host}/{prefix}"
    elif provider == "local":
        source = str(Path(source).resolve())
    catalog = Catalog(
        name=name,
        source=source,
        revision=revision,
        context_dir=check_context_dir(context_dir),
        type=type,
        provider=provider,
        repositories=repositories or [],
        org=org or None,
        refresh_seconds=refresh_seconds,
    )
    session.add(catalog)
    session.flush()
    return catalog


def get_catalog(session: Session, name: str) -> Catalog:
    catalog = session.scalar(select(Catalog).where(Catalog.name == name.lower()))
    if catalog is None:
        raise NotFound(f"catalog {name!r} not found")
    return catalog


def fetch_catalog(
    catalog: Catalog, work_dir: Path, known: Mapping[str, Known] | None = None
) -> tuple[Checkout, CatalogTree]:
    """Check out a catalog's source and walk it, reading only the version folders that are not in ``known``
    with the same files (known_versions); touches no database."""
    files = checkout(catalog.name, catalog.source, catalog.revision, catalog.context_dir, work_dir)
    return files, read_catalog_tree(files.root, files.modified, known, files.folder_keys)


def fetch(
    session: Session,
    catalog: Catalog,
    work_dir: Path,
    registries: Callable[[str], Registry] | None = None,
    progress: Callable[[str], None] = lambda _: None,
    *,
    full: bool = False,
) -> tuple[Checkout, CatalogTree]:
    """Read any catalog: a tree (directory or git) or a registry (through the client registries(host) gives).

    Version folders whose files are unchanged since the last sync, and a registry's release tags indexed without
    a problem, are not read again, unless full is set.
    """
    if catalog.provider != OCI:
        return fetch_catalog(catalog, work_dir, None if full else known_versions(session, catalog))
    if registries is None:
        raise CatalogSourceError(f"catalog {catalog.name} is a registry, and no registry client was given")
    host, _ = bundle_target(catalog.source)
    failed = select(CatalogError.path).where(CatalogError.catalog_id == catalog.id, CatalogError.level == "error")
    troubled = set(session.scalars(failed))

    def recheck(ref: str) -> bool:
        return full or ref in troubled or not is_release_tag(ref)

    tree = read_registry(catalog, registries(host), known_entries(session, catalog), progress, recheck=recheck)
    return Checkout(Path("."), None), tree


def sync_by_name(
    engine: Engine,
    name: str,
    work_dir: Path,
    registries: Callable[[str], Registry],
    progress: Callable[[str], None] = lambda _: None,
    *,
    full: bool = False,
) -> SyncSummary:
    """Fetch, then index one catalog or registry in a transaction of its own: the old index stays until then."""
    started, outcome = time.monotonic(), "failure"
    with Session(engine) as session:
        catalog = get_catalog(session, name)  # an unknown name is counted nowhere: labels stay the operator's
        kind = "registry" if catalog.provider == OCI else "catalog"
    try:
        with Session(engine) as session:
            files, tree = fetch(session, get_catalog(session, name), work_dir, registries, progress, full=full)
        progress(f"read {len(tree.versions)} versions, {len(tree.problems)} problems; indexing")
        with Session(engine) as session, session.begin():
            summary = apply_tree(session, get_catalog(session, name), files, tree)
        outcome = "success"
        metrics.SYNC_VERSIONS.labels(name, kind).set(summary.versions)
        for level in LEVELS:
            metrics.SYNC_PROBLEMS.labels(name, kind, level).set(summary.problems[level])
        return summary
    finally:
        metrics.SYNCS.labels(name, kind, outcome).inc()
        metrics.SYNC_SECONDS.labels(name, kind, outcome).observe(time.monotonic() - started)
