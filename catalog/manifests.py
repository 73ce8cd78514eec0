"""Reading Tekton resource manifests safely (catalog/metadata.py extracts what a hub shows about them).

Catalog files come from other people's repositories, so every read is bounded: size, encoding, YAML alias
expansion, nesting depth and duplicate keys are checked before anything is built from the text. A problem
becomes a ManifestError with a reason a person can act on; nothing here crashes on hostile input.
"""

from __future__ import annotations

import re
from typing import Any

import yaml

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

_DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


class ManifestError(Exception):
    """A file that cannot be indexed, with the reason."""


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


def fields_of(node: yaml.Node) -> dict[str, yaml.Node]:
    """A mapping node's values by their string keys (merge keys and other keys are left out)."""
    return {k.value: v for k, v in node.value if isinstance(k, yaml.ScalarNode) and k.tag != _MERGE}


def _one_line(exc: Exception) -> str:
    return " ".join(str(exc).split())
