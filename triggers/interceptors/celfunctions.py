"""The functions Triggers adds to CEL, and cel-go's string extensions, for cel-python.

Semantics follow tektoncd/triggers: pkg/interceptors/cel/triggers.go and functions.go (match, canonical,
truncate, compareSecret, parseJSON, parseYAML, parseURL, marshalJSON, first, last, translate) and
cel-go ext/strings.go. A function fails by raising ValueError, which cel-python turns into an evaluation error.
"""

from __future__ import annotations

import base64
import hmac
import operator
import re
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from celpy import celtypes
from celpy.adapter import json_to_cel

from catalog.manifests import ManifestError, load_documents
from triggers.gojson import marshal
from triggers.headers import canonical_key
from triggers.jsonbody import BodyError, decode

MAX_VALUE_CHARS = 1 << 20  # a string or list built by an expression stops at a million characters/items
_GO_GROUP = re.compile(r"\$(\$|\{([A-Za-z0-9_]+)\}|([A-Za-z0-9_]+))")


def cel_value(value: Any) -> Any:
    """A decoded JSON value (numbers already floats, as Go decodes them) as a CEL value."""
    return json_to_cel(value)


def plain(value: Any) -> Any:
    """A CEL value as plain JSON-able Python: bytes as base64 text (Go's JSON of []byte), ints and doubles as
    float."""
    if isinstance(value, celtypes.BoolType):
        return bool(value)
    if isinstance(value, celtypes.BytesType):
        return base64.b64encode(bytes(value)).decode()
    if isinstance(value, str):
        return str(value)
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    if value is None:
        return None
    raise ValueError(f"unsupported type {type(value).__name__}")


def _header_get(header: Any, name: Any) -> str:
    key = celtypes.StringType(canonical_key(str(name)))
    values = header[key] if isinstance(header, dict) and key in header else None
    return str(values[0]) if values else ""


def match(header: Any, name: Any, value: Any) -> celtypes.BoolType:
    return celtypes.BoolType(_header_get(header, name) == str(value))


def canonical(header: Any, name: Any) -> celtypes.StringType:
    return celtypes.StringType(_header_get(header, name))


def truncate(text: Any, length: Any) -> celtypes.StringType:
    """The first `length` bytes (not characters, as Go slices strings); a split character becomes U+FFFD."""
    if not isinstance(text, str) or not isinstance(length, int):
        raise TypeError("no such overload")
    data = text.encode()
    return celtypes.StringType(data[: max(0, min(int(length), len(data)))].decode("utf-8", "replace"))


def make_compare_secret(read: Callable[[str, str], bytes]) -> Callable[..., celtypes.BoolType]:
    """compareSecret(key, name[, namespace]): the namespace argument is ignored, the trigger's is used."""

    def compare_secret(text: Any, key: Any, name: Any, namespace: Any = None) -> celtypes.BoolType:
        del namespace
        try:
            secret = read(str(name), str(key))
        except LookupError as exc:
            raise ValueError(f"failed to find secret '{name}/{key}' in compareSecret: {exc}") from None
        return celtypes.BoolType(hmac.compare_digest(secret, str(text).encode()))

    return compare_secret


def parse_json(text: Any) -> Any:
    try:
        value = decode(str(text).encode())
    except BodyError as exc:
        raise ValueError(f"failed to decode '{text}' in parseJSON: {exc}") from None
    if not isinstance(value, dict):
        raise ValueError(f"failed to decode '{text}' in parseJSON: json: cannot unmarshal into a map")
    return cel_value(value)


def parse_yaml(text: Any) -> Any:
    try:
        documents = load_documents(str(text))
    except ManifestError as exc:
        raise ValueError(f"failed to decode '{text}' in parseYAML: {exc}") from None
    value = documents[0] if documents else {}
    if not isinstance(value, dict):
        raise ValueError(f"failed to decode '{text}' in parseYAML: not a map")
    return cel_value(_floats(value))


