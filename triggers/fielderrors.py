"""Violations of a manifest, each worded like knative's apis.FieldError that Triggers' admission webhook returns
(`missing field(s): spec.template`, `invalid value: x: metadata.name`), collected so one error names them all."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from catalog.errors import InvalidRequest


class InvalidResource(InvalidRequest):
    """A Triggers resource the admission webhook would refuse; `violations` lists each broken rule."""

    reason = "invalid-resource"

    def __init__(self, kind: str, name: str, violations: list[str]) -> None:
        self.kind, self.name, self.violations = kind, name, list(violations)
        super().__init__(f"{kind} {name!r} is invalid: " + "; ".join(self.violations))


class Violations:
    """The violations found so far while reading one manifest."""

    def __init__(self) -> None:
        self.found: list[str] = []

    def missing(self, *paths: str) -> None:
        self.found.append("missing field(s): " + ", ".join(paths))

    def invalid(self, value: Any, path: str, why: str = "") -> None:
        self.found.append(f"invalid value: {value}: {path}" + (f" ({why})" if why else ""))

    def both(self, *paths: str) -> None:
        self.found.append("expected exactly one, got both: " + ", ".join(paths))

    def neither(self, *paths: str) -> None:
        self.found.append("expected exactly one, got neither: " + ", ".join(paths))

    def disallowed(self, path: str) -> None:
        self.found.append(f"must not set the field(s): {path}")

    def mapping(self, value: Any, path: str) -> Mapping[str, Any]:
        """The value as a mapping; {} (and a violation) when it is something else; {} for null."""
        if value is None:
            return {}
        if not isinstance(value, Mapping):
            self.invalid(_short(value), path, "expected an object")
            return {}
        return value

    def sequence(self, value: Any, path: str) -> list[Any]:
        if value is None:
            return []
        if not isinstance(value, list):
            self.invalid(_short(value), path, "expected a list")
            return []
        return value

    def string(self, value: Any, path: str) -> str:
        if value is None:
            return ""
        if not isinstance(value, str):
            self.invalid(_short(value), path, "expected a string")
            return ""
        return value

    def check(self, kind: str, name: str) -> None:
        if self.found:
            raise InvalidResource(kind, name, self.found)


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
