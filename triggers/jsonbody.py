"""Request bodies decoded as Go's encoding/json decodes them for Triggers, with Go's error messages.

Go checks the whole text before decoding, so the first syntax error is reported the way its scanner words it
(`unexpected end of JSON input`, `invalid character 'h' looking for beginning of value`); numbers become
float64; invalid UTF-8 becomes U+FFFD. The sink's 400 answer and the bindings' "failed to unmarshal request
body" carry these messages (tektoncd/triggers: pkg/sink/validate_payload.go, pkg/template/event.go).
"""

from __future__ import annotations

import json
import math
from typing import Any

_SPACE = b" \t\r\n"
_DIGITS = b"0123456789"
_HEX = b"0123456789abcdefABCDEF"
_EOF = "unexpected end of JSON input"
# Go stops at 10,000 levels; Python's decoder and cel-python recurse, so taskhub stops at 500.
MAX_DEPTH = 500


class BodyError(ValueError):
    """A body Go's json.Unmarshal refuses; the message is Go's."""


def _quote_char(byte: int) -> str:
    """Go's encoding/json quoteChar."""
    if byte == ord("'"):
        return "'\\''"
    if byte == ord('"'):
        return "'\"'"
    if byte < 0x20 or byte == 0x7F:  # strconv.Quote's escapes
        named = {7: "\\a", 8: "\\b", 9: "\\t", 10: "\\n", 11: "\\v", 12: "\\f", 13: "\\r"}
        escaped = named.get(byte) or "\\x" + format(byte, "02x")
        return f"'{escaped}'"
    return f"'{chr(byte)}'"


def _invalid(data: bytes, index: int, context: str) -> str:
    return f"invalid character {_quote_char(data[index])} {context}"


def syntax_error(data: bytes) -> str | None:
    """Go's checkValid: the message of the first syntax error of a JSON text, or None when it is valid."""
    n = len(data)
    stack: list[str] = []
    i = 0
    while True:
        # A value starts here.
        while i < n and data[i] in _SPACE:
            i += 1
        if i == n:
            return _EOF
        c = data[i]
        if len(stack) >= MAX_DEPTH and c in b"{[":
            return "exceeded max depth"
        if c == ord("{"):
            i += 1
            while i < n and data[i] in _SPACE:
                i += 1
            if i == n:
                return _EOF
            if data[i] == ord("}"):
                i += 1
            else:
                i, error = _object_key(data, i)
                if error:
                    return error
                stack.append("object")
                continue
        elif c == ord("["):
            i += 1
            while i < n and data[i] in _SPACE:
                i += 1
            if i == n:
                return _EOF
            if data[i] == ord("]"):
                i += 1
            else:
                stack.append("array")
                continue
        elif c == ord('"'):
            i, error = _string(data, i)
            if error:
                return error
        elif c == ord("-") or c in _DIGITS:
            i, error = _number(data, i)
            if error:
                return error
        elif c in b"tfn":
            i, error = _literal(data, i)
            if error:
                return error
        else:
            return _invalid(data, i, "looking for beginning of value")
        # A value ended: close what it ends.
        while True:
            while i < n and data[i] in _SPACE:
                i += 1
            if not stack:
                return _invalid(data, i, "after top-level value") if i < n else None
            if i == n:
                return _EOF
            c = data[i]
            if stack[-1] == "object":
                if c == ord("}"):
                    stack.pop()
                    i += 1
                    continue
                if c != ord(","):
                    return _invalid(data, i, "after object key:value pair")
                i += 1
                while i < n and data[i] in _SPACE:
                    i += 1
                if i == n:
                    return _EOF
                i, error = _object_key(data, i)
                if error:
                    return error
                break
            if c == ord("]"):
                stack.pop()
                i += 1
                continue
            if c != ord(","):
                return _invalid(data, i, "after array element")
            i += 1
            break


