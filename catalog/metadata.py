"""What a hub shows about a resource version, read from its manifest, and every reason one cannot be indexed.

The manifest is read safely (catalog/manifests.py). Then each field is checked on its own, so that a manifest with
several faults is reported with all of them (a missing version label and a name that does not match its folder
are two problems, not one): ``ManifestError.reasons`` lists them. What still allows indexing becomes a Finding.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

import yaml

from catalog.errors import InvalidVersion
from catalog.manifests import (
    API_VERSIONS,
    MAX_YAML_DEPTH,
    ManifestError,
    compose_documents,
    construct,
    fields_of,
    is_dns1123_label,
)
from catalog.versions import Version

VERSION_LABEL = "app.kubernetes.io/version"
MIN_VERSION = "tekton.dev/pipelines.minVersion"
DISPLAY_NAME = "tekton.dev/displayName"
DEPRECATED = "tekton.dev/deprecated"
TAGS = "tekton.dev/tags"
CATEGORIES = "tekton.dev/categories"
PLATFORMS = "tekton.dev/platforms"
DEFAULT_PLATFORM = "linux/amd64"

# The 20 categories of Tekton Hub's config, in its order (tektoncd/hub: config.yaml); others are kept but reported.
HUB_CATEGORIES = (
    "Automation", "Build Tools", "CLI", "Cloud", "Code Quality", "Continuous Integration", "Deployment",
    "Developer Tools", "Image Build", "Integration & Delivery", "Git", "Kubernetes", "Messaging",
    "Monitoring", "Networking", "Openshift", "Publishing", "Security", "Storage", "Testing",
)  # fmt: skip

_PLATFORM = re.compile(r"^([a-z0-9]+)/([a-z0-9]+)(/[a-z0-9]+)?$")
# The operating systems and architectures images are built for: Go's GOOS and GOARCH (`go tool dist list`), as
# OCI image indexes name them. A platform outside them is most likely a typo (the catalog's own "linux/390x").
KNOWN_OS = frozenset(
    {"aix", "android", "darwin", "dragonfly", "freebsd", "illumos", "ios", "js", "linux", "netbsd", "openbsd",
     "plan9", "solaris", "wasip1", "windows"}
)  # fmt: skip
KNOWN_ARCH = frozenset(
    {"386", "amd64", "arm", "arm64", "loong64", "mips", "mips64", "mips64le", "mipsle", "ppc64", "ppc64le",
     "riscv64", "s390x", "wasm"}
)  # fmt: skip


@dataclass
class Finding:
    """Something worth telling the catalog's owner about a file that was still indexed."""

    level: str  # "warning" or "info"
    message: str


@dataclass
class ResourceManifest:
    """What the hub knows about one resource version, read from its manifest."""

    api_version: str
    kind: str
    name: str
    version: Version
    description: str
    display_name: str | None
    min_pipelines_version: str | None
    deprecated: bool
    tags: list[str]
    categories: list[str]
    platforms: list[str]
    findings: list[Finding] = field(default_factory=list)


class ManifestProblems(ManifestError):
    """A manifest that cannot be indexed, with every reason found (each a problem of its own)."""

    def __init__(self, reasons: list[str]) -> None:
        super().__init__("; ".join(reasons))
        self.reasons = reasons


def reasons_of(error: ManifestError) -> list[str]:
    """The reasons a file was refused: one for most errors, every one found for a manifest's fields."""
    return list(error.reasons) if isinstance(error, ManifestProblems) else [str(error)]


def _split_list(value: str, *, on_spaces: bool = False) -> list[str]:
    parts = re.split(r"[,\s]+" if on_spaces else r",", value)
    seen: dict[str, None] = {}
    for part in parts:
        item = part.strip()
        if item:
            seen.setdefault(item, None)
    return list(seen)


