"""Reading Tekton resource manifests safely, and extracting what a hub shows about them.

Catalog files come from other people's repositories, so every read is bounded: size, encoding, YAML alias
expansion, nesting depth and duplicate keys are checked before anything is built from the text. A problem
becomes a ManifestError with a reason a person can act on; nothing here crashes on hostile input.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

import yaml

from catalog.errors import InvalidVersion
from catalog.versions import Version

MAX_FILE_BYTES = 1024 * 1024
MAX_YAML_NODES = 100_000
MAX_YAML_DEPTH = 1000
# libyaml's composer recurses in C and crashes the process somewhere past 10,000 levels: see _check_nesting.

KINDS = {"task": "Task", "pipeline": "Pipeline", "stepaction": "StepAction"}
API_VERSIONS = {
    "Task": ("tekton.dev/v1", "tekton.dev/v1beta1"),
    "Pipeline": ("tekton.dev/v1", "tekton.dev/v1beta1"),
    "StepAction": ("tekton.dev/v1", "tekton.dev/v1beta1", "tekton.dev/v1alpha1"),
}

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

_DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_PLATFORM = re.compile(r"^[a-z0-9]+/[a-z0-9]+(/[a-z0-9]+)?$")


class ManifestError(Exception):
    """A file that cannot be indexed, with the reason."""


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


def is_dns1123_label(name: str) -> bool:
    return len(name) <= 63 and bool(_DNS1123_LABEL.match(name))


def decode_text(data: bytes, *, replace_nul: bool = False) -> str:
    """Decode a catalog file as UTF-8 (a BOM is dropped), or raise ManifestError. A NUL byte, which no database
    stores in text, is refused, or with replace_nul shown as U+FFFD (in a README, where the rest is still worth
    reading)."""
    if len(data) > MAX_FILE_BYTES:
        raise ManifestError(f"file is {len(data)} bytes, over the {MAX_FILE_BYTES}-byte limit")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ManifestError(f"not valid UTF-8 (byte {exc.start}: {data[exc.start : exc.start + 1]!r})") from None
    if "\x00" in text:
        if not replace_nul:
            raise ManifestError(f"contains a NUL byte (at byte {data.index(0)}), which the index cannot store")
        text = text.replace("\x00", "\ufffd")
    return text.removeprefix("\ufeff")


_BaseLoader: type = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_YAML_TAG = "tag:yaml.org,2002:"
_PYTHON_TAG = _YAML_TAG + "python/"
_MERGE = "tag:yaml.org,2002:merge"
_NULL = "tag:yaml.org,2002:null"
# Something that looks like a YAML anchor (&name) where a node starts; "&&", "2>&1" and "cmd &" do not.
_ANCHOR = re.compile(r"(?:^|[\s\[{,:-])&[^\s&]", re.MULTILINE)


def _check_nesting(text: str) -> None:
    """Refuse deep nesting before libyaml's recursive composer sees it (it crashes the process, not raises).

    Nesting depth is bounded by the flow brackets plus the longest line (block nesting needs indentation), so
    the event stream, which libyaml parses without recursion, is only walked when that bound is high.
    """
    bound = text.count("[") + text.count("{") + max((len(line) for line in text.splitlines()), default=0)
    if bound <= MAX_YAML_DEPTH:
        return
    depth = 0
    try:
        for event in yaml.parse(text, Loader=_BaseLoader):
            if isinstance(event, yaml.CollectionStartEvent):
                depth += 1
                if depth > MAX_YAML_DEPTH:
                    raise ManifestError(f"YAML nested deeper than {MAX_YAML_DEPTH} levels")
            elif isinstance(event, yaml.CollectionEndEvent):
                depth -= 1
    except yaml.YAMLError as exc:
        raise ManifestError(f"invalid YAML: {_one_line(exc)}") from None


def _check_expansion(root: yaml.Node) -> None:
    """Refuse alias bombs and recursive aliases: count the nodes as if every alias were expanded."""
    sizes: dict[int, int] = {}
    open_nodes: set[int] = set()
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, children_done = stack.pop()
        key = id(node)
        if children_done:
            open_nodes.discard(key)
            sizes[key] = 1 + sum(sizes[id(child)] for child in _children(node))
            if sizes[key] > MAX_YAML_NODES:
                raise ManifestError(
                    f"YAML expands to more than {MAX_YAML_NODES} nodes (an alias bomb?); refusing to load it"
                )
            continue
        if key in sizes:
            continue
        if key in open_nodes:
            raise ManifestError("YAML alias refers to itself (a recursive structure); refusing to load it")
        if isinstance(node, yaml.ScalarNode):
            sizes[key] = 1
            continue
        open_nodes.add(key)
        stack.append((node, True))
        stack.extend((child, False) for child in _children(node))


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.MappingNode):
        return [n for pair in node.value for n in pair]
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    return []


def _check_nodes(root: yaml.Node) -> None:
    """Refuse duplicate mapping keys anywhere, as Kubernetes' strict decoding does; Python tags (a YAML
    vulnerability, never a Tekton object); and NUL characters ("\\0" or "\\u0000" escapes), which no database
    stores in text."""
    stack = [root]
    visited: set[int] = set()
    while stack:
        node = stack.pop()
        if node.tag.startswith(_PYTHON_TAG):
            mark = node.start_mark
            raise ManifestError(f"invalid YAML: the tag !!{node.tag[len(_YAML_TAG) :]} at line {mark.line + 1}")
        if isinstance(node, yaml.ScalarNode):
            if "\x00" in node.value:
                mark = node.start_mark
                raise ManifestError(f"a NUL character at line {mark.line + 1}, which the index cannot store")
            continue
        if id(node) in visited:
            continue
        visited.add(id(node))
        if isinstance(node, yaml.SequenceNode):
            stack.extend(node.value)
            continue
        seen: set[object] = set()
        for key_node, value_node in node.value:
            stack.append(value_node)
            if key_node.tag == _MERGE:
                continue
            # Scalar keys compare by tag and text: what Kubernetes' decoder sees after YAML-to-JSON.
            key = (key_node.tag, key_node.value) if isinstance(key_node, yaml.ScalarNode) else _node_text(key_node)
            if key in seen:
                shown = key[1] if isinstance(key, tuple) else key
                mark = key_node.start_mark
                raise ManifestError(f"invalid YAML: duplicate key {shown!r} at line {mark.line + 1}")
            seen.add(key)
            stack.append(key_node)


def _node_text(node: yaml.Node) -> str:
    return repr(yaml.constructor.SafeConstructor().construct_document(node))


def compose_documents(text: str) -> list[yaml.Node]:
    """The YAML node trees of every non-empty document of a text, after every safety check."""
    _check_nesting(text)
    # An alias needs an anchor and a '*'; without both the node graph is a plain tree.
    has_aliases = "*" in text and _ANCHOR.search(text) is not None
    loader = _BaseLoader(text)
    nodes: list[yaml.Node] = []
    try:
        while loader.check_node():
            node = loader.get_node()
            if node is None or (isinstance(node, yaml.ScalarNode) and node.tag == _NULL):
                continue
            if has_aliases:
                _check_expansion(node)
            _check_nodes(node)
            nodes.append(node)
    except yaml.YAMLError as exc:
        raise ManifestError(f"invalid YAML: {_one_line(exc)}") from None
    finally:
        loader.dispose()
    return nodes


def construct(node: yaml.Node | None) -> Any:
    """The Python value of a checked node (None for None)."""
    if node is None:
        return None
    try:
        return yaml.constructor.SafeConstructor().construct_document(node)
    except yaml.YAMLError as exc:
        raise ManifestError(f"invalid YAML: {_one_line(exc)}") from None


def load_documents(text: str) -> list[Any]:
    """Load every non-empty YAML document of a text, safely; raise ManifestError on anything hostile."""
    return [construct(node) for node in compose_documents(text)]


def _fields(node: yaml.Node) -> dict[str, yaml.Node]:
    """A mapping node's values by their string keys (merge keys and other keys are left out)."""
    return {k.value: v for k, v in node.value if isinstance(k, yaml.ScalarNode) and k.tag != _MERGE}


