"""Artifact Hub JSON shapes (get_package / search_packages / search_repositories of artifacthub/hub).

A catalog is an Artifact Hub repository (one per kind it holds, as Artifact Hub's repositories have one kind),
a resource is a package, and a resource version is a package version, always written as full SemVer.
"""

from __future__ import annotations

import hashlib
import uuid
from collections import Counter
from collections.abc import Iterable
from datetime import UTC, date, datetime
from typing import Any
from urllib.parse import urlsplit

from catalog.manifests import ManifestError, load_documents
from catalog.models import Catalog
from catalog.versions import Version
from catalog.views import CatalogInfo, ResourceView, VersionBrief, VersionInfo
from hub.api.tekton_json import TektonShapes, public_source

Json = dict[str, Any]

# Artifact Hub's repository kinds (internal/hub/repo.go) and their names in URLs and in its repository_kind table.
REPOSITORY_KINDS = {"Task": 7, "Pipeline": 11, "StepAction": 23}
PATH_KINDS = {"tekton-task": "Task", "tekton-pipeline": "Pipeline", "tekton-stepaction": "StepAction"}
KIND_NAMES = {"Task": "Tekton tasks", "Pipeline": "Tekton pipelines", "StepAction": "Tekton stepactions"}
_PATH_NAMES = {kind: path for path, kind in PATH_KINDS.items()}
# Ids are UUIDs upstream; ours are derived from the index so they stay the same between requests.
_IDS = uuid.UUID("6f1d3c1e-6b8a-4f4e-9f0e-7a1c2d3b4e5f")


def full_version(text: str) -> str:
    """``0.9`` as ``0.9.0``: Artifact Hub writes every version as full SemVer."""
    return Version.parse(text).full


def is_prerelease(row: VersionInfo | VersionBrief) -> bool:
    return Version.parse(row.version).is_prerelease


def epoch(row: VersionInfo | VersionBrief) -> int:
    return int(row.modified_at.timestamp())


def organization(catalog: Catalog | CatalogInfo) -> str | None:
    """The catalog's org when one was given, else the owner in its git URL (``tektoncd`` for
    github.com/tektoncd/catalog); None for others."""
    if catalog.org:
        return catalog.org
    if catalog.provider not in ("github", "gitlab", "bitbucket"):
        return None
    source = public_source(catalog)
    if "://" not in source:  # scp-style git@host:owner/repo
        source = "ssh://" + source.replace(":", "/", 1)
    owner = urlsplit(source).path.strip("/").split("/")[0]
    return owner or None


def pipeline_tasks(manifest: str) -> list[Json]:
    """data.tasks of a Pipeline: each task's name and, when it has one, its runAfter list."""
    try:
        documents = load_documents(manifest)
    except ManifestError:  # indexed manifests were checked; a failure here only loses this optional field
        return []
    spec = documents[0].get("spec") if documents and isinstance(documents[0], dict) else None
    tasks = spec.get("tasks") if isinstance(spec, dict) else None
    out: list[Json] = []
    for task in tasks if isinstance(tasks, list) else []:
        if isinstance(task, dict) and isinstance(task.get("name"), str):
            entry: Json = {"name": task["name"]}
            if isinstance(task.get("runAfter"), list) and task["runAfter"]:
                entry["run_after"] = [str(name) for name in task["runAfter"]]
            out.append(entry)
    return out


