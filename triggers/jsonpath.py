"""The JSONPath Triggers evaluates in `$(...)` binding values: kubectl's relaxed form over client-go's jsonpath.

Missing keys are errors (`AllowMissingKeys(false)`); results are written as tektoncd/triggers:
pkg/template/jsonpath.go `getResults` writes them: a single string without its JSON quotes but with Go's
escaping, any other single value as compact JSON with sorted keys, several values as a JSON array. Supported:
`.key` (with `\\` escapes), `['key']`, `[n]`, `[a:b:c]` with negative bounds, `[*]`, `.*`, `..key`, unions
`[0,1]` and filters `[?(@.k == "v")]` (k8s.io/client-go/util/jsonpath: parser.go, jsonpath.go).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from triggers.gojson import marshal, quote

_RELAXED = re.compile(r"^\{\.?([^{}]+)\}$|^\.?([^{}]+)$")
_SLICE = re.compile(r"^(-?\d*)(:-?\d*)?(:-?\d*)?$")
_FILTER = re.compile(r"^\s*(.+?)\s*(==|!=|<=|>=|<|>)\s*(.+?)\s*$")
_TERMINATORS = " .,[]$@{}()"


class JSONPathError(ValueError):
    """A path that does not parse, or that does not find what it names."""


@dataclass(frozen=True)
class _Field:
    name: str


@dataclass(frozen=True)
class _Slice:
    start: int | None
    end: int | None
    step: int | None
    single: bool


@dataclass(frozen=True)
class _Wildcard:
    pass


@dataclass(frozen=True)
class _Recursive:
    pass


@dataclass(frozen=True)
class _Union:
    parts: tuple[list[Any], ...]


@dataclass(frozen=True)
class _Filter:
    left: str
    operator: str | None
    right: str | None


def relaxed(expression: str) -> str:
    """The path inside `$( )` in kubectl's relaxed spellings (`a.b`, `.a.b`, `{a.b}`, `{.a.b}`) without braces
    and leading dot; JSONPathError for what kubectl's customcolumn regex refuses."""
    if not expression:
        raise JSONPathError("expression not wrapped in $()")
    match = _RELAXED.match(expression)
    if not match:
        raise JSONPathError(
            "unexpected path string, expected a 'name1.name2' or '.name1.name2' or '{name1.name2}' or '{.name1.name2}'"
        )
    return match.group(1) or match.group(2)


def parse(path: str) -> list[Any]:
    """The nodes of a path written without its leading dot (`body.a[0]`)."""
    nodes: list[Any] = []
    text = "." + path
    i = 0
    while i < len(text):
        c = text[i]
        if c == ".":
            if text.startswith("..", i):
                nodes.append(_Recursive())
                i += 1
            i += 1
            if i < len(text) and text[i] == "*":
                nodes.append(_Wildcard())
                i += 1
                continue
            name, i = _field_name(text, i)
            if name:
                nodes.append(_Field(name))
        elif c == "[":
            end = _closing_bracket(text, i)
            nodes.append(_bracket(text[i + 1 : end]))
            i = end + 1
        else:
            raise JSONPathError(f"unrecognized character in action: {c!r}")
    return nodes


def _field_name(text: str, i: int) -> tuple[str, int]:
    out = []
    while i < len(text) and text[i] not in _TERMINATORS:
        if text[i] == "\\" and i + 1 < len(text):
            i += 1
        out.append(text[i])
        i += 1
    return "".join(out).replace("\\", ""), i


def _closing_bracket(text: str, start: int) -> int:
    depth, quote_char = 0, ""
    for i in range(start, len(text)):
        c = text[i]
        if quote_char:
            if c == quote_char:
                quote_char = ""
        elif c in "'\"":
            quote_char = c
        elif c == "[":
            depth += 1
        elif c == "]":
            depth -= 1
            if depth == 0:
                return i
    raise JSONPathError("unterminated array")


def _bracket(inner: str) -> Any:
    if inner.startswith("?(") and inner.endswith(")"):
        body = inner[2:-1]
        match = _FILTER.match(body)
        if match:
            return _Filter(match.group(1), match.group(2), match.group(3))
        return _Filter(body.strip(), None, None)
    text = ":" if inner == "*" else inner
    if "," in text:
        return _Union(tuple([_bracket(part.strip())] for part in text.split(",")))
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        return _Field(text[1:-1])
    match = _SLICE.match(text)
    if not match:
        raise JSONPathError(f"invalid array index {text}")
    first = match.group(1)
    start = int(first) if first not in ("", "-") else None
    if match.group(2) is None:
        if start is None:
            raise JSONPathError(f"invalid array index {text}")
        return _Slice(start, start + 1, None, single=True)
    end_text, step_text = (match.group(2) or ":")[1:], (match.group(3) or ":")[1:]
    end = int(end_text) if end_text not in ("", "-") else None
    step = int(step_text) if step_text not in ("", "-") else None
    return _Slice(start, end, step, single=False)


