"""Tekton Hub v1 JSON shapes (the goa views of tektoncd/hub), built from the index."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit, urlunsplit

from catalog.models import Catalog
from catalog.views import CatalogInfo, ResourceView, VersionInfo

Json = dict[str, Any]


def rfc3339(row: VersionInfo) -> str:
    # Not strftime: glibc's looks at /etc/localtime on every call, the costliest line of a resource's answer
    # in a server (py-spy, taskhub serve).
    at = row.modified_at
    return f"{at.year:04d}-{at.month:02d}-{at.day:02d}T{at.hour:02d}:{at.minute:02d}:{at.second:02d}Z"


def named(rows: list[Any]) -> list[Json]:
    return [{"id": row.id, "name": row.name} for row in rows]


def public_source(catalog: Catalog | CatalogInfo) -> str:
    """The catalog's URL without credentials; local directories are not disclosed."""
    if catalog.provider == "local":
        return ""
    parts = urlsplit(catalog.source)
    if parts.scheme and "@" in parts.netloc:
        parts = parts._replace(netloc=parts.netloc.rsplit("@", 1)[1])
    return urlunsplit(parts) if parts.scheme else catalog.source


def catalog_min(catalog: Catalog | CatalogInfo) -> Json:
    return {"id": catalog.id, "name": catalog.name, "type": catalog.type}


def catalog_full(catalog: Catalog | CatalogInfo) -> Json:
    return {**catalog_min(catalog), "url": public_source(catalog), "provider": catalog.provider}


class TektonShapes:
    """Builds response bodies; base_url is the hub's own address, for links to local catalogs."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url.rstrip("/")

    @staticmethod
    def path(view_or_row: ResourceView | VersionInfo, version: str | None = None) -> str:
        """``<catalog>/<kind>/<name>[/<version>]`` with the kind in lower case: the API's and the web UI's paths."""
        resource = view_or_row.resource
        parts = [resource.catalog.name, resource.kind.lower(), resource.name]
        if version is not None:
            parts.append(version)
        return "/".join(parts)

    @staticmethod
    def hub_url_path(view_or_row: ResourceView | VersionInfo, version: str | None = None) -> str:
        """``hubURLPath``: upstream writes the kind as stored, ``tekton/Task/git-clone[/0.10]``
        (tektoncd/hub: api/v1/service/resource/resource.go, initResource)."""
        resource = view_or_row.resource
        parts = [resource.catalog.name, resource.kind, resource.name]
        if version is not None:
            parts.append(version)
        return "/".join(parts)

    def urls(self, row: VersionInfo) -> tuple[str, str]:
        """(webURL, rawURL): the git host's when the catalog has one, else this hub's own pages."""
        hub_path = self.path(row, row.version)
        web = row.web_url or f"{self.base_url}/{hub_path}"
        raw = row.raw_url or f"{self.base_url}/v1/resource/{hub_path}/raw"
        return web, raw

    def version_min(self, row: VersionInfo) -> Json:
        web, raw = self.urls(row)
        return {
            "id": row.id,
            "version": row.version,
            "rawURL": raw,
            "webURL": web,
            "hubURLPath": self.hub_url_path(row, row.version),
            "hubRawURLPath": f"resource/{self.path(row, row.version)}/raw",
            "platforms": named(row.platforms),
        }

    def version_without_resource(self, row: VersionInfo) -> Json:
        out: Json = {"id": row.id, "version": row.version, "displayName": row.display_name or ""}
        if row.deprecated:
            out["deprecated"] = True
        web, raw = self.urls(row)
        out.update(
            description=row.description,
            minPipelinesVersion=row.min_pipelines_version or "",
            rawURL=raw,
            webURL=web,
            hubURLPath=self.hub_url_path(row, row.version),
            # Upstream swaps name and version here (a known defect); this is the path that works.
            hubRawURLPath=f"resource/{self.path(row, row.version)}/raw",
            updatedAt=rfc3339(row),
            platforms=named(row.platforms),
        )
        return out

    def resource(self, view: ResourceView, *, with_versions: bool = True) -> Json:
        resource = view.resource
        out: Json = {
            "id": resource.id,
            "name": resource.name,
            "catalog": catalog_min(resource.catalog),
            "categories": named(view.categories),
            "kind": resource.kind,
            "hubURLPath": self.hub_url_path(view),
            "hubRawURLPath": f"resource/{self.path(view)}/raw",
            "latestVersion": self.version_without_resource(view.latest),
            "tags": named(view.tags),
            "platforms": named(view.platforms),
            "rating": 0,
        }
        if with_versions:
            out["versions"] = [{"id": v.id, "version": v.version} for v in view.versions]
        return out

    def version(self, view: ResourceView) -> Json:
        """The version the view shows, with its resource."""
        resource, row = view.resource, view.latest
        out = self.version_without_resource(row)
        out["resource"] = {
            "id": resource.id,
            "name": resource.name,
            "catalog": catalog_min(resource.catalog),
            "categories": named(view.categories),
            "kind": resource.kind,
            "hubURLPath": self.hub_url_path(row, row.version),
            "tags": named(view.tags),
            "platforms": named(view.platforms),
            "rating": 0,
        }
        return out

    def versions(self, rows: list[VersionInfo]) -> Json:
        """Every live version (in version order) and the latest."""
        return {"latest": self.version_min(rows[-1]), "versions": [self.version_min(v) for v in rows]}