def _object_key(data: bytes, i: int) -> tuple[int, str | None]:
    """A key string and its colon, starting at i (past spaces)."""
    if data[i] != ord('"'):
        return i, _invalid(data, i, "looking for beginning of object key string")
    i, error = _string(data, i)
    if error:
        return i, error
    while i < len(data) and data[i] in _SPACE:
        i += 1
    if i == len(data):
        return i, _EOF
    if data[i] != ord(":"):
        return i, _invalid(data, i, "after object key")
    return i + 1, None


def _string(data: bytes, i: int) -> tuple[int, str | None]:
    i += 1
    n = len(data)
    while i < n:
        c = data[i]
        if c == ord('"'):
            return i + 1, None
        if c < 0x20:
            return i, _invalid(data, i, "in string literal")
        if c == ord("\\"):
            i += 1
            if i == n:
                return i, _EOF
            if data[i] == ord("u"):
                for _ in range(4):
                    i += 1
                    if i == n:
                        return i, _EOF
                    if data[i] not in _HEX:
                        return i, _invalid(data, i, "in \\u hexadecimal character escape")
            elif data[i] not in b'"\\/bfnrt':
                return i, _invalid(data, i, "in string escape code")
        i += 1
    return i, _EOF


def _digits(data: bytes, i: int, context: str) -> tuple[int, str | None]:
    """At least one digit at i, then as many as follow."""
    if i == len(data):
        return i, _EOF
    if data[i] not in _DIGITS:
        return i, _invalid(data, i, context)
    while i < len(data) and data[i] in _DIGITS:
        i += 1
    return i, None


def _number(data: bytes, i: int) -> tuple[int, str | None]:
    n = len(data)
    if data[i] == ord("-"):
        i += 1
    if i == n:
        return i, _EOF
    if data[i] == ord("0"):
        i += 1
    else:
        i, error = _digits(data, i, "in numeric literal")
        if error:
            return i, error
    if i < n and data[i] == ord("."):
        i, error = _digits(data, i + 1, "after decimal point in numeric literal")
        if error:
            return i, error
    if i < n and data[i] in b"eE":
        i += 1
        if i < n and data[i] in b"+-":
            i += 1
        return _digits(data, i, "in exponent of numeric literal")
    return i, None


def _literal(data: bytes, i: int) -> tuple[int, str | None]:
    word = {ord("t"): b"true", ord("f"): b"false", ord("n"): b"null"}[data[i]]
    for offset in range(1, len(word)):
        if i + offset == len(data):
            return i + offset, _EOF
        if data[i + offset] != word[offset]:
            expected = chr(word[offset])
            return i + offset, _invalid(data, i + offset, f"in literal {word.decode()} (expecting '{expected}')")
    return i + len(word), None


def _go_float(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        raise BodyError(f"json: cannot unmarshal number {text} into Go value of type float64")
    return value


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def decode(data: bytes) -> Any:
    """A JSON text as Go decodes it into interface{}: numbers as float, invalid UTF-8 as U+FFFD. BodyError with
    Go's message for what Go refuses."""
    text = data.decode("utf-8", "replace")
    if data.count(b"{") + data.count(b"[") <= MAX_DEPTH:  # cannot nest too deep: Python's decoder may say yes
        try:  # what Python's C decoder takes without NaN and Infinity, Go's scanner takes too; a 7 kB push
            # event costs it 0.03 ms where syntax_error, in Python, costs 0.9 ms
            return json.loads(text, parse_int=_go_float, parse_float=_go_float, parse_constant=_no_constant)
        except ValueError:
            pass  # Go's words for what is wrong, below
    error = syntax_error(data)
    if error:
        raise BodyError(error)
    return json.loads(text, parse_int=_go_float, parse_float=_go_float)


def _go_type(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, float):
        return "number"
    return "string" if isinstance(value, str) else "array"


def decode_object(data: bytes) -> dict[str, Any] | None:
    """A JSON text decoded into Go's map[string]interface{}: `null` gives None; anything but an object fails."""
    value = decode(data)
    if value is not None and not isinstance(value, dict):
        raise BodyError(f"json: cannot unmarshal {_go_type(value)} into Go value of type map[string]interface {{}}")
    return value
