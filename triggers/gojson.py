"""Go's encoding/json output in Python: compact JSON as json.Marshal writes a decoded value.

Keys sorted bytewise, `<`, `>`, `&`, U+2028 and U+2029 escaped, invalid UTF-8 as \ufffd, floats in Go's shortest
form (exponent below 1e-6 and from 1e21). Tekton Triggers hands JSON text written this way to interceptors and
into params ($(body), $(extensions)), so taskhub's triggers/ writes it the same way: a param that holds an object
or a number reads as it would on a cluster.
"""

from __future__ import annotations

import math
import re
from decimal import Decimal
from typing import Any

_ESCAPES = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t"}
_NEEDS_ESCAPE = re.compile('["\\\\\x00-\x1f<>&\u2028\u2029\ud800-\udfff]')


class _Literal(str):
    """JSON text the encoder copies as it is."""


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