def _string_map(meta: dict[str, Any], key: str, reasons: list[str]) -> dict[str, str]:
    """metadata.labels or .annotations; what is wrong with it goes to reasons."""
    value = meta.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        reasons.append(f"metadata.{key} must be a mapping")
        return {}
    out: dict[str, str] = {}
    for k, v in value.items():
        if not isinstance(k, str):
            reasons.append(f"metadata.{key} has a non-string key {k!r}")
        elif not isinstance(v, str):
            reasons.append(f"metadata.{key}.{k} must be a string, got {type(v).__name__} {v!r} (quote it in the YAML)")
        else:
            out[k] = v
    return out


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    mapping = dict(pairs)
    if len(mapping) != len(pairs):
        duplicate = next(key for key in mapping if sum(1 for k, _ in pairs if k == key) > 1)
        raise ManifestError(f"invalid JSON: duplicate key {duplicate!r}")
    return mapping


def _load_json(text: str) -> dict[str, Any] | None:
    """A JSON object (what bundles hold) read as JSON, many times faster than YAML; None if it is not JSON."""
    if not text.lstrip().startswith("{"):
        return None
    try:
        loaded: dict[str, Any] = json.loads(text, object_pairs_hook=_unique_keys)
    except json.JSONDecodeError:
        return None  # YAML's flow style accepts more than JSON: let the YAML reader judge it
    except RecursionError:
        raise ManifestError(f"JSON nested deeper than {MAX_YAML_DEPTH} levels") from None
    return loaded


def parse_resource(
    text: str, *, kind: str, folder_name: str | None = None, folder_version: str | None = None
) -> ResourceManifest:
    """Parse the manifest of a resource version of the given kind ("Task", "Pipeline", "StepAction"); with
    folder_name and folder_version, also check that the manifest's name and version label match its folders.
    Raise ManifestProblems with every reason it cannot be indexed (ManifestError when it is not even YAML)."""
    doc = _load_json(text)
    if doc is not None:
        return _resource(doc, doc.get("spec"), kind, folder_name, folder_version)
    nodes = compose_documents(text)
    if not nodes:
        raise ManifestError("the file holds no YAML document")
    if len(nodes) > 1:
        raise ManifestError(f"expected one resource, found {len(nodes)} YAML documents")
    if "<<" in text:
        # Merge keys can hide fields anywhere: build the whole document.
        doc = construct(nodes[0])
        if not isinstance(doc, dict):
            raise ManifestError(f"expected a mapping at the top level, found {type(doc).__name__}")
        spec_value = doc.get("spec")
    else:
        # Only what the hub reads is built; the rest was checked as nodes.
        if not isinstance(nodes[0], yaml.MappingNode):
            raise ManifestError("expected a mapping at the top level")
        top = fields_of(nodes[0])
        doc = {key: construct(top.get(key)) for key in ("apiVersion", "kind", "metadata") if key in top}
        spec_node = top.get("spec")
        if isinstance(spec_node, yaml.MappingNode):
            spec_fields = fields_of(spec_node)
            spec_value = {k: construct(spec_fields[k]) for k in ("description", "resources") if k in spec_fields}
        else:
            spec_value = construct(spec_node)
    return _resource(doc, spec_value, kind, folder_name, folder_version)


def _identity(
    doc: dict[str, Any], spec: Any, kind: str, folder_name: str | None, folder_version: str | None
) -> tuple[list[str], str, dict[str, Any], dict[str, str], Version | None]:
    """(every reason the manifest cannot be indexed, its apiVersion, metadata, annotations and version)."""
    reasons: list[str] = []
    found_kind = doc.get("kind")
    if found_kind != kind:
        reasons.append(f"kind is {found_kind!r}, expected {kind!r} in a {kind.lower()}/ folder")
    api_version = doc.get("apiVersion")
    if api_version not in API_VERSIONS[kind]:
        allowed = ", ".join(API_VERSIONS[kind])
        reasons.append(f"apiVersion {api_version!r} is not supported for {kind} (use one of {allowed})")
    meta = doc.get("metadata")
    if not isinstance(meta, dict):
        reasons.append("metadata is missing or not a mapping")
        meta = {}
    name = meta.get("name")
    if not isinstance(name, str) or not name:
        reasons.append("metadata.name is missing")
    elif not is_dns1123_label(name):
        reasons.append(f"metadata.name {name!r} is not a valid DNS-1123 label")
    elif folder_name is not None and name != folder_name:
        reasons.append(f"metadata.name {name!r} does not match the folder name {folder_name!r}")
    labels = _string_map(meta, "labels", reasons)
    annotations = _string_map(meta, "annotations", reasons)
    if not isinstance(spec, dict):
        reasons.append("spec is missing or not a mapping")
    version = None
    label = labels.get(VERSION_LABEL)
    if label is None:
        reasons.append(f"missing the mandatory version label {VERSION_LABEL}")
    else:
        try:
            version = Version.parse(label, allow_short=False)
        except InvalidVersion as exc:
            reasons.append(f"label {VERSION_LABEL}: {exc}")
        else:
            if folder_version is not None and version != Version.parse(folder_version):
                reasons.append(f"version label {version.text!r} does not match the folder version {folder_version!r}")
    return reasons, str(api_version), meta, annotations, version


