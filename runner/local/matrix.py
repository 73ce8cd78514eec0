"""Matrix fan-out of a PipelineTask (§3.5): combinations in Tekton's order, `include` entries merged in, and the
display name each fanned-out TaskRun gets."""

from __future__ import annotations

from typing import Any

from runner.local.params import normalise_value
from runner.local.substitution import Replacements, add_value, replace_text


def combinations(matrix: dict[str, Any]) -> list[dict[str, str]]:
    """The params of every combination of the (already substituted, array-valued) matrix params and includes."""
    params = [p for p in matrix.get("params") or [] if isinstance(p, dict)]
    includes = [_include_params(i) for i in matrix.get("include") or [] if isinstance(i, dict)]
    if not params:
        # Without params the includes are the combinations, one each (tektoncd/pipeline:
        # pkg/apis/pipeline/v1/matrix_types.go, FanOut).
        return includes
    combos: list[dict[str, str]] = [{}]
    for param in params:
        value = normalise_value(param.get("value"))
        values = value if isinstance(value, list) else [str(value)]
        # Each next param's values form the outer loop, so the first param varies fastest.
        combos = [{**combo, str(param["name"]): v} for v in values for combo in combos]
    names = {str(p["name"]) for p in params}
    for extra in includes:
        overlap = {k: v for k, v in extra.items() if k in names}
        matching = [c for c in combos if all(c.get(k) == v for k, v in overlap.items())]
        if overlap and not matching:
            combos.append(dict(extra))
        for combo in matching:
            combo.update(extra)
    return combos


def _include_params(include: dict[str, Any]) -> dict[str, str]:
    values = {str(p.get("name")): normalise_value(p.get("value")) for p in include.get("params") or []}
    return {k: v if isinstance(v, str) else str(v) for k, v in values.items()}


def display_name(task: dict[str, Any], params: dict[str, Any]) -> str | None:
    """The displayName of a PipelineTask's child run with `params` (its TaskRun's): the PipelineTask's own with
    the string params substituted, or for a matrix the names of the includes whose params all match, joined by
    spaces (tektoncd/pipeline: pkg/reconciler/pipelinerun/resources/pipelinerunresolution.go, getDisplayName)."""
    reps = Replacements()
    for name, value in params.items():
        if isinstance(value, str):
            add_value(reps, "params", name, value)
    shown = replace_text(str(task["displayName"]), reps) if task.get("displayName") else None
    matched = [
        replace_text(str(include["name"]), reps)
        for include in (task.get("matrix") or {}).get("include") or []
        if isinstance(include, dict)
        and include.get("name")
        and all(params.get(k) == v for k, v in _include_params(include).items())
    ]
    return " ".join(matched) if matched else shown


def empty_matrix(matrix: dict[str, Any]) -> bool:
    """True when a matrix param is an empty array, which makes Tekton skip the task."""
    return any(isinstance(p.get("value"), list) and not p["value"] for p in matrix.get("params") or [])