def find(root: Any, nodes: list[Any]) -> list[Any]:
    """The values a parsed path selects from a JSON value; JSONPathError as client-go words its failures."""
    values = [root]
    recursive = False
    for node in nodes:
        if isinstance(node, _Recursive):
            recursive = True
            continue
        if recursive:
            values = [v for value in values for v in _descendants(value)]
        values = _step(values, node, lenient=recursive)
        recursive = False
    return values


def _descendants(value: Any) -> list[Any]:
    out, stack = [], [value]
    while stack:
        item = stack.pop()
        out.append(item)
        if isinstance(item, dict):
            stack.extend(item[key] for key in sorted(item, reverse=True))
        elif isinstance(item, list):
            stack.extend(reversed(item))
    return out


def _step(values: list[Any], node: Any, *, lenient: bool = False) -> list[Any]:
    if isinstance(node, _Field):
        found = [value[node.name] for value in values if isinstance(value, dict) and node.name in value]
        if not found and not lenient:
            raise JSONPathError(f"{node.name} is not found")
        return found
    if isinstance(node, _Wildcard):
        out: list[Any] = []
        for value in values:
            if isinstance(value, dict):
                out.extend(value[key] for key in sorted(value))
            elif isinstance(value, list):
                out.extend(value)
        return out
    if isinstance(node, _Union):
        return [v for part in node.parts for v in _step(values, part[0], lenient=lenient)]
    out = []
    for value in values:
        if value is None:
            continue
        if not isinstance(value, list):
            if lenient:
                continue
            raise JSONPathError(f"{_go_type(value)} is not array or slice")
        out.extend(_slice(value, node) if isinstance(node, _Slice) else _filter(value, node))
    return out


def _go_type(value: Any) -> str:
    if isinstance(value, str):
        return "string"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, float | int):
        return "float64"
    return "map[string]interface {}"


def _slice(items: list[Any], node: _Slice) -> list[Any]:
    length = len(items)
    start = 0 if node.start is None else node.start
    if start < 0:
        start += length
    end = length if node.end is None else node.end
    if end < 0 or (end == 0 and node.single):
        end += length
    if start == end:
        return []
    if start >= length or start < 0:
        raise JSONPathError(f"array index out of bounds: index {start}, length {length}")
    if end > length or end < 0:
        raise JSONPathError(f"array index out of bounds: index {end - 1}, length {length}")
    if start > end:
        raise JSONPathError(f"starting index {start} is greater than ending index {end}")
    step = node.step if node.step and node.step > 0 else 1
    return items[start:end:step]


def _operand(item: Any, text: str) -> list[Any]:
    if text.startswith("@"):
        return find(item, parse(text[2:])) if text != "@" else [item]
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        return [text[1:-1]]
    if text in ("true", "false"):
        return [text == "true"]
    try:
        return [float(text)]
    except ValueError:
        raise JSONPathError(f"unrecognized filter operand {text}") from None


def _compare(left: Any, operator: str, right: Any) -> bool:
    if operator == "==":
        return bool(left == right)
    if operator == "!=":
        return bool(left != right)
    numbers = all(isinstance(v, float | int) and not isinstance(v, bool) for v in (left, right))
    if not numbers and not (isinstance(left, str) and isinstance(right, str)):
        raise JSONPathError(f"cannot compare {left!r} and {right!r}")
    return {"<": left < right, ">": left > right, "<=": left <= right, ">=": left >= right}[operator]


def _filter(items: list[Any], node: _Filter) -> list[Any]:
    out = []
    for item in items:
        if node.operator is None:
            try:
                if _operand(item, node.left):
                    out.append(item)
            except JSONPathError:
                pass
            continue
        lefts = _operand(item, node.left)
        rights = _operand(item, node.right or "")
        if lefts and rights and _compare(lefts[0], node.operator, rights[0]):
            out.append(item)
    return out


def result_text(values: list[Any]) -> str:
    """The text of JSONPath results as Triggers writes them into a param (tektoncd/triggers:
    pkg/template/jsonpath.go getResults)."""
    if len(values) == 1:
        value = values[0]
        if isinstance(value, str):
            return quote(value)[1:-1]
        return marshal(value)
    return marshal(values)


def evaluate(root: Any, expression: str) -> str:
    """The text of one `$(...)` expression (without `$(` and `)`) over the event object."""
    return result_text(find(root, parse(relaxed(expression))))
