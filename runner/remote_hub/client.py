"""Clients of the two hub APIs that `tkn hub` speaks: the Tekton Hub v1 API and the Artifact Hub API.

Both answer the same questions (search, a resource with its versions, a version's manifest, the newest version
compatible with a Pipelines release), so every `taskhub hub` command works against either. Versions are always
compared with catalog.versions.Version, never as strings, and a version asked for as ``0.3`` finds ``0.3.0``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import quote

import requests

from catalog.errors import InvalidVersion, NotFound, TaskhubError
from catalog.versions import Version

TEKTON, ARTIFACT = "tekton", "artifact"
API_TYPES = (TEKTON, ARTIFACT)
KINDS = {"task": "Task", "pipeline": "Pipeline", "stepaction": "StepAction"}
TIMEOUT_SECONDS = 15


class RemoteHubError(TaskhubError):
    """A hub could not answer: unreachable, an error status, or a body that is not what its API returns."""


class RemoteNotFound(RemoteHubError, NotFound):
    """The hub does not have the resource or version asked for."""


@dataclass(frozen=True)
class RemoteResource:
    """One version of a catalog resource as a hub describes it, with the list of all its versions."""

    catalog: str
    kind: str  # Task, Pipeline, StepAction
    name: str
    version: str
    versions: list[str]  # every version the hub lists, ascending by version order
    min_pipelines_version: str = ""
    display_name: str = ""
    description: str = ""
    deprecated: bool = False
    tags: list[str] = field(default_factory=list)
    categories: list[str] = field(default_factory=list)
    platforms: list[str] = field(default_factory=list)
    organization: str = ""  # Artifact Hub's repository.organization_name (the support-tier label needs it)

    @property
    def latest(self) -> str:
        """The highest version the hub lists."""
        return self.versions[-1] if self.versions else self.version


@dataclass(frozen=True)
class SearchHit:
    """A search result: a resource and its latest version."""

    name: str
    kind: str
    catalog: str
    version: str
    display_name: str = ""
    description: str = ""
    platforms: list[str] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)
    categories: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class SearchFilter:
    """What `hub search` filters on; empty lists mean no filter."""

    text: str = ""
    kinds: Sequence[str] = ()
    tags: Sequence[str] = ()
    categories: Sequence[str] = ()
    platforms: Sequence[str] = ()
    limit: int = 0
    match: str = "contains"


class RemoteHub(Protocol):
    """A hub API, Tekton Hub v1 or Artifact Hub.

    `resource` returns the version asked for (the latest when `version` is None) with all versions listed;
    `manifest` returns a version's YAML text as the catalog has it; `latest_compatible` returns the highest
    version whose minimum Pipelines version is at most `pipelines_version` (None when none is); `search` returns
    the hits and the body as the hub sent it (for `-o json`). Missing things raise RemoteNotFound, every other
    failure RemoteHubError with a one-line message naming the hub.
    """

    hub_type: str
    base_url: str

    def search(self, query: SearchFilter) -> tuple[list[SearchHit], Any]: ...

    def resource(self, catalog: str, kind: str, name: str, version: str | None = None) -> RemoteResource: ...

    def manifest(self, catalog: str, kind: str, name: str, version: str) -> str: ...

    def latest_compatible(self, catalog: str, kind: str, name: str, pipelines_version: str) -> str | None: ...


def make_remote_hub(
    hub_type: str, base_url: str, session: requests.Session | None = None, *, token: str | None = None
) -> RemoteHub:
    """The client for `hub_type` ("tekton" or "artifact") at `base_url`, sending `token` if one is given."""
    if token:
        session = session or requests.Session()
        session.headers["Authorization"] = f"Bearer {token}"
    if hub_type == TEKTON:
        return TektonHubClient(base_url, session)
    if hub_type == ARTIFACT:
        from runner.remote_hub.artifact_hub import ArtifactHubClient  # it builds on this module

        return ArtifactHubClient(base_url, session)
    raise RemoteHubError(f"unknown hub type {hub_type!r}: expected one of {', '.join(API_TYPES)}")


def sorted_versions(texts: list[str]) -> list[str]:
    """Version strings ascending by version order; duplicates and strings that are not versions are dropped."""
    good = []
    for text in dict.fromkeys(texts):
        try:
            good.append(Version.parse(text))
        except InvalidVersion:
            continue
    return [v.text for v in sorted(good, key=lambda v: v.sort_key)]


def pick_version(wanted: str, available: list[str]) -> str | None:
    """The hub's spelling of `wanted`: the same text, else the version equal to it (``0.3`` finds ``0.3.0``)."""
    if wanted in available:
        return wanted
    want = Version.parse(wanted)
    return next((v for v in reversed(available) if Version.parse(v) == want), None)