class ArtifactHubShapes:
    """Builds response bodies; base_url is the hub's own address, for links to catalogs without a web home."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url.rstrip("/")
        self.tekton = TektonShapes(base_url)

    def repository(self, catalog: Catalog | CatalogInfo, kind: str) -> Json:
        """The repository summary embedded in packages (get_repository_summary)."""
        out: Json = {
            "repository_id": str(uuid.uuid5(_IDS, f"catalog/{catalog.id}/{kind}")),
            "name": catalog.name,
            "display_name": catalog.name,
            "url": public_source(catalog) or f"{self.base_url}/catalogs/{catalog.name}",
            "private": False,
            "kind": REPOSITORY_KINDS[kind],
            "verified_publisher": False,
            "official": catalog.type == "official",
            "scanner_disabled": True,
        }
        org = organization(catalog)
        if org is not None:
            out["organization_name"] = org
        return out

    def repository_listing(self, catalog: Catalog, kind: str) -> Json:
        """A repository as /api/v1/repositories/search lists it."""
        out = self.repository(catalog, kind)
        out["data"] = {"versioning": "directory"}
        if catalog.synced_at is not None:
            out["last_tracking_ts"] = int(catalog.synced_at.timestamp())
        return out

    def package_summary(self, view: ResourceView) -> Json:
        """A package as search results list it: the version the view shows (its default), without the manifest."""
        resource, row = view.resource, view.latest
        out: Json = {
            "package_id": str(uuid.uuid5(_IDS, f"resource/{resource.id}")),
            "name": resource.name,
            "normalized_name": resource.name,
            "stars": 0,
        }
        if row.display_name:
            out["display_name"] = row.display_name
        out.update(
            description=row.description,
            version=full_version(row.version),
            deprecated=row.deprecated,
            ts=epoch(row),
            repository=self.repository(resource.catalog, resource.kind),
        )
        return out

    def package(self, view: ResourceView) -> Json:
        """The package version the view shows (with its content): data.manifestRaw above all, what Tekton clients
        read."""
        resource, row = view.resource, view.latest
        web_url, raw_url = self.tekton.urls(row)
        data: Json = {
            "pipelines.minVersion": row.min_pipelines_version or "",
            "manifestRaw": row.manifest,
            "platforms": [p.name for p in row.platforms],
        }
        if resource.kind == "Pipeline":
            data["tasks"] = pipeline_tasks(row.manifest)
        if row.samples:
            data["examples"] = dict(row.samples)
        out: Json = {
            "package_id": str(uuid.uuid5(_IDS, f"resource/{resource.id}")),
            "name": resource.name,
            "normalized_name": resource.name,
            "is_operator": False,
        }
        if row.display_name:
            out["display_name"] = row.display_name
        out.update(
            description=row.description,
            keywords=["tekton", resource.kind.lower(), *(t.name for t in row.tags)],
        )
        if row.readme is not None:
            out["readme"] = row.readme
        out.update(
            links=[{"name": "source", "url": web_url}],
            data=data,
            version=full_version(row.version),
            available_versions=self.available_versions(view.versions),
            # As Artifact Hub's tracker does: the sha256 of the manifest as served, so clients can check it.
            digest=hashlib.sha256(row.manifest.encode()).hexdigest(),
            deprecated=row.deprecated,
            contains_security_updates=False,
            prerelease=is_prerelease(row),
            signed=False,
            content_url=raw_url,
            has_values_schema=False,
            has_changelog=False,
            ts=epoch(row),
            repository=self.repository(resource.catalog, resource.kind),
            stats={"subscriptions": 0, "webhooks": 0},
        )
        return out

    @staticmethod
    def available_versions(rows: Iterable[VersionBrief]) -> list[Json]:
        """Every live version, newest first, with the prerelease flag Tekton's hub resolver skips on."""
        return [
            {
                "version": full_version(row.version),
                "contains_security_updates": False,
                "prerelease": is_prerelease(row),
                "ts": epoch(row),
            }
            for row in reversed(list(rows))
        ]

    @staticmethod
    def facets(counts: list[tuple[Catalog, str, int]]) -> list[Json]:
        """Organization, Kind and Repository counts of the matches (how many per catalog and kind), before those
        filters, as upstream."""
        orgs: Counter[str] = Counter()
        kinds: Counter[str] = Counter()
        repos: Counter[str] = Counter()
        for catalog, kind, total in counts:
            if (org := organization(catalog)) is not None:
                orgs[org] += total
            kinds[kind] += total
            repos[catalog.name] += total

        def options(counter: Counter[str], ident: Any, name: Any) -> list[Json]:
            ranked = sorted(counter.items(), key=lambda item: (-item[1], item[0]))
            return [{"id": ident(key), "name": name(key), "total": total} for key, total in ranked]

        return [
            {"title": "Organization", "filter_key": "org", "options": options(orgs, str, str)},
            {
                "title": "Kind",
                "filter_key": "kind",
                "options": options(kinds, REPOSITORY_KINDS.__getitem__, KIND_NAMES.__getitem__),
            },
            {"title": "Repository", "filter_key": "repo", "options": options(repos, str, str.title)},
        ]


def _epoch_ms(day: date) -> int:
    return int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp()) * 1000


def _running_total(daily: list[tuple[date, int]]) -> list[list[int]]:
    total, out = 0, []
    for day, count in daily:
        total += count
        out.append([_epoch_ms(day), total])
    return out


def _monthly(daily: list[tuple[date, int]]) -> list[list[int]]:
    months: Counter[date] = Counter()
    for day, count in daily:
        months[day.replace(day=1)] += count
    return [[_epoch_ms(month), months[month]] for month in sorted(months)]


def stats(daily: dict[str, list[tuple[date, int]]], repositories: list[tuple[Catalog, str]], now: datetime) -> Json:
    """Artifact Hub's GET /api/v1/stats (artifacthub/hub: database/migrations/functions/stats/get_stats.sql):
    totals and their growth by day, with the keys it strips when null (no views, no users) left out. Dates are
    when taskhub first indexed each package (resource) and snapshot (version)."""

    def growth(rows: list[tuple[date, int]], *, monthly: bool) -> Json:
        out: Json = {"total": sum(count for _, count in rows)}
        if rows:
            out["running_total"] = _running_total(rows)
            if monthly:
                out["created_monthly"] = _monthly(rows)
        return out

    repository_days: Counter[date] = Counter(catalog.created_at.date() for catalog, _ in repositories)
    org_first_seen: dict[str, date] = {}
    for catalog, _ in repositories:
        org = organization(catalog)
        if org is not None:
            org_first_seen[org] = min(org_first_seen.get(org, catalog.created_at.date()), catalog.created_at.date())
    org_days: Counter[date] = Counter(org_first_seen.values())
    return {
        "generated_at": int(now.timestamp() * 1000),
        "packages": growth(daily["packages"], monthly=True),
        "snapshots": growth(daily["snapshots"], monthly=True),
        "repositories": growth(sorted(repository_days.items()), monthly=False),
        "organizations": growth(sorted(org_days.items()), monthly=False),
        "users": {"total": 0},
    }


def path_kind_of(kind: str) -> str:
    """The URL segment of a canonical kind: ``Task`` is ``tekton-task``."""
    return _PATH_NAMES[kind]
