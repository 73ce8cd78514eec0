"""Go's JSON in Python: the bytes sigs.k8s.io/yaml and encoding/json make of a Tekton manifest.

`tkn bundle push` stores each YAML object as sigs.k8s.io/yaml's YAMLToJSON output: go-yaml v2 (YAML 1.1) resolves
the scalars, map keys become strings, and encoding/json writes compact JSON with keys sorted bytewise, `<`, `>`,
`&`, U+2028 and U+2029 escaped, and floats in Go's shortest form. PyYAML resolves scalars by other rules
(sexagesimal `1:20`, `1e3` as a string, `y` and `n` as strings), so only its parser is used here; the resolution
follows go.yaml.in/yaml/v2 resolve.go and decode.go.

Known gaps: documents are split by the YAML parser, not by Go's `---` line splitter; duplicate keys are refused
(by catalog.manifests) where go-yaml keeps the last one; a `!!timestamp` tag is never checked.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
import struct
from datetime import datetime
from decimal import Decimal
from typing import Any

import yaml

from catalog.manifests import ManifestError, compose_documents

_LOADER: type = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_TAG = "tag:yaml.org,2002:"
_STR, _BOOL, _INT, _FLOAT, _NULL = (_TAG + t for t in ("str", "bool", "int", "float", "null"))
_TIMESTAMP, _BINARY, _MERGE = (_TAG + t for t in ("timestamp", "binary", "merge"))
_RESOLVABLE = {"", _STR, _BOOL, _INT, _FLOAT, _NULL, _TIMESTAMP}
_RESOLVE_MAP: dict[str, tuple[str, Any]] = {
    **{s: (_BOOL, True) for s in ("y", "Y", "yes", "Yes", "YES", "true", "True", "TRUE", "on", "On", "ON")},
    **{s: (_BOOL, False) for s in ("n", "N", "no", "No", "NO", "false", "False", "FALSE", "off", "Off", "OFF")},
    **{s: (_NULL, None) for s in ("", "~", "null", "Null", "NULL")},
    **{s: (_FLOAT, math.nan) for s in (".nan", ".NaN", ".NAN")},
    **{s: (_FLOAT, math.inf) for s in (".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF")},
    **{s: (_FLOAT, -math.inf) for s in ("-.inf", "-.Inf", "-.INF")},
}
# go-yaml looks at the first byte to decide what a plain scalar may be.
_HINTS = {**dict.fromkeys("yYnNtTfFoO~", "M"), **dict.fromkeys("0123456789", "D"), "+": "S", "-": "S", ".": "."}
_YAML_FLOAT = re.compile(r"[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?")
_DOT_FLOAT = re.compile(r"\.[0-9]+([eE][-+]?[0-9]+)?")  # what Go's ParseFloat takes from a leading dot
_BASE_DIGITS = {2: "01", 8: "01234567", 10: "0123456789", 16: "0123456789abcdefABCDEF"}
_INT64 = range(-(2**63), 2**63)

_ESCAPES = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t"}
_GO_SPACE = "\t\n\v\f\r \x85\xa0\u1680\u2028\u2029\u202f\u205f\u3000" + "".join(map(chr, range(0x2000, 0x200B)))
_NEEDS_ESCAPE = re.compile('["\\\\\x00-\x1f<>&\u2028\u2029\ud800-\udfff]')


class _Literal(str):
    """JSON text the encoder copies as it is."""


class _MergeKey:
    """The `<<` key of a mapping."""


_MERGE_KEY = _MergeKey()
_NO_KEY = object()


def quote(text: str) -> str:
    """A JSON string as encoding/json writes it (HTML-safe escaping, invalid UTF-8 as \\ufffd)."""
    return '"' + _NEEDS_ESCAPE.sub(_escape, text) + '"'


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    if char in _ESCAPES:
        return _ESCAPES[char]
    return "\\ufffd" if "\ud800" <= char <= "\udfff" else f"\\u{ord(char):04x}"


def format_float(value: float) -> str:
    """A float64 as encoding/json writes it: the shortest digits, exponent form below 1e-6 and from 1e21."""
    if math.isinf(value) or math.isnan(value):
        raise ValueError(f"json: unsupported value: {value}")
    sign = "-" if math.copysign(1.0, value) < 0 else ""
    if value == 0:
        return sign + "0"
    digits, exponent = _shortest(abs(value))
    if 1e-6 <= abs(value) < 1e21:
        return sign + _fixed(digits, exponent)
    return sign + _scientific(digits, exponent, width=1)


def _float32_key(value: float) -> str:
    """A float map key as sigs.k8s.io/yaml writes it: strconv.FormatFloat(key, 'g', -1, 32)."""
    if math.isnan(value):
        return ".nan"
    try:
        single = struct.unpack("<f", struct.pack("<f", value))[0]
    except OverflowError:
        single = math.copysign(math.inf, value)
    if math.isinf(single):
        return ".inf" if single > 0 else "-.inf"
    sign = "-" if math.copysign(1.0, single) < 0 else ""
    if single == 0:
        return sign + "0"
    for precision in range(9):
        text = f"{abs(single):.{precision}e}"
        if struct.unpack("<f", struct.pack("<f", float(text)))[0] == abs(single):
            break
    digits, exponent = _shortest(float(text))
    if exponent < -4 or exponent >= 6:
        return sign + _scientific(digits, exponent, width=2)
    return sign + _fixed(digits, exponent)


def _shortest(value: float) -> tuple[str, int]:
    """The shortest round-tripping digits of a positive float (no leading or trailing zeros) and its exponent."""
    _, digit_tuple, exponent = Decimal(repr(value)).normalize().as_tuple()
    digits = "".join(map(str, digit_tuple))
    return digits, len(digits) - 1 + int(exponent)


def _fixed(digits: str, exponent: int) -> str:
    point = exponent + 1
    if point <= 0:
        return "0." + "0" * -point + digits
    if point >= len(digits):
        return digits + "0" * (point - len(digits))
    return digits[:point] + "." + digits[point:]


def _scientific(digits: str, exponent: int, *, width: int) -> str:
    mantissa = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
    return f"{mantissa}e{'-' if exponent < 0 else '+'}{abs(exponent):0{width}d}"


def marshal(value: Any, *, limit: int | None = None) -> str:
    """Compact JSON as Go's json.Marshal writes a decoded YAML value (map keys sorted); ValueError past limit chars."""
    parts: list[str] = []
    size = 0
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, _Literal):
            text = str(item)
        elif item is None:
            text = "null"
        elif isinstance(item, bool):
            text = "true" if item else "false"
        elif isinstance(item, str):
            text = quote(item)
        elif isinstance(item, int):
            text = str(item)
        elif isinstance(item, float):
            text = format_float(item)
        elif isinstance(item, dict | list) and not item:
            text = "{}" if isinstance(item, dict) else "[]"
        elif isinstance(item, dict):
            pieces: list[Any] = []
            for index, key in enumerate(sorted(item)):
                pieces += [_Literal(("," if index else "{") + quote(key) + ":"), item[key]]
            stack += [_Literal("}"), *reversed(pieces)]
            continue
        elif isinstance(item, list):
            pieces = []
            for index, element in enumerate(item):
                pieces += [_Literal("," if index else "["), element]
            stack += [_Literal("]"), *reversed(pieces)]
            continue
        else:
            raise ValueError(f"json: unsupported type: {type(item).__name__}")
        parts.append(text)
        size += len(text)
        if limit is not None and size > limit:
            raise ValueError(f"its JSON is over {limit} characters")
    return "".join(parts)