def choose_version(versions: list[str], wanted: str | None, what: tuple[str, str, str], base_url: str) -> str:
    """The hub's spelling of `wanted` among `versions` (ascending), the latest when None; RemoteNotFound, naming the
    versions there are, when it has no such version. `what` is (kind, name, catalog)."""
    target = versions[-1] if wanted is None else pick_version(wanted, versions)
    if target is None:
        kind, name, catalog = what
        raise RemoteNotFound(f"{kind} {name}({wanted}) from {catalog} catalog not found in the hub at {base_url}; "
                          f"it has versions {', '.join(versions)}")  # fmt: skip
    return target


def compatible(min_version: str, pipelines_version: str) -> bool:
    """Whether a resource needing `min_version` runs on `pipelines_version` (compared as versions)."""
    if not min_version or pipelines_version == "devel":
        return True
    try:
        return Version.parse(min_version) <= Version.parse(pipelines_version)
    except InvalidVersion:
        return True  # an unreadable requirement is not a reason to refuse; the install prints it


def _kind(kind: str) -> str:
    kind_path = kind.lower()
    if kind_path not in KINDS:
        raise RemoteHubError(f"unknown kind {kind!r}: expected one of {', '.join(KINDS)}")
    return kind_path


class _HttpRemoteHub:
    hub_type = ""
    api_name = ""

    def __init__(self, base_url: str, session: requests.Session | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self._session = session or requests.Session()

    def _get(self, path: str, params: dict[str, Any] | None = None, *, what: str) -> requests.Response:
        url = self.base_url + path
        try:
            response = self._session.get(url, params=params, timeout=TIMEOUT_SECONDS)
        except requests.RequestException as exc:
            reason = type(exc).__name__ if not str(exc) else str(exc).split(": ")[-1].rstrip(")'\"")
            raise RemoteHubError(f"cannot reach the hub at {self.base_url}: {reason}") from None
        if response.status_code == 404:
            raise RemoteNotFound(f"{what} not found in the hub at {self.base_url}")
        if response.status_code in (401, 403):
            raise RemoteHubError(
                f"the hub at {self.base_url} refused the request ({response.status_code} {response.reason}): "
                "pass an API token with the read scope (--token or TASKHUB_API_TOKEN)"
            )
        if response.status_code >= 500:
            raise RemoteHubError(
                f"the hub at {self.base_url} answered {response.status_code} {response.reason} for {path}: "
                "consider filing a bug report"
            )
        if response.status_code != 200:
            raise RemoteHubError(f"invalid response from the hub at {self.base_url}: {response.status_code} for {path}")
        return response

    def _json(self, path: str, params: dict[str, Any] | None = None, *, what: str) -> Any:
        response = self._get(path, params, what=what)
        try:
            return response.json()
        except ValueError:
            raise self._garbage(path, "the body is not JSON") from None

    def _garbage(self, path: str, detail: str) -> RemoteHubError:
        return RemoteHubError(
            f"the hub at {self.base_url} answered {path} with something that is not {self.api_name} "
            f"({detail}); is --api-server right and --type {self.hub_type}?"
        )

    def _dig(self, body: Any, path: str, *keys: str, kind: type | tuple[type, ...] = dict) -> Any:
        value = body
        for key in keys:
            if not isinstance(value, dict) or key not in value:
                raise self._garbage(path, f"no {'.'.join(keys)}")
            value = value[key]
        if not isinstance(value, kind):
            raise self._garbage(path, f"{'.'.join(keys)} is not a {getattr(kind, '__name__', 'value')}")
        return value


class TektonHubClient(_HttpRemoteHub):
    """The Tekton Hub v1 API (tektoncd/hub, and taskhub's own /v1)."""

    hub_type = TEKTON
    api_name = "a Tekton Hub v1 API response"

    def search(self, query: SearchFilter) -> tuple[list[SearchHit], Any]:
        """GET /v1/query; a 404 (the API's answer to no hits) is an empty list."""
        params: dict[str, Any] = {"name": query.text, "match": query.match}
        for key, values in (("kinds", query.kinds), ("tags", query.tags), ("categories", query.categories),
                            ("platforms", query.platforms)):  # fmt: skip
            if values:
                params[key] = list(values)
        if query.limit:
            params["limit"] = query.limit
        try:
            body = self._json("/v1/query", params, what="resource")
        except RemoteNotFound:
            return [], {"data": []}
        hits = []
        for item in self._dig(body, "/v1/query", "data", kind=list):
            if not isinstance(item, dict):
                raise self._garbage("/v1/query", "data holds a non-object")
            latest = item.get("latestVersion") or {}
            hits.append(
                SearchHit(
                    name=str(item.get("name", "")),
                    kind=str(item.get("kind", "")),
                    catalog=str((item.get("catalog") or {}).get("name", "")),
                    version=str(latest.get("version", "")),
                    display_name=str(latest.get("displayName", "")),
                    description=str(latest.get("description", "")),
                    platforms=_names(item.get("platforms")),
                    tags=_names(item.get("tags")),
                    categories=_names(item.get("categories")),
                )
            )
        return hits, body

    def resource(self, catalog: str, kind: str, name: str, version: str | None = None) -> RemoteResource:
        """GET /v1/resource/{catalog}/{kind}/{name}, then …/{version} for a version other than the latest."""
        kind_path = _kind(kind)
        base = f"/v1/resource/{quote(catalog)}/{kind_path}/{quote(name)}"
        what = f"{KINDS[kind_path]} {name} from {catalog} catalog"
        data = self._dig(self._json(base, what=what), base, "data")
        listed = [str(v.get("version")) for v in self._dig(data, base, "versions", kind=list) if isinstance(v, dict)]
        versions = sorted_versions(listed)
        if not versions:
            raise self._garbage(base, "no versions")
        target = choose_version(versions, version, (KINDS[kind_path], name, catalog), self.base_url)
        latest = self._dig(data, base, "latestVersion")
        if str(latest.get("version")) != target:
            path = f"{base}/{quote(target)}"
            latest = self._dig(self._json(path, what=f"{what} version {target}"), path, "data")
        return RemoteResource(
            catalog=catalog,
            kind=str(data.get("kind") or KINDS[kind_path]),
            name=str(data.get("name") or name),
            version=target,
            versions=versions,
            min_pipelines_version=str(latest.get("minPipelinesVersion") or ""),
            display_name=str(latest.get("displayName") or ""),
            description=str(latest.get("description") or ""),
            deprecated=bool(latest.get("deprecated", False)),
            tags=_names(data.get("tags")),
            categories=_names(data.get("categories")),
            platforms=_names(latest.get("platforms")),
        )

    def manifest(self, catalog: str, kind: str, name: str, version: str) -> str:
        """GET …/{version}/yaml → data.yaml."""
        kind_path = _kind(kind)
        path = f"/v1/resource/{quote(catalog)}/{kind_path}/{quote(name)}/{quote(version)}/yaml"
        body = self._json(path, what=f"{KINDS[kind_path]} {name}({version}) from {catalog} catalog")
        return str(self._dig(body, path, "data", "yaml", kind=str))

    def latest_compatible(self, catalog: str, kind: str, name: str, pipelines_version: str) -> str | None:
        """GET …/{name}?pipelinesversion=X (the hub filters); the highest version left."""
        kind_path = _kind(kind)
        path = f"/v1/resource/{quote(catalog)}/{kind_path}/{quote(name)}"
        params = {"pipelinesversion": _plain(pipelines_version)} if _plain(pipelines_version) else None
        try:
            body = self._json(path, params, what=f"{KINDS[kind_path]} {name} from {catalog} catalog")
        except RemoteNotFound:
            return None
        data = self._dig(body, path, "data")
        versions = sorted_versions([str(v.get("version")) for v in data.get("versions") or [] if isinstance(v, dict)])
        return versions[-1] if versions else None


def _names(values: Any) -> list[str]:
    return [str(v.get("name")) for v in values or [] if isinstance(v, dict) and v.get("name")]


def _plain(pipelines_version: str) -> str:
    """``v0.50.1`` as ``0.50.1`` (the form the API's pipelinesversion parameter accepts); "" if not a version."""
    try:
        v = Version.parse(pipelines_version).semver
    except InvalidVersion:
        return ""
    return f"{v.major}.{v.minor}.{v.patch}"
