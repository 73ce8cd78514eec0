"""Reading Tekton bundles from an OCI registry into a catalog tree, which `apply_tree` then indexes.

Every object of every bundle becomes a resource version whose version is its ``app.kubernetes.io/version``
label and whose source is the bundle pinned by digest. A manifest digest already in the index is not read
again. A tag that reads as a version (``0.9``, ``1.2.3``) names a release: once indexed without a problem it
is taken as immutable and not asked for again, so re-syncing an unchanged registry costs the tag listings and
downloads no blob; other tags (``latest``, ``main``) are re-checked by one manifest GET each, and a full sync
re-checks every tag. A bundle that cannot be read is reported and skipped, keeping what the index had for that
tag; a registry that cannot be reached, refuses the credentials or fails stops the whole sync, and the caller's
index stays as it was.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from catalog.bundle_manifests import Descriptor, bundle_entries, check_bundle_manifest, parse_manifest
from catalog.bundles import read_layer, read_object
from catalog.errors import (
    BlobDigestMismatch,
    BlobTooLarge,
    BundleError,
    InvalidVersion,
    RegistryAuthError,
    RegistryNotFound,
)
from catalog.manifests import KINDS, MAX_FILE_BYTES, ManifestError
from catalog.metadata import parse_resource
from catalog.models import Catalog, Resource, ResourceVersion, utcnow
from catalog.publish import bundle_target
from catalog.registry import Manifest, Registry
from catalog.tree import CatalogTree, VersionEntry
from catalog.versions import Version

# A bundle that cannot be read is one problem, not a failed sync.
_BUNDLE_PROBLEMS = (BundleError, BlobDigestMismatch, BlobTooLarge, ManifestError, RegistryNotFound)
_MAX_CHILD_HOPS = 1
# Tags are read over a few connections at once: a registry answers many small requests faster in parallel.
PARALLEL_REQUESTS = 4  # an index points at image manifests, never at another index


@dataclass(frozen=True)
class _Known:
    """What the index already holds for one bundle object."""

    tag_ref: str
    digest: str
    entry: VersionEntry


class KnownEntries:
    """The catalog's indexed bundle objects, rebuilt from the index without touching the registry.

    The index is read when they are first iterated: `read_registry` does that while the registry answers its
    tag listings, so the two overlap.
    """

    def __init__(self, session: Session, catalog: Catalog) -> None:
        self.session, self.catalog = session, catalog
        self._known: list[_Known] | None = None

    def __iter__(self) -> Iterator[_Known]:
        if self._known is None:
            self._known = self._read()
        return iter(self._known)

    def _read(self) -> list[_Known]:
        # Columns, not ORM objects: nothing here is written back, and 200 rows load in a third of the time.
        v = ResourceVersion
        rows = self.session.execute(
            select(Resource.kind, Resource.name, v.version, v.path, v.manifest, v.digest, v.modified_at, v.bundle_ref)
            .join(Resource)
            .where(Resource.catalog_id == self.catalog.id, v.removed_at.is_(None), v.bundle_ref.is_not(None))
        ).all()
        known = []
        for kind, name, version, path, manifest, digest, modified_at, bundle_ref in rows:
            if not bundle_ref:
                continue
            entry = VersionEntry(
                kind=kind,
                name=name,
                version=version,
                path=path,
                manifest=manifest,
                digest=digest,
                meta=parse_resource(manifest, kind=kind),
                readme=None,
                samples={},
                modified_at=modified_at,
                bundle_ref=bundle_ref,
            )
            known.append(_Known(tag_ref=path, digest=bundle_ref.rsplit("@", 1)[1], entry=entry))
        return known


def known_entries(session: Session, catalog: Catalog) -> KnownEntries:
    """The catalog's indexed bundle objects (read from the index when first iterated)."""
    return KnownEntries(session, catalog)


def read_registry(
    catalog: Catalog,
    registry: Registry,
    known: Iterable[_Known],
    progress: Callable[[str], None] = lambda _: None,
    *,
    recheck: Callable[[str], bool] = lambda ref: not is_release_tag(ref),
) -> CatalogTree:
    """Walk the registry under the catalog's prefix: repositories, tags, and the bundles they point at.

    A tag already indexed is asked for again only when recheck(ref) says so; by default, unless it names a release.
    """
    host, prefix = bundle_target(catalog.source)
    tree = CatalogTree()
    repositories = sorted([f"{host}/{r}" for r in catalog.repositories] or _discover(registry, host, prefix))
    if not repositories:
        tree.report("error", f"{host}/{prefix}", "no repositories under this prefix")
    pool = ThreadPoolExecutor(max_workers=PARALLEL_REQUESTS)
    try:
        listings = pool.map(lambda repo: sorted(registry.list_tags(repo)), repositories)
        # The index is read while the registry answers the listings.
        by_digest: dict[str, list[VersionEntry]] = {}
        by_ref: dict[str, list[VersionEntry]] = {}
        for k in known:
            by_digest.setdefault(k.digest, []).append(k.entry)
            by_ref.setdefault(k.tag_ref, []).append(k.entry)
        work, reused = [], []
        for number, (repo, tags) in enumerate(zip(repositories, listings, strict=True), 1):
            progress(f"[{number}/{len(repositories)}] {repo}: {len(tags)} tags")
            for tag in tags:
                ref = f"{repo}:{tag}"
                if ref in by_ref and not recheck(ref):
                    reused.append(_TagResult(ref, by_ref[ref], [], fetched=False))
                else:
                    work.append((repo, tag))
        progress(f"{len(reused)} release tags already indexed; reading {len(work)} tags")
        read = pool.map(lambda item: _read_tag(registry, item[0], item[1], by_digest, by_ref), work)
        results = sorted([*reused, *(r for r in read if r is not None)], key=lambda r: r.ref.rsplit(":", 1))
    finally:
        pool.shutdown(cancel_futures=True)  # after a registry-wide failure, stop what has not started

    seen: set[tuple[str, str, str]] = set()
    for result in results:
        for level, message in result.problems:
            tree.report(level, result.ref, message)
        for entry in result.entries:
            key = (entry.kind, entry.name, entry.meta.version.full)
            if key in seen:
                tree.report(
                    "info", result.ref, f"{entry.kind} {entry.name} {entry.version} is indexed from another tag"
                )
                continue
            seen.add(key)
            tree.versions.append(entry)
            for finding in entry.meta.findings:
                tree.report(finding.level, result.ref, f"{entry.name}: {finding.message}")
    fetched = sum(1 for r in results if r.fetched)
    progress(f"read {fetched} new bundles, {len(tree.versions)} versions")
    return tree