def _one_line(exc: Exception) -> str:
    return " ".join(str(exc).split())


def _split_list(value: str, *, on_spaces: bool = False) -> list[str]:
    parts = re.split(r"[,\s]+" if on_spaces else r",", value)
    seen: dict[str, None] = {}
    for part in parts:
        item = part.strip()
        if item:
            seen.setdefault(item, None)
    return list(seen)


def _string_map(meta: dict[str, Any], key: str) -> dict[str, str]:
    value = meta.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ManifestError(f"metadata.{key} must be a mapping")
    out: dict[str, str] = {}
    for k, v in value.items():
        if not isinstance(k, str):
            raise ManifestError(f"metadata.{key} has a non-string key {k!r}")
        if not isinstance(v, str):
            raise ManifestError(
                f"metadata.{key}.{k} must be a string, got {type(v).__name__} {v!r} (quote it in the YAML)"
            )
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


def parse_resource(text: str, *, kind: str) -> ResourceManifest:
    """Parse the manifest of a resource version of the given kind ("Task", "Pipeline", "StepAction")."""
    doc = _load_json(text)
    if doc is not None:
        return _resource(doc, doc.get("spec"), kind)
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
        top = _fields(nodes[0])
        doc = {key: construct(top.get(key)) for key in ("apiVersion", "kind", "metadata") if key in top}
        spec_node = top.get("spec")
        if isinstance(spec_node, yaml.MappingNode):
            spec_fields = _fields(spec_node)
            spec_value = {k: construct(spec_fields[k]) for k in ("description", "resources") if k in spec_fields}
        else:
            spec_value = construct(spec_node)
    return _resource(doc, spec_value, kind)


