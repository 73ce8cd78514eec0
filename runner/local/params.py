"""Param declarations and values: type inference, defaults, validation and propagation (§1.1)."""

from __future__ import annotations

from typing import Any

from runner.local.substitution import ParamValue, Replacements, add_value, replace_text, whole_reference


class ParamError(Exception):
    """Param values that do not fit their declarations; `kind` says which rule (missing, type, keys, enum)."""

    def __init__(self, kind: str, message: str, names: list[str] | None = None) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.names = names or []


def param_type(decl: dict[str, Any]) -> str:
    """The declared or inferred type of a param (`string`, `array` or `object`), as Tekton's SetDefaults does."""
    if decl.get("type"):
        return str(decl["type"])
    if decl.get("properties"):
        return "object"
    default = decl.get("default")
    if isinstance(default, list):
        return "array"
    if isinstance(default, dict):
        return "object"
    return "string"


def value_type(value: Any) -> str:
    """The type of a param value as given in YAML."""
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return "string"


def _text(value: Any) -> str:
    # YAML turns `value: 1` or `value: true` into numbers and booleans; Tekton's JSON decoding reads them as text.
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)


def normalise_value(value: Any) -> ParamValue:
    """A param value with scalars as strings (arrays of strings, objects of strings)."""
    if isinstance(value, list):
        return [_text(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _text(v) for k, v in value.items()}
    return _text(value)


def given_values(params: list[dict[str, Any]] | None) -> dict[str, ParamValue]:
    """`[{name, value}]` from a run or PipelineTask as a mapping."""
    return {str(p.get("name")): normalise_value(p.get("value")) for p in params or [] if isinstance(p, dict)}


def resolve_params(
    decls: list[dict[str, Any]] | None, given: dict[str, ParamValue], *, propagate: bool
) -> dict[str, ParamValue]:
    """The values a run sees: given values checked against declarations, defaults filled in.

    With `propagate` (inline specs), given values for params that are not declared are kept too.
    """
    decls = [d for d in decls or [] if isinstance(d, dict)]
    values: dict[str, ParamValue] = {}
    missing, mistyped, defaulted = [], [], []
    missing_keys: dict[str, list[str]] = {}
    for decl in decls:
        name, kind = str(decl.get("name")), param_type(decl)
        if name in given:
            value = given[name]
            if kind == "object" and isinstance(value, str) and whole_reference(value):
                # An unresolved reference given for an object reads as an object with no keys, so the
                # declared default keys apply (Tekton's StepAction params behave so).
                value = {}
            if value_type(value) != kind and not (isinstance(value, str) and whole_reference(value)):
                mistyped.append(name)
                continue
            if kind == "object" and isinstance(value, dict):
                merged = dict(normalise_value(decl.get("default") or {}))  # type: ignore[arg-type]
                merged.update(value)
                value = merged
        elif "default" in decl:
            value = normalise_value(decl["default"])
            defaulted.append(name)
        else:
            missing.append(name)
            continue
        if kind == "object" and isinstance(value, dict):
            absent = [k for k in (decl.get("properties") or {}) if k not in value]
            if absent:
                missing_keys[name] = absent
        values[name] = value
    if missing:
        raise ParamError(
            "missing", f"missing values for these params which have no default values: [{' '.join(missing)}]", missing
        )
    if mistyped:
        raise ParamError("type", f"param types don't match the user-specified type: [{' '.join(mistyped)}]", mistyped)
    if missing_keys:
        listed = " ".join(f"{k}:[{' '.join(v)}]" for k, v in missing_keys.items())
        raise ParamError(
            "keys", f"missing keys for these params which are required in ParamSpec's properties map[{listed}]"
        )
    for decl in decls:
        enum, name = decl.get("enum"), str(decl.get("name"))
        given_value = values.get(name)
        if enum and isinstance(given_value, str) and given_value and given_value not in [_text(e) for e in enum]:
            raise ParamError("enum", f"param `{name}` value: {given_value} is not in the enum list")
    if propagate:
        for name, value in given.items():
            values.setdefault(name, value)
    _resolve_defaults(values, defaulted)
    return values


def _resolve_defaults(values: dict[str, ParamValue], defaulted: list[str]) -> None:
    # A string default may name other params (`$(params.other)`); Tekton resolves those after the run's values.
    others = Replacements()
    for name, value in values.items():
        if name not in defaulted:
            add_value(others, "params", name, value)
    for name in defaulted:
        value = values[name]
        if isinstance(value, str) and "$(" in value:
            values[name] = replace_text(value, others)


def param_replacements(values: dict[str, ParamValue]) -> Replacements:
    """The `$(params.*)` variables (and legacy `$(inputs.params.*)`) for resolved values."""
    reps = Replacements()
    for name, value in values.items():
        add_value(reps, "params", name, value)
        add_value(reps, "inputs.params", name, value)
    return reps
