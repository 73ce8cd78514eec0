"""The Artifact Hub API client (artifacthub.io, and taskhub's own /api/v1): a catalog is a repository, a resource
a package, and versions are full SemVer (``0.9.0``), found from ``0.9`` too."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import requests

from runner.remote_hub.client import (
    ARTIFACT,
    KINDS,
    RemoteNotFound,
    RemoteResource,
    SearchFilter,
    SearchHit,
    _HttpRemoteHub,
    _kind,
    choose_version,
    compatible,
    sorted_versions,
)

# Artifact Hub's repository kinds (internal/hub/repo.go).
_ARTIFACT_KIND_IDS = {"Task": 7, "Pipeline": 11, "StepAction": 23}


class ArtifactHubClient(_HttpRemoteHub):
    """The Artifact Hub API (artifacthub.io, and taskhub's own /api/v1); a catalog is a repository."""

    hub_type = ARTIFACT
    api_name = "an Artifact Hub API response"

    def __init__(self, base_url: str, session: requests.Session | None = None) -> None:
        super().__init__(base_url, session)
        self._packages: dict[str, dict[str, Any]] = {}

    def _package(self, catalog: str, kind: str, name: str, version: str | None) -> dict[str, Any]:
        kind_path = _kind(kind)
        path = f"/api/v1/packages/tekton-{kind_path}/{quote(catalog)}/{quote(name)}"
        if version is not None:
            path += f"/{quote(version)}"
        if path not in self._packages:
            what = f"{KINDS[kind_path]} {name}{f'({version})' if version else ''} from {catalog} catalog"
            body = self._json(path, what=what)
            if not isinstance(body, dict):
                raise self._garbage(path, "not an object")
            self._dig(body, path, "data")
            self._dig(body, path, "version", kind=str)
            self._packages[path] = body
        return self._packages[path]

    def search(self, query: SearchFilter) -> tuple[list[SearchHit], Any]:
        """GET /api/v1/packages/search?kind=…&ts_query_web=…; tags, categories and platforms filter here."""
        kinds = [KINDS[_kind(k)] for k in query.kinds] or list(_ARTIFACT_KIND_IDS)
        params: dict[str, Any] = {"kind": [_ARTIFACT_KIND_IDS[k] for k in kinds], "limit": min(query.limit or 60, 60)}
        if query.text:
            params["ts_query_web"] = query.text
        path = "/api/v1/packages/search"
        body = self._json(path, params, what="package")
        hits = []
        for item in self._dig(body, path, "packages", kind=list):
            if not isinstance(item, dict):
                raise self._garbage(path, "packages holds a non-object")
            repository = item.get("repository") or {}
            hit = SearchHit(
                name=str(item.get("name", "")),
                kind=_kind_of_repository(repository.get("kind")),
                catalog=str(repository.get("name", "")),
                version=str(item.get("version", "")),
                display_name=str(item.get("display_name") or ""),
                description=str(item.get("description") or ""),
            )
            if query.match == "exact" and query.text and hit.name != query.text:
                continue
            hits.append(hit)
        if query.tags or query.categories or query.platforms:
            hits = [h for h in hits if self._matches(h, query)]
        return hits, body

    def _matches(self, hit: SearchHit, query: SearchFilter) -> bool:
        # The search answer has no keywords or platforms; the package itself has them.
        package = self._package(hit.catalog, hit.kind, hit.name, None)
        keywords = {str(k).lower() for k in package.get("keywords") or []}
        platforms = {str(p) for p in (package.get("data") or {}).get("platforms") or []}
        return (
            (not query.tags or any(t.lower() in keywords for t in query.tags))
            and (not query.platforms or any(p in platforms for p in query.platforms))
            and not query.categories  # Artifact Hub has no Tekton categories
        )

    def resource(self, catalog: str, kind: str, name: str, version: str | None = None) -> RemoteResource:
        """GET /api/v1/packages/tekton-{kind}/{repo}/{name}, then …/{version} for another version."""
        kind_path = _kind(kind)
        path = f"/api/v1/packages/tekton-{kind_path}/{catalog}/{name}"
        package = self._package(catalog, kind, name, None)
        listed = [str(v.get("version")) for v in package.get("available_versions") or [] if isinstance(v, dict)]
        versions = sorted_versions([*listed, str(package["version"])])
        if not versions:
            raise self._garbage(path, "no versions")
        target = choose_version(versions, version, (KINDS[kind_path], name, catalog), self.base_url)
        if str(package["version"]) != target:
            package = self._package(catalog, kind, name, target)
        data = package["data"]
        keywords = [str(k) for k in package.get("keywords") or []]
        return RemoteResource(
            catalog=catalog,
            kind=KINDS[kind_path],
            name=str(package.get("name") or name),
            version=target,
            versions=versions,
            min_pipelines_version=str(data.get("pipelines.minVersion") or ""),
            display_name=str(package.get("display_name") or ""),
            description=str(package.get("description") or ""),
            deprecated=bool(package.get("deprecated", False)),
            tags=[k for k in keywords if k not in ("tekton", kind_path)],
            platforms=[str(p) for p in data.get("platforms") or []],
            organization=str((package.get("repository") or {}).get("organization_name") or ""),
        )

    def manifest(self, catalog: str, kind: str, name: str, version: str) -> str:
        """data.manifestRaw of …/{version}."""
        path = f"/api/v1/packages/tekton-{_kind(kind)}/{catalog}/{name}/{version}"
        return str(self._dig(self._package(catalog, kind, name, version), path, "data", "manifestRaw", kind=str))

    def latest_compatible(self, catalog: str, kind: str, name: str, pipelines_version: str) -> str | None:
        """The highest version whose data["pipelines.minVersion"] allows `pipelines_version` (newest first)."""
        try:
            info = self.resource(catalog, kind, name)
        except RemoteNotFound:
            return None
        for version in reversed(info.versions):
            found = info if version == info.version else self.resource(catalog, kind, name, version)
            if compatible(found.min_pipelines_version, pipelines_version):
                return version
        return None


def _kind_of_repository(kind_id: Any) -> str:
    return next((k for k, i in _ARTIFACT_KIND_IDS.items() if i == kind_id), "Task")
