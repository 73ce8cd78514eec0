"""Tekton's `$(...)` variable substitution (pkg/substitution): one literal pass per group of variables."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

# Innermost `$(...)` only, so `$(cat $(workspaces.w.path)/f)` finds the workspace reference and
# leaves the shell's command substitution alone, as Tekton's literal replacer does.
_REFERENCE = re.compile(r"\$\(([^()$]*)\)")

ParamValue = str | list[str] | dict[str, str]


@dataclass
class Replacements:
    """The variables of one substitution pass: string values, whole arrays and whole objects by key."""

    strings: dict[str, str] = field(default_factory=dict)
    arrays: dict[str, list[str]] = field(default_factory=dict)
    objects: dict[str, dict[str, str]] = field(default_factory=dict)

    def update(self, other: Replacements) -> None:
        """Adds the variables of another pass to this one."""
        self.strings.update(other.strings)
        self.arrays.update(other.arrays)
        self.objects.update(other.objects)

    def __bool__(self) -> bool:
        return bool(self.strings or self.arrays or self.objects)


def name_forms(prefix: str, name: str) -> list[str]:
    """The spellings Tekton accepts for one variable: `p.n`, `p["n"]` and `p['n']`."""
    return [f"{prefix}.{name}", f'{prefix}["{name}"]', f"{prefix}['{name}']"]


def add_value(reps: Replacements, prefix: str, name: str, value: ParamValue) -> None:
    """Registers a string, array or object value under every spelling of `prefix.name`."""
    for base in name_forms(prefix, name):
        if isinstance(value, list):
            reps.arrays[base] = value
            reps.arrays[base + "[*]"] = value
            for i, item in enumerate(value):
                reps.strings[f"{base}[{i}]"] = item
        elif isinstance(value, dict):
            reps.objects[base] = value
            reps.objects[base + "[*]"] = value
            for key, item in value.items():
                reps.strings[f"{base}.{key}"] = item
        else:
            reps.strings[base] = value


def replace_text(text: str, reps: Replacements) -> str:
    """`text` with every known `$(key)` replaced by its string value; unknown references stay verbatim."""
    if "$(" not in text or not reps.strings:
        return text
    strings = reps.strings
    return _REFERENCE.sub(lambda m: strings.get(m.group(1), m.group(0)), text)


def whole_reference(text: str) -> str | None:
    """The key when `text` is exactly one `$(key)`, else None."""
    match = _REFERENCE.fullmatch(text.strip()) if isinstance(text, str) else None
    return match.group(1) if match else None


def substitute(value: Any, reps: Replacements) -> Any:
    """Substitutes through nested lists and mappings; a list element that is one array reference expands in place."""
    if isinstance(value, str):
        return replace_text(value, reps)
    if isinstance(value, list):
        out: list[Any] = []
        for item in value:
            key = whole_reference(item) if isinstance(item, str) else None
            if key is not None and key in reps.arrays:
                out.extend(reps.arrays[key])
            else:
                out.append(substitute(item, reps))
        return out
    if isinstance(value, dict):
        return {k: substitute(v, reps) for k, v in value.items()}
    return value


def substitute_param_value(value: Any, reps: Replacements) -> Any:
    """A param value after substitution: a whole `$(a[*])` or `$(o[*])` becomes the array or object itself."""
    if isinstance(value, str):
        key = whole_reference(value)
        if key is not None:
            if key in reps.arrays:
                return list(reps.arrays[key])
            if key in reps.objects:
                return dict(reps.objects[key])
        return replace_text(value, reps)
    return substitute(value, reps)


def references(value: Any) -> Iterator[str]:
    """Every `$(key)` key found in a string or nested structure."""
    if isinstance(value, str):
        if "$(" in value:
            yield from (m.group(1) for m in _REFERENCE.finditer(value))
    elif isinstance(value, list):
        for item in value:
            yield from references(item)
    elif isinstance(value, dict):
        for item in value.values():
            yield from references(item)


_TASK_RESULT = re.compile(
    r"^(?:tasks|finally)\.(?P<task>[^.\[\]]+)\.results(?:\.(?P<dot>[^.\[\]]+)|\[[\"'](?P<br>[^\"']+)[\"']\])"
    r"(?:\[(?P<index>\*|\d+)\]|\.(?P<key>[^.\[\]]+))?$"
)
_STEP_RESULT = re.compile(
    r"^steps\.(?P<task>[^.\[\]]+)\.results(?:\.(?P<dot>[^.\[\]]+)|\[[\"'](?P<br>[^\"']+)[\"']\])"
    r"(?:\[(?P<index>\*|\d+)\]|\.(?P<key>[^.\[\]]+))?$"
)


@dataclass(frozen=True)
class ResultRef:
    """A parsed `$(tasks.<t>.results.<r>...)` or `$(steps.<s>.results.<r>...)` reference."""

    owner: str
    result: str
    index: str | None = None
    key: str | None = None


def parse_result_ref(key: str, *, steps: bool = False) -> ResultRef | None:
    """The reference in a `tasks.t.results.r` (or `steps.s.results.r`) key, with `[i]`, `[*]` or `.key`."""
    match = (_STEP_RESULT if steps else _TASK_RESULT).match(key)
    if not match:
        return None
    return ResultRef(match["task"], match["dot"] or match["br"], match["index"], match["key"])


def result_refs(value: Any, *, steps: bool = False) -> list[ResultRef]:
    """All result references in a string or nested structure."""
    found = []
    for key in references(value):
        ref = parse_result_ref(key, steps=steps)
        if ref is not None:
            found.append(ref)
    return found


def result_replacements(prefix: str, owner: str, results: dict[str, ParamValue]) -> Replacements:
    """Variables for one producer's results, e.g. `tasks.a.results.r` (and `[i]`, `[*]`, `.key`)."""
    reps = Replacements()
    for name, value in results.items():
        add_value(reps, f"{prefix}.{owner}.results", name, value)
    return reps