def documents(text: str, *, limit: int) -> list[tuple[Any, str]]:
    """Each non-null document of a YAML or JSON stream with its JSON, as apimachinery's YAMLOrJSONDecoder hands
    them to a RawExtension: a text whose first non-space character is `{` is a JSON stream whose values are kept
    verbatim; anything else is YAML, converted as sigs.k8s.io/yaml does. ManifestError for what Go cannot parse."""
    if not text.lstrip(_GO_SPACE).startswith("{"):
        try:
            return [(value, marshal(value, limit=limit)) for value in yaml_values(text) if value is not None]
        except ValueError as exc:
            raise ManifestError(str(exc)) from None
    decoder, index, found = json.JSONDecoder(parse_constant=_no_constant), 0, []
    try:
        while (index := _skip_space(text, index)) < len(text):
            value, end = decoder.raw_decode(text, index)
            if value is not None:
                found.append((value, text[index:end]))
            index = end
    except (ValueError, RecursionError) as exc:
        raise ManifestError(f"invalid JSON: {exc}") from None
    return found


def _skip_space(text: str, index: int) -> int:
    while index < len(text) and text[index] in " \t\n\r":
        index += 1
    return index


def _no_constant(name: str) -> None:
    raise ValueError(f"{name} is not JSON")


def time_json(moment: datetime) -> str:
    """A time as Go's time.Time marshals (RFC 3339, fraction without trailing zeros, Z for UTC); naive means UTC."""
    offset = moment.utcoffset()
    seconds = int(offset.total_seconds()) if offset else 0
    text = f"{moment.year:04d}-{moment:%m-%dT%H:%M:%S}"  # %Y drops the leading zeros of years below 1000
    if moment.microsecond:
        text += f".{moment.microsecond:06d}".rstrip("0")
    if not seconds:
        return f'"{text}Z"'
    zone = int(seconds / 60)  # Go truncates toward zero
    return f'"{text}{"-" if zone < 0 else "+"}{abs(zone) // 60:02d}:{abs(zone) % 60:02d}"'


