"""HTTP header names as Go's net/http hands them to Triggers: canonical keys, every value kept in order."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

# Go's validHeaderFieldByte: the token characters of RFC 7230.
_TOKEN = frozenset("!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")

Headers = dict[str, list[str]]


def canonical_key(name: str) -> str:
    """A header name as Go's textproto.CanonicalMIMEHeaderKey writes it (`x-github-event` -> `X-Github-Event`).

    A name with a byte that is not a token character (a space, a colon) is returned unchanged, as Go does.
    """
    if not name or any(c not in _TOKEN for c in name):
        return name
    out, upper = [], True
    for c in name:
        out.append(c.upper() if upper else c.lower())
        upper = c == "-"
    return "".join(out)


def canonical_headers(pairs: Iterable[tuple[str, str]] | Mapping[str, Iterable[str]]) -> Headers:
    """The header map the sink sees: canonical names, repeated values in arrival order, `Host` left out
    (Go's server moves it to Request.Host; tektoncd/triggers: pkg/sink/sink.go passes request.Header on)."""
    items: Iterable[tuple[str, str]]
    if isinstance(pairs, Mapping):
        items = ((name, value) for name, values in pairs.items() for value in values)
    else:
        items = pairs
    headers: Headers = {}
    for name, value in items:
        key = canonical_key(name)
        if key != "Host":
            headers.setdefault(key, []).append(value)
    return headers


def first_value(headers: Mapping[str, list[str]], name: str) -> str:
    """Go's http.Header.Get: the first value of the canonicalised name, or ""."""
    values = headers.get(canonical_key(name))
    return values[0] if values else ""


def joined(headers: Mapping[str, list[str]]) -> dict[str, str]:
    """Each header's values joined with "," (no space), as bindings see them (tektoncd/triggers:
    pkg/template/event.go newEvent)."""
    return {name: ",".join(values) for name, values in headers.items()}