def _resource(doc: dict[str, Any], spec_value: Any, kind: str) -> ResourceManifest:
    """What the hub reads from a loaded manifest: its top-level fields and the spec's description."""
    found_kind = doc.get("kind")
    if found_kind != kind:
        raise ManifestError(f"kind is {found_kind!r}, expected {kind!r} in a {kind.lower()}/ folder")
    api_version = doc.get("apiVersion")
    if api_version not in API_VERSIONS[kind]:
        allowed = ", ".join(API_VERSIONS[kind])
        raise ManifestError(f"apiVersion {api_version!r} is not supported for {kind} (use one of {allowed})")
    meta = doc.get("metadata")
    if not isinstance(meta, dict):
        raise ManifestError("metadata is missing or not a mapping")
    name = meta.get("name")
    if not isinstance(name, str) or not name:
        raise ManifestError("metadata.name is missing")
    if not is_dns1123_label(name):
        raise ManifestError(f"metadata.name {name!r} is not a valid DNS-1123 label")
    labels = _string_map(meta, "labels")
    annotations = _string_map(meta, "annotations")
    spec = spec_value
    if not isinstance(spec, dict):
        raise ManifestError("spec is missing or not a mapping")

    label = labels.get(VERSION_LABEL)
    if label is None:
        raise ManifestError(f"missing the mandatory version label {VERSION_LABEL}")
    try:
        version = Version.parse(label, allow_short=False)
    except InvalidVersion as exc:
        raise ManifestError(f"label {VERSION_LABEL}: {exc}") from None

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
    for platform in platforms:
        if not _PLATFORM.match(platform):
            findings.append(Finding("warning", f"platform {platform!r} is not of the form os/arch"))
    if meta.get("namespace"):
        findings.append(Finding("warning", f"metadata.namespace {meta['namespace']!r} is set; installs ignore it"))
    if kind == "Task" and "resources" in spec:
        findings.append(Finding("warning", "uses spec.resources (PipelineResources), removed in Pipelines v0.50"))

    return ResourceManifest(
        api_version=api_version,
        kind=kind,
        name=name,
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