def _resource(
    doc: dict[str, Any], spec: Any, kind: str, folder_name: str | None, folder_version: str | None
) -> ResourceManifest:
    """What the hub reads from a loaded manifest: its top-level fields and the spec's description."""
    reasons, api_version, meta, annotations, version = _identity(doc, spec, kind, folder_name, folder_version)
    if reasons or version is None or not isinstance(spec, dict):
        raise ManifestProblems(reasons)

    findings: list[Finding] = []
    description = spec.get("description")
    if not isinstance(description, str) or not description.strip():
        description = ""
        findings.append(Finding("warning", "spec.description is missing"))
    # Kept as written, a block scalar's final newline included, as Tekton Hub serves it.
    display_name = annotations.get(DISPLAY_NAME, "").strip() or None
    if display_name is None:
        findings.append(Finding("info", f"no display name ({DISPLAY_NAME})"))
    min_version = annotations.get(MIN_VERSION, "").strip() or None
    if min_version is None:
        findings.append(Finding("warning", f"no minimum Pipelines version ({MIN_VERSION})"))
    else:
        try:
            Version.parse(min_version)
        except InvalidVersion:
            findings.append(Finding("warning", f"{MIN_VERSION} {min_version!r} is not a version; ignored"))
            min_version = None

    # Tekton Hub splits tags on commas and whitespace ("canary deployment" is two tags); categories only on commas.
    tags = _split_list(annotations.get(TAGS, ""), on_spaces=True)
    categories = _split_list(annotations.get(CATEGORIES, ""))
    for category in categories:
        if category not in HUB_CATEGORIES:
            findings.append(Finding("warning", f"category {category!r} is not one of the Tekton Hub categories"))
    platforms = _split_list(annotations.get(PLATFORMS, ""), on_spaces=True)
    if not platforms:
        platforms = [DEFAULT_PLATFORM]
        findings.append(Finding("info", f"no platforms ({PLATFORMS}); assuming {DEFAULT_PLATFORM}"))
    findings.extend(platform_findings(platforms))
    if meta.get("namespace"):
        findings.append(Finding("warning", f"metadata.namespace {meta['namespace']!r} is set; installs ignore it"))
    if kind == "Task" and "resources" in spec:
        findings.append(Finding("warning", "uses spec.resources (PipelineResources), removed in Pipelines v0.50"))

    return ResourceManifest(
        api_version=api_version,
        kind=kind,
        name=str(meta["name"]),
        version=version,
        description=description,
        display_name=display_name,
        min_pipelines_version=min_version,
        deprecated=annotations.get(DEPRECATED, "").strip().lower() == "true",
        tags=tags,
        categories=categories,
        platforms=platforms,
        findings=findings,
    )


def platform_findings(platforms: list[str]) -> list[Finding]:
    """A warning for each platform that is not os/arch[/variant], or names an unusual os or architecture."""
    out = []
    for platform in platforms:
        match = _PLATFORM.match(platform)
        if match is None:
            out.append(Finding("warning", f"platform {platform!r} is not of the form os/arch"))
        elif match.group(1) not in KNOWN_OS or match.group(2) not in KNOWN_ARCH:
            unusual = match.group(1) if match.group(1) not in KNOWN_OS else match.group(2)
            out.append(
                Finding("warning", f"platform {platform!r}: {unusual!r} is not a usual os or architecture (a typo?)")
            )
    return out