def yaml_values(text: str) -> list[Any]:
    """The value of each non-empty document of a YAML text as go-yaml v2 decodes it into interface{}, with map keys
    made strings as sigs.k8s.io/yaml does. ManifestError for hostile YAML and for what Go refuses."""
    compose_documents(text)  # the safety checks: nesting, alias expansion, duplicate keys
    loader = _LOADER(text)
    try:
        return _build(loader)
    except yaml.YAMLError as exc:
        raise ManifestError(f"invalid YAML: {' '.join(str(exc).split())}") from None
    finally:
        loader.dispose()


class _Collection:
    __slots__ = ("anchor", "key", "value")
    key: Any

    def __init__(self, value: dict[str, Any] | list[Any], anchor: str | None) -> None:
        self.value, self.anchor, self.key = value, anchor, _NO_KEY


def _build(loader: Any) -> list[Any]:
    documents: list[Any] = []
    stack: list[_Collection] = []
    anchors: dict[str, Any] = {}
    open_anchors: set[str] = set()
    root: Any = None
    value: Any
    while loader.check_event():
        event = loader.get_event()
        if isinstance(event, yaml.DocumentStartEvent):
            anchors, open_anchors, root = {}, set(), None
            continue
        if isinstance(event, yaml.DocumentEndEvent):
            if root is not None:
                documents.append(root)
            continue
        if isinstance(event, yaml.CollectionStartEvent):
            stack.append(_Collection({} if isinstance(event, yaml.MappingStartEvent) else [], event.anchor))
            if event.anchor:
                open_anchors.add(event.anchor)
            continue
        if isinstance(event, yaml.CollectionEndEvent):
            done = stack.pop()
            value = done.value
            if done.anchor:
                anchors[done.anchor] = value
                open_anchors.discard(done.anchor)
        elif isinstance(event, yaml.ScalarEvent):
            at_key = bool(stack) and isinstance(stack[-1].value, dict) and stack[-1].key is _NO_KEY
            implicit = event.tag is None and event.implicit[0]
            if at_key and event.value == "<<" and (implicit or event.tag == _MERGE):
                value = _MERGE_KEY
            else:
                value = _resolve("" if implicit else event.tag or _STR, event.value)
            if event.anchor:
                anchors[event.anchor] = "<<" if value is _MERGE_KEY else value
        elif isinstance(event, yaml.AliasEvent):
            if event.anchor in open_anchors or event.anchor not in anchors:
                raise ManifestError(f"YAML alias *{event.anchor} refers to itself or to nothing")
            value = anchors[event.anchor]
        else:
            continue
        if not stack:
            root = value
            continue
        parent = stack[-1]
        if isinstance(parent.value, list):
            parent.value.append(value)
        elif parent.key is _NO_KEY:
            parent.key = value if value is _MERGE_KEY else _key(value)
        else:
            if parent.key is _MERGE_KEY:
                _merge(parent.value, value)
            else:
                parent.value[parent.key] = value
            parent.key = _NO_KEY
    return documents