def _floats(value: Any) -> Any:
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, dict):
        return {str(k): _floats(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_floats(v) for v in value]
    return str(value)


def parse_url(text: Any) -> Any:
    try:
        parts = urlsplit(str(text))
        host = parts.netloc.rsplit("@", 1)[-1]
    except ValueError as exc:
        raise ValueError(f"failed to decode '{text}' in parseURL: {exc}") from None
    query: dict[str, list[str]] = {}
    for key, value in parse_qsl(parts.query, keep_blank_values=True):
        query.setdefault(key, []).append(value)
    result: dict[str, Any] = {
        "scheme": parts.scheme,
        "host": host,
        "path": parts.path,
        "rawQuery": parts.query,
        "fragment": parts.fragment,
        "queryStrings": query,
        "query": {k: ",".join(v) for k, v in query.items()},
    }
    if "@" in parts.netloc:
        result["auth"] = {"username": parts.username or "", "password": parts.password or ""}
    return cel_value(result)


def marshal_json(value: Any) -> celtypes.StringType:
    """Compact JSON with sorted keys (not the spaced form the docs show)."""
    if not isinstance(value, dict | list):
        raise ValueError(f"unexpected type '{type(value).__name__}' passed to marshalJSON")
    return celtypes.StringType(marshal(plain(value)))


def first(items: Any) -> Any:
    if not isinstance(items, list):
        raise TypeError("no such overload")
    return items[0] if items else None


def last(items: Any) -> Any:
    if not isinstance(items, list):
        raise TypeError("no such overload")
    return items[-1] if items else None


def translate(text: Any, pattern: Any, replacement: Any) -> celtypes.StringType:
    """Go's regexp.ReplaceAllString: `$1`, `${1}` and `${name}` expand, `$$` is a dollar."""
    try:
        compiled = re.compile(str(pattern))
    except re.error as exc:
        raise ValueError(f"failed to compile regex '{pattern}': {exc}") from None

    def expand(found: re.Match[str]) -> str:
        def group(ref: re.Match[str]) -> str:
            if ref.group(1) == "$":
                return "$"
            name = ref.group(2) or ref.group(3)
            try:
                return found.group(int(name) if name.isdigit() else name) or ""
            except IndexError:
                return ""

        return _GO_GROUP.sub(group, str(replacement))

    return celtypes.StringType(compiled.sub(expand, str(text)))


def _string_method(function: Callable[..., Any]) -> Callable[..., Any]:
    def method(text: Any, *args: Any) -> Any:
        if not isinstance(text, str):
            raise TypeError("no such overload")
        return function(str(text), *args)

    return method


def _same_number_kind(left: Any, right: Any) -> None:
    """cel-go has no mixed int/double arithmetic: `body.count + 1` is an error (JSON numbers are doubles)."""
    kinds = {type(v) for v in (left, right) if isinstance(v, celtypes.IntType | celtypes.DoubleType)}
    if len(kinds) == 2:
        raise TypeError("no such overload")


def _checked_add(left: Any, right: Any) -> Any:
    _same_number_kind(left, right)
    total = left + right
    if isinstance(total, str | bytes | list) and len(total) > MAX_VALUE_CHARS:
        raise ValueError(f"value over {MAX_VALUE_CHARS} elements")
    if isinstance(total, str) and not isinstance(total, celtypes.StringType):
        return celtypes.StringType(total)
    if isinstance(total, list) and not isinstance(total, celtypes.ListType):
        return celtypes.ListType(total)
    return total


def _arithmetic(operation: Callable[[Any, Any], Any]) -> Callable[[Any, Any], Any]:
    def checked(left: Any, right: Any) -> Any:
        _same_number_kind(left, right)
        return operation(left, right)

    return checked


def _split(text: str, separator: Any, limit: Any = -1) -> Any:
    limit = int(limit)
    if limit == 0:
        return celtypes.ListType([])
    parts = text.split(str(separator), limit - 1) if limit > 0 else text.split(str(separator))
    if str(separator) == "":
        parts = list(text) if limit < 0 else [*text[: limit - 1], text[limit - 1 :]]
    return celtypes.ListType([celtypes.StringType(p) for p in parts])


def _join(items: Any, separator: Any = "") -> celtypes.StringType:
    if not isinstance(items, list):
        raise TypeError("no such overload")
    return celtypes.StringType(str(separator).join(str(i) for i in items))


def _replace(text: str, old: Any, new: Any, count: Any = -1) -> celtypes.StringType:
    return celtypes.StringType(text.replace(str(old), str(new), int(count)))


def _substring(text: str, start: Any, end: Any = None) -> celtypes.StringType:
    stop = len(text) if end is None else int(end)
    if not 0 <= int(start) <= stop <= len(text):
        raise ValueError(f"index out of range: {start}")
    return celtypes.StringType(text[int(start) : stop])


def _char_at(text: str, index: Any) -> celtypes.StringType:
    if not 0 <= int(index) <= len(text):
        raise ValueError(f"index out of range: {index}")
    return celtypes.StringType(text[int(index) : int(index) + 1])


def functions(read_secret: Callable[[str, str], bytes]) -> dict[str, Callable[..., Any]]:
    """Every function an expression may call, by name (methods take their receiver first)."""
    return {
        "match": match,
        "canonical": canonical,
        "truncate": truncate,
        "compareSecret": make_compare_secret(read_secret),
        "parseJSON": _string_method(parse_json),
        "parseYAML": _string_method(parse_yaml),
        "parseURL": _string_method(parse_url),
        "marshalJSON": marshal_json,
        "first": first,
        "last": last,
        "translate": _string_method(translate),
        "split": _string_method(_split),
        "join": _join,
        "replace": _string_method(_replace),
        "lowerAscii": _string_method(
            lambda s: celtypes.StringType("".join(c.lower() if c.isascii() else c for c in s))
        ),
        "upperAscii": _string_method(
            lambda s: celtypes.StringType("".join(c.upper() if c.isascii() else c for c in s))
        ),
        "substring": _string_method(_substring),
        "indexOf": _string_method(lambda s, sub: celtypes.IntType(s.find(str(sub)))),
        "lastIndexOf": _string_method(lambda s, sub: celtypes.IntType(s.rfind(str(sub)))),
        "charAt": _string_method(_char_at),
        "trim": _string_method(lambda s: celtypes.StringType(s.strip())),
        "_+_": _checked_add,
        "_-_": _arithmetic(operator.sub),
        "_*_": _arithmetic(operator.mul),
        "_/_": _arithmetic(operator.truediv),
        "_%_": _arithmetic(operator.mod),
    }