@dataclass
class _TagResult:
    ref: str
    entries: list[VersionEntry]
    problems: list[tuple[str, str]]
    fetched: bool


def _read_tag(
    registry: Registry,
    repo: str,
    tag: str,
    by_digest: dict[str, list[VersionEntry]],
    by_ref: dict[str, list[VersionEntry]],
) -> _TagResult | None:
    """What one tag holds: from the index when its manifest digest is known, else read from the registry."""
    ref = f"{repo}:{tag}"
    # One GET per tag: a manifest is small, and a HEAD first would only add a round trip for new ones.
    try:
        manifest = registry.get_manifest(ref)
    except RegistryNotFound:
        return None  # the tag went away while we listed
    if manifest.digest in by_digest:
        return _TagResult(ref, [_retagged(e, ref) for e in by_digest[manifest.digest]], [], fetched=False)
    problems: list[tuple[str, str]] = []
    try:
        return _TagResult(ref, _read_bundle(registry, repo, ref, manifest, problems), problems, fetched=True)
    except _BUNDLE_PROBLEMS as exc:
        kept = by_ref.get(ref, [])
        note = "; the previously indexed bundle is kept" if kept else ""
        return _TagResult(ref, kept, [("error", f"{exc}{note}")], fetched=False)


def _discover(registry: Registry, host: str, prefix: str) -> list[str]:
    try:
        listed = registry.list_repositories()
    except (RegistryAuthError, RegistryNotFound) as exc:
        raise type(exc)(
            f"{exc}; if this registry does not list its repositories, name them with "
            "`taskhub registry add NAME HOST/PREFIX --repository REPO`"
        ) from None
    return [repo for repo in listed if repo.startswith(f"{host}/{prefix}/")]


def _retagged(entry: VersionEntry, ref: str) -> VersionEntry:
    if entry.path == ref:
        return entry
    return VersionEntry(**{**entry.__dict__, "path": ref})


def bundle_manifest(registry: Registry, repo: str, ref: str, manifest: Manifest) -> tuple[Manifest, dict[str, Any]]:
    """The image manifest a tag's manifest stands for (an index's linux/amd64 image), checked as a Tekton bundle."""
    parsed = parse_manifest(manifest.raw, manifest.media_type)
    for _ in range(_MAX_CHILD_HOPS):
        if not isinstance(parsed, Descriptor):
            break
        manifest = registry.get_manifest(f"{repo}@{parsed.digest}")
        parsed = parse_manifest(manifest.raw, manifest.media_type)
    if isinstance(parsed, Descriptor):
        raise BundleError("the index points at another index")
    check_bundle_manifest(parsed, ref)
    return manifest, parsed


def _read_bundle(
    registry: Registry, repo: str, ref: str, manifest: Manifest, problems: list[tuple[str, str]]
) -> list[VersionEntry]:
    manifest, parsed = bundle_manifest(registry, repo, ref, manifest)
    pinned = f"{repo}@{manifest.digest}"
    now = utcnow()
    entries = []
    for layer in bundle_entries(parsed):
        content = read_layer(registry.get_blob(repo, layer.digest, layer.size, MAX_FILE_BYTES), MAX_FILE_BYTES)
        obj = read_object(content, layer)
        kind = KINDS.get(obj.kind.lower())
        if kind is None:
            problems.append(("warning", f"{obj.kind} {obj.name} is not a Task, Pipeline or StepAction; skipped"))
            continue
        meta = parse_resource(obj.text, kind=kind)
        _check_tag(ref, meta.version)
        entries.append(
            VersionEntry(
                kind=kind,
                name=meta.name,
                version=meta.version.text,
                path=ref,
                manifest=obj.text,
                digest=hashlib.sha256(obj.text.encode()).hexdigest(),
                meta=meta,
                readme=None,
                samples={},
                modified_at=now,
                bundle_ref=pinned,
            )
        )
    return entries


def is_release_tag(ref: str) -> bool:
    """Whether a tag reads as a version, which by convention is never moved to other content."""
    try:
        Version.parse(ref.rsplit(":", 1)[1])
    except InvalidVersion:
        return False
    return True


def _check_tag(ref: str, label: Version) -> None:
    """A tag that reads as a version must name the objects' version; other tags (latest, main) may point anywhere."""
    tag = ref.rsplit(":", 1)[1]
    try:
        tagged = Version.parse(tag)
    except InvalidVersion:
        return
    if tagged != label:
        raise ManifestError(f"version label {label.text!r} does not match the tag {tag!r}")