def _merge(target: dict[str, Any], value: Any) -> None:
    """go-yaml v2's `<<`: merged keys overwrite what came before; in a list of maps, earlier maps win."""
    if isinstance(value, dict):
        target.update(value)
    elif isinstance(value, list) and all(isinstance(item, dict) for item in value):
        for item in reversed(value):
            target.update(item)
    else:
        raise ManifestError("map merge requires map or sequence of maps as the value")


def _key(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int) and value in _INT64:
        return str(value)
    if isinstance(value, float):
        return _float32_key(value)
    raise ManifestError(f"unsupported map key {value!r} (sigs.k8s.io/yaml cannot make it a JSON key)")


def _resolve(tag: str, text: str) -> Any:
    """go-yaml v2's resolve(): "" is a plain scalar without a tag; other tags are explicit."""
    if tag == _BINARY:
        try:
            return base64.b64decode(text.replace("\n", "").replace("\r", ""), validate=True).decode("utf-8", "replace")
        except binascii.Error:
            raise ManifestError("!!binary value contains invalid base64 data") from None
    if tag not in _RESOLVABLE or tag in (_STR, _TIMESTAMP):
        return text
    resolved_tag, value = _STR, text  # type: tuple[str, Any]
    hint = _HINTS.get(text[:1]) if text else "N"
    if hint is not None:
        if text in _RESOLVE_MAP:
            resolved_tag, value = _RESOLVE_MAP[text]
        elif hint == "." and _DOT_FLOAT.fullmatch(text) and math.isfinite(float(text)):
            resolved_tag, value = _FLOAT, float(text)
        elif hint in "DS":
            resolved_tag, value = _resolve_number(text)
    if tag in ("", resolved_tag):
        return value
    if tag == _FLOAT and resolved_tag == _INT and value in _INT64:
        return float(value)
    short = {_STR: "!!str", _BOOL: "!!bool", _INT: "!!int", _FLOAT: "!!float", _NULL: "!!null"}
    raise ManifestError(f"cannot decode {short[resolved_tag]} `{text}` as a {short[tag]}")


def _resolve_number(text: str) -> tuple[str, Any]:
    plain = text.replace("_", "")
    signed, _ = _parse_uint(plain[1:] if plain[0] in "+-" else plain)
    if signed is not None:
        value = -signed if plain.startswith("-") else signed
        if value in _INT64:
            return _INT, value
    unsigned, too_big = _parse_uint(plain)
    if unsigned is not None and unsigned < 2**64:
        return _INT, unsigned
    if _YAML_FLOAT.fullmatch(plain) and math.isfinite(number := float(plain)):
        return _FLOAT, number
    if too_big:  # go-yaml falls back to math/big for integers past 64 bits that are not decimal floats
        return _INT, unsigned
    return _STR, text


def _parse_uint(text: str) -> tuple[int | None, bool]:
    """Go's strconv.ParseUint(text, 0, ...) without the range check: (value or None, whether it needs > 64 bits)."""
    base, digits = 10, text
    if text[:1] == "0" and len(text) >= 3 and text[1] in "bBoOxX":
        base, digits = {"b": 2, "o": 8, "x": 16}[text[1].lower()], text[2:]
    elif text[:1] == "0":
        base, digits = 8, text[1:]
    if (not digits and base != 8) or not text or any(c not in _BASE_DIGITS[base] for c in digits):
        return None, False
    try:
        value = int(digits, base) if digits else 0
    except ValueError:  # more digits than Python converts by default
        return None, False
    return value, value >= 2**64
