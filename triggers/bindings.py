"""Binding params evaluated against an event, as Triggers does (tektoncd/triggers: pkg/template/event.go,
jsonpath.go): the event object, the `$(...)` expressions of each value, template defaults for what is missing."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from triggers.headers import canonical_key, joined
from triggers.jsonbody import BodyError, decode
from triggers.jsonpath import JSONPathError, evaluate
from triggers.resources import Param, ParamSpec


class BindingError(Exception):
    """A trigger whose params cannot be resolved; the message is upstream's."""


def event_object(body: bytes, headers: Mapping[str, list[str]], extensions: Mapping[str, Any], event_id: str) -> Any:
    """What `$(body...)`, `$(header...)`, `$(extensions...)` and `$(context.eventID)` look into."""
    try:
        data = decode(body) if body else None
    except BodyError as exc:
        raise BindingError(
            f"failed to ApplyEventValuesToParams: failed to marshal event: failed to unmarshal request body: {exc}"
        ) from None
    return {"header": joined(headers), "body": data, "extensions": dict(extensions), "context": {"eventID": event_id}}


def find_expressions(value: str) -> list[tuple[str, str]]:
    """Each `$(...)` of a value as (path to evaluate, original text): it ends at the first unbalanced `)`, and a
    `header.` path has its name canonicalised (findTektonExpressions)."""
    found = []
    for piece in value.split("$(")[1:]:
        depth = 0
        for index, char in enumerate(piece):
            if char == "(":
                depth += 1
            elif char == ")":
                depth -= 1
                if depth < 0:
                    raw = piece[:index]
                    original = f"$({raw})"
                    if raw.startswith("header."):
                        raw = "header." + canonical_key(raw[len("header.") :])
                    found.append((raw, original))
                    break
    return found


def resolve_params(params: Sequence[Param], template_params: Sequence[ParamSpec] | None, event: Any) -> dict[str, str]:
    """The param values of a trigger: template defaults, overridden by each binding's evaluated value. A
    failing expression takes the template default of its param, else the trigger fails. JSONPath results
    have `$(` written as `$$(` (Triggers v0.34+), so event text cannot inject variables."""
    defaults = {spec.name: spec.default for spec in template_params or () if spec.default is not None}
    resolved = dict(defaults)
    for param in params:
        text = param.value
        for path, original in find_expressions(param.value):
            try:
                value = evaluate(event, path).replace("$(", "$$(")
            except JSONPathError as exc:
                if param.name in defaults:
                    value = defaults[param.name]
                else:
                    raise BindingError(
                        f"failed to ApplyEventValuesToParams: failed to replace JSONPath value for param "
                        f"{param.name}: {param.value}: {exc}"
                    ) from None
            text = text.replace(original, value)
        resolved[param.name] = text
    return resolved


def merged_binding_params(groups: Sequence[Sequence[Param]]) -> list[Param]:
    """All params of a trigger's bindings in order; a name twice fails (resolveBindingsToParams)."""
    params = [param for group in groups for param in group]
    seen: set[str] = set()
    for param in params:
        if param.name in seen:
            raise BindingError(f"failed to resolve bindings: duplicate param name: {param.name}")
        seen.add(param.name)
    return params
