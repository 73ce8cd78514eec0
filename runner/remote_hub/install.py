"""Installing catalog resources the way `tkn hub` does: install, reinstall, upgrade, downgrade, check-upgrade.

The object is created (or replaced) with the labels `tkn hub` sets, so that resources installed by either tool are
interchangeable: ``hub.tekton.dev/catalog`` for a Tekton Hub, ``artifacthub.io/catalog|org|support-tier`` for an
Artifact Hub; ``app.kubernetes.io/version`` comes from the catalog manifest itself. Unlike `tkn`, versions are
compared as versions (``0.10`` is newer than ``0.9``), every command works with both hub types, a ``v1beta1``
manifest is converted to ``v1`` when the target prefers it, and every check runs before the one write, so a refusal
leaves the target as it was.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any, Protocol

from catalog.convert import ConversionError, api_version_of, can_convert, convert
from catalog.errors import InvalidVersion, TaskhubError
from catalog.manifests import ManifestError, load_documents
from catalog.versions import Version
from runner.remote_hub.client import ARTIFACT, TEKTON, RemoteHub, RemoteNotFound, RemoteResource, compatible

CATALOG_LABEL = "hub.tekton.dev/catalog"
VERSION_LABEL = "app.kubernetes.io/version"
ARTIFACT_CATALOG_LABEL = "artifacthub.io/catalog"
ARTIFACT_ORG_LABEL = "artifacthub.io/org"
ARTIFACT_TIER_LABEL = "artifacthub.io/support-tier"
MIN_VERSION_ANNOTATION = "tekton.dev/pipelines.minVersion"
DEPRECATED_ANNOTATION = "tekton.dev/deprecated"
DEFAULT_TEKTON_CATALOG = "tekton"
INSTALLABLE_KINDS = ("Task", "Pipeline", "StepAction")


class InstallError(TaskhubError):
    """An install, upgrade or downgrade was refused; nothing was written. The message says why and what to do."""


class Target(Protocol):
    """Where resources are installed: a namespace of a cluster (runner.kube.Cluster) or of the local store
    (runner.local_store.InstalledStore).

    `served_versions(kind)` lists the tekton.dev versions `kind` can be stored in, preferred first;
    `pipelines_version()` is the Tekton Pipelines release (None when unknown); `get` returns None when absent;
    `replace` takes an object as `get` returned it, modified. `checks_pipelines_version` is False where no
    Tekton Pipelines release applies (the local store), so an unknown version is not worth a warning there.
    """

    namespace: str
    description: str
    checks_pipelines_version: bool

    def served_versions(self, kind: str) -> list[str]: ...

    def pipelines_version(self) -> str | None: ...

    def get(self, kind: str, name: str) -> dict[str, Any] | None: ...

    def list(self, kind: str) -> list[dict[str, Any]]: ...

    def create(self, obj: dict[str, Any]) -> dict[str, Any]: ...

    def replace(self, obj: dict[str, Any]) -> dict[str, Any]: ...


@dataclass
class Outcome:
    """What an install-like command did: the object as stored, a message for the user and any warnings."""

    obj: dict[str, Any] | None
    message: str
    warnings: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Upgrade:
    name: str
    catalog: str
    current: str
    latest: str


@dataclass
class UpgradeReport:
    """check-upgrade: what can be upgraded, what was skipped and why, and the Pipelines version compared against."""

    kind: str
    upgrades: list[Upgrade] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    pipelines_version: str | None = None


def labels_of(obj: dict[str, Any]) -> dict[str, str]:
    """metadata.labels (empty when there are none)."""
    return dict((obj.get("metadata") or {}).get("labels") or {})


def _v(text: str) -> Version | None:
    try:
        return Version.parse(text)
    except InvalidVersion:
        return None


class Installer:
    """Installs resources from `hub` into `target`; `force` overrides the minimum Pipelines version check."""

    def __init__(self, hub: RemoteHub, target: Target, *, force: bool = False) -> None:
        self.hub = hub
        self.target = target
        self.force = force

    # -- commands -----------------------------------------------------------------------------------------

    def install(
        self, kind: str, name: str, catalog: str, version: str | None = None, *, if_not_exists: bool = False
    ) -> Outcome:
        """Create the resource; refuse if it exists (or do nothing with `if_not_exists`)."""
        existing = self.target.get(kind, name)
        if existing is not None and if_not_exists:
            have = labels_of(existing).get(VERSION_LABEL, "unknown version")
            return Outcome(existing, f"{kind} {name}({have}) already exists in {self.target.description}; left as is")
        info, obj, warnings = self._fetch(kind, name, catalog, version)
        if existing is not None:
            raise InstallError(self._exists_message(kind, name, existing, info.version, asked=version is not None))
        obj = self._labelled(obj, catalog, info)
        stored = self.target.create(self._in_served_version(obj))
        return Outcome(stored, f"{kind} {name}({info.version}) installed in {self.target.description}", warnings)

    def reinstall(self, kind: str, name: str, catalog: str | None = None, version: str | None = None) -> Outcome:
        """Overwrite an existing resource with a catalog version (its own, unless `version` says otherwise)."""
        existing = self._existing(kind, name, "install")
        labels = labels_of(existing)
        version = version or labels.get(VERSION_LABEL)
        if not version:
            raise InstallError(
                f"{kind} {name} in {self.target.description} has no {VERSION_LABEL} label: pass --version"
            )
        catalog = catalog or self._catalog_of(existing)
        info, obj, warnings = self._fetch(kind, name, catalog, version)
        stored = self._replace(existing, self._labelled(obj, catalog, info))
        return Outcome(stored, f"{kind} {name}({info.version}) reinstalled in {self.target.description}", warnings)

    def upgrade(self, kind: str, name: str, to: str | None = None, catalog: str | None = None) -> Outcome:
        """Replace an installed resource with a newer version (the latest unless `to` is given)."""
        existing, current, catalog = self._installed(kind, name, catalog)
        info = self.hub.resource(catalog, kind, name, to)
        return self._move("upgrade", existing, current, kind, name, catalog, info)

    def downgrade(self, kind: str, name: str, to: str | None = None, catalog: str | None = None) -> Outcome:
        """Replace an installed resource with an older version (the one just below it unless `to` is given)."""
        existing, current, catalog = self._installed(kind, name, catalog)
        if to is None:
            versions = self.hub.resource(catalog, kind, name).versions
            lower = [v for v in versions if Version.parse(v) < current]
            if not lower:
                raise InstallError(f"cannot downgrade {kind.lower()} {name}: v{current} is its lowest version")
            to = lower[-1]
        info = self.hub.resource(catalog, kind, name, to)
        return self._move("downgrade", existing, current, kind, name, catalog, info)

    def _move(
        self,
        verb: str,
        existing: dict[str, Any],
        current: Version,
        kind: str,
        name: str,
        catalog: str,
        info: RemoteResource,
    ) -> Outcome:
        """Replace an installed resource (at `current`) with `info`'s version, which must be above it for
        "upgrade" and below it for "downgrade"."""
        wanted = Version.parse(info.version)
        refused = f"cannot {verb} {kind.lower()} {name} to v{info.version}"
        if wanted == current:
            raise InstallError(f"{refused}: it is already at that version; use reinstall to overwrite it")
        if verb == "upgrade" and wanted < current:
            raise InstallError(f"{refused}: the installed version v{current} is higher; use downgrade")
        if verb == "downgrade" and wanted > current:
            raise InstallError(f"{refused}: the installed version v{current} is lower; use upgrade")
        _, obj, warnings = self._fetch(kind, name, catalog, info.version, info)
        stored = self._replace(existing, self._labelled(obj, catalog, info))
        return Outcome(stored, f"{kind} {name} {verb}d to v{info.version} in {self.target.description}", warnings)

    def check_upgrade(self, kind: str) -> UpgradeReport:
        """Installed `kind` resources from a hub with a newer (compatible, when the Pipelines version is known)
        version; the others are listed as skipped with the reason."""
        pipelines = self.target.pipelines_version()
        report = UpgradeReport(kind=kind, pipelines_version=pipelines)
        for obj in sorted(self.target.list(kind), key=lambda o: str(o["metadata"]["name"])):
            name = str(obj["metadata"]["name"])
            catalog = self._catalog_label(obj)
            current = _v(labels_of(obj).get(VERSION_LABEL, ""))
            if not catalog:
                report.skipped.append((name, "not installed from a hub"))
                continue
            if current is None:
                report.skipped.append((name, f"no valid {VERSION_LABEL} label"))
                continue
            if pipelines:
                latest = self.hub.latest_compatible(catalog, kind, name, pipelines)
            else:
                latest = self._latest_or_none(catalog, kind, name)
            if latest is None:
                report.skipped.append((name, f"not found in the {catalog} catalog of the hub"))
            elif Version.parse(latest) > current:
                report.upgrades.append(Upgrade(name, catalog, current.text, latest))
        return report

    # -- steps --------------------------------------------------------------------------------------------

    def _latest_or_none(self, catalog: str, kind: str, name: str) -> str | None:
        try:
            return self.hub.resource(catalog, kind, name).latest
        except RemoteNotFound:
            return None

    def _fetch(
        self, kind: str, name: str, catalog: str, version: str | None, info: RemoteResource | None = None
    ) -> tuple[RemoteResource, dict[str, Any], list[str]]:
        """The hub's record and manifest, checked: one Tekton object of the kind and name asked for, runnable on
        the target's Pipelines version. Returns the warnings to show."""
        info = info or self.hub.resource(catalog, kind, name, version)
        text = self.hub.manifest(catalog, kind, name, info.version)
        what = f"{kind} {name}({info.version}) from the hub at {self.hub.base_url}"
        try:
            documents = [d for d in load_documents(text) if d is not None]
        except ManifestError as exc:
            raise InstallError(f"{what} is not valid YAML: {exc}") from None
        if len(documents) != 1 or not isinstance(documents[0], dict):
            raise InstallError(f"{what} is not one Kubernetes object ({len(documents)} documents)")
        obj = documents[0]
        if not api_version_of(obj):
            raise InstallError(f"refusing to install {what}: apiVersion {obj.get('apiVersion')!r} is not tekton.dev")
        if obj.get("kind") not in INSTALLABLE_KINDS or obj.get("kind") != kind:
            raise InstallError(f"refusing to install {what}: it is a {obj.get('kind')!r}, not a {kind}")
        metadata = obj.get("metadata")
        if not isinstance(metadata, dict) or metadata.get("name") != name:
            got = metadata.get("name") if isinstance(metadata, dict) else None
            raise InstallError(f"refusing to install {what}: its metadata.name is {got!r}")
        warnings = self._check_pipelines_version(obj, info)
        if str((metadata.get("annotations") or {}).get(DEPRECATED_ANNOTATION, "")).lower() == "true":
            warnings.append("This version has been deprecated")
        return info, obj, warnings

    def _check_pipelines_version(self, obj: dict[str, Any], info: RemoteResource) -> list[str]:
        annotations = (obj.get("metadata") or {}).get("annotations") or {}
        needed = str(annotations.get(MIN_VERSION_ANNOTATION) or info.min_pipelines_version or "")
        if not needed:
            return []
        found = self.target.pipelines_version()
        if found is None:
            if not self.target.checks_pipelines_version:
                return []
            return [f"tekton pipelines version unknown, this resource is compatible with pipelines min version "
                    f"v{needed.removeprefix('v')}"]  # fmt: skip
        if compatible(needed, found):
            return []
        minimum = needed.removeprefix("v")
        what = f"{info.kind} {info.name}({info.version})"
        message = f"{what} requires Tekton Pipelines min version v{minimum} but found {found}"
        if not self.force:
            raise InstallError(f"{message}; use --force to install it anyway")
        return [f"{message}; installing anyway (--force)"]

    def _labelled(self, obj: dict[str, Any], catalog: str, info: RemoteResource) -> dict[str, Any]:
        out = copy.deepcopy(obj)
        metadata = out.setdefault("metadata", {})
        labels = dict(metadata.get("labels") or {})
        if self.hub.hub_type == ARTIFACT:
            labels[ARTIFACT_CATALOG_LABEL] = catalog
            if info.organization:  # tkn writes an empty label for a repository without one; a label says nothing
                labels[ARTIFACT_ORG_LABEL] = info.organization
            labels[ARTIFACT_TIER_LABEL] = "Verified" if info.organization == "tektoncd" else "Community"
        else:
            labels[CATALOG_LABEL] = catalog
        metadata["labels"] = labels
        metadata.pop("namespace", None)  # the target's namespace, not the catalog's
        return out

    def _in_served_version(self, obj: dict[str, Any]) -> dict[str, Any]:
        kind, source = str(obj["kind"]), api_version_of(obj)
        served = self.target.served_versions(kind)
        if not served:
            raise InstallError(f"{self.target.description} does not serve {kind} (tekton.dev): is Tekton installed?")
        # The first served version it converts to (itself included), preferred first: the preferred one is what a
        # Tekton installation stores (its webhook converts what is written in another), so converting here stores
        # exactly what taskhub converted and checked.
        target = next((v for v in served if can_convert(kind, source, v)), None)
        if target is None:
            raise InstallError(
                f"{kind} {obj['metadata']['name']} is tekton.dev/{source}, but {self.target.description} serves "
                f"only {', '.join('tekton.dev/' + v for v in served)} and there is no conversion"
            )
        if target == source:
            return obj
        try:
            return convert(obj, target)
        except ConversionError as exc:
            raise InstallError(
                f"{kind} {obj['metadata']['name']} cannot be converted to tekton.dev/{target}, the version "
                f"{self.target.description} serves: {exc}"
            ) from None

    def _replace(self, existing: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
        """The existing object with the new one's labels, annotations and spec (as `tkn` does), in the version
        the target serves; metadata such as resourceVersion stays, so a concurrent change is a conflict."""
        converted = self._in_served_version(new)
        updated = copy.deepcopy(existing)
        updated["apiVersion"] = converted["apiVersion"]
        metadata = updated.setdefault("metadata", {})
        new_metadata = converted.get("metadata") or {}
        for key in ("labels", "annotations"):
            if new_metadata.get(key):
                metadata[key] = new_metadata[key]
            else:
                metadata.pop(key, None)
        updated["spec"] = converted.get("spec")
        return self.target.replace(updated)

    def _existing(self, kind: str, name: str, verb: str) -> dict[str, Any]:
        existing = self.target.get(kind, name)
        if existing is None:
            raise InstallError(
                f"{kind} {name} doesn't exist in {self.target.description}; use {verb} to install the {kind.lower()}"
            )
        return existing

    def _installed(self, kind: str, name: str, catalog: str | None) -> tuple[dict[str, Any], Version, str]:
        """An installed resource, its version and catalog, for upgrade and downgrade (which need both labels)."""
        existing = self._existing(kind, name, "install")
        labels = labels_of(existing)
        current = _v(labels.get(VERSION_LABEL, ""))
        if current is None:
            raise InstallError(
                f"{kind} {name} seems to be missing a valid {VERSION_LABEL} label; "
                f"use reinstall to overwrite the existing {kind.lower()}"
            )
        return existing, current, catalog or self._catalog_of(existing)

    def _catalog_label(self, obj: dict[str, Any]) -> str:
        labels = labels_of(obj)
        first, second = (
            (ARTIFACT_CATALOG_LABEL, CATALOG_LABEL) if self.hub.hub_type == ARTIFACT else (CATALOG_LABEL,
                                                                                           ARTIFACT_CATALOG_LABEL)
        )  # fmt: skip
        return labels.get(first) or labels.get(second) or ""

    def _catalog_of(self, obj: dict[str, Any]) -> str:
        catalog = self._catalog_label(obj)
        if catalog:
            return catalog
        if self.hub.hub_type == TEKTON:
            return DEFAULT_TEKTON_CATALOG  # as tkn does for resources without the label
        raise InstallError(
            f"{obj.get('kind')} {obj['metadata']['name']} has no {ARTIFACT_CATALOG_LABEL} label: pass --from"
        )

    def _exists_message(self, kind: str, name: str, existing: dict[str, Any], version: str, *, asked: bool) -> str:
        labels = labels_of(existing)
        where = self.target.description
        if not (labels.get(CATALOG_LABEL) or labels.get(ARTIFACT_CATALOG_LABEL)):
            return (
                f"{kind} {name} already exists in {where} and was not installed from a hub (it has no "
                f"{CATALOG_LABEL} label); use reinstall to overwrite it"
            )
        have = _v(labels.get(VERSION_LABEL, ""))
        if have is None:
            return (
                f"{kind} {name} already exists in {where} but seems to be missing version label; "
                "use reinstall to overwrite it"
            )
        wanted = Version.parse(version)
        if have == wanted:
            return f"{kind} {name}({have}) already exists in {where}; use reinstall to overwrite it"
        if have < wanted:
            latest = "" if asked else " (latest)"
            return f"{kind} {name}({have}) already exists in {where}; use upgrade to install v{version}{latest}"
        return f"{kind} {name}({have}) already exists in {where}; use downgrade to install v{version}"
