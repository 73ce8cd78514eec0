"""Publishing a catalog's versions to an OCI registry as Tekton bundles, one bundle per version.

Each version goes to ``<prefix>/<kind>/<name>:<version>``. The bundle is built deterministically, so when the
registry already answers the tag with the same digest nothing is uploaded; otherwise only the blobs the
registry lacks are. A few bundles go up at once, each over a connection of its own. The pinned reference is
recorded on the version in the caller's transaction.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from catalog.bundles import DOCKER_MANIFEST, build_bundle
from catalog.errors import InvalidReference, RegistryAuthError, RegistryUnreachable, TaskhubError
from catalog.models import Catalog, IndexState, Resource, ResourceVersion
from catalog.references import parse_reference
from catalog.registry import Registry
from catalog.versions import Version

PARALLEL_UPLOADS = 4  # bundles pushed at once


@dataclass
class PublishSummary:
    """What a publish did, for the person who ran it."""

    catalog: str
    target: str
    pushed: int = 0
    unchanged: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)
    stopped: str | None = None  # why the publish stopped early, when it did

    def lines(self) -> list[str]:
        lines = [
            f"{self.catalog} -> {self.target}: {self.pushed} pushed, {self.unchanged} already there, "
            f"{len(self.failed)} failed"
        ]
        lines += [f"  failed {ref}: {reason}" for ref, reason in self.failed]
        if self.stopped:
            lines.append(f"  stopped early: {self.stopped}; run the same command again to continue")
        return lines


def _push_version(registry: Registry, repo: str, ref: str, manifest: str) -> tuple[str, str]:
    """Push one version's bundle unless the tag already holds it: ("pushed" or "already there", its digest)."""
    bundle = build_bundle([manifest])
    if registry.head_manifest(ref) == bundle.digest:
        return "already there", bundle.digest
    # The manifest changed, so its blobs are almost always new: upload without asking first.
    for blob in bundle.blobs().values():
        registry.push_blob(repo, blob, check=False)
    registry.push_manifest(ref, bundle.manifest, DOCKER_MANIFEST)
    return "pushed", bundle.digest


def bundle_target(text: str) -> tuple[str, str]:
    """Split ``host[:port]/prefix`` into (registry host, repository prefix); InvalidReference if malformed."""
    ref = parse_reference(text.rstrip("/"))
    if ref.tag or ref.digest:
        raise InvalidReference(f"invalid registry target {text!r}: expected host[:port]/prefix, without a tag")
    return ref.registry, ref.repository


def publish_catalog(
    session: Session,
    catalog: Catalog,
    registry: Registry,
    target: str,
    progress: Callable[[str], None] = lambda _: None,
) -> PublishSummary:
    """Push every live version of catalog under target (``host[:port]/prefix``) and record each digest."""
    host, prefix = bundle_target(target)
    summary = PublishSummary(catalog=catalog.name, target=f"{host}/{prefix}")
    rows = session.scalars(
        select(ResourceVersion)
        .join(Resource)
        .where(Resource.catalog_id == catalog.id, ResourceVersion.removed_at.is_(None))
        .order_by(Resource.kind, Resource.name)
    ).all()
    rows = sorted(rows, key=lambda r: (r.resource.kind, r.resource.name, Version.parse(r.version).sort_key))
    repos = [f"{host}/{prefix}/{row.resource.kind.lower()}/{row.resource.name}" for row in rows]
    recorded = 0
    # Bundles go up over a few connections at once (a registry stores uploads faster in parallel); the index
    # is only touched here, in the caller's thread, in the catalog's order.
    pool = ThreadPoolExecutor(max_workers=PARALLEL_UPLOADS)
    try:
        pushes = [
            pool.submit(_push_version, registry, repo, f"{repo}:{row.version}", row.manifest)
            for repo, row in zip(repos, rows, strict=True)
        ]
        for number, (repo, row, push) in enumerate(zip(repos, rows, pushes, strict=True), 1):
            ref = f"{repo}:{row.version}"
            try:
                state, digest = push.result()
            except (RegistryUnreachable, RegistryAuthError) as exc:
                summary.stopped = str(exc)
                break
            except TaskhubError as exc:
                summary.failed.append((ref, str(exc)))
                progress(f"[{number}/{len(rows)}] {ref}: failed: {exc}")
                continue
            if state == "pushed":
                summary.pushed += 1
            else:
                summary.unchanged += 1
            progress(f"[{number}/{len(rows)}] {ref}: {state}")
            pinned = f"{repo}@{digest}"
            if row.bundle_ref != pinned:
                row.bundle_ref = pinned
                recorded += 1
    finally:
        pool.shutdown(cancel_futures=True)  # after a registry-wide failure, start no more uploads
    if recorded:
        session.execute(update(IndexState).values(generation=IndexState.generation + 1))
    return summary
