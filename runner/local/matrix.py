"""Matrix fan-out of a PipelineTask (§3.5): combinations in Tekton's order, `include` entries merged in."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from runner.local.params import normalise_value


@dataclass
class Combination:
    """One fanned-out TaskRun's matrix params, and its display name from `include[].name` if any."""

    params: dict[str, str]
    name: str | None = None


def combinations(matrix: dict[str, Any]) -> list[Combination]:
    """Every combination of the (already substituted, array-valued) matrix params and includes."""
    params = [p for p in matrix.get("params") or [] if isinstance(p, dict)]
    combos: list[Combination] = [Combination({})] if params else []
    for param in params:
        value = normalise_value(param.get("value"))
        values = value if isinstance(value, list) else [str(value)]
        # Each next param's values form the outer loop, so the first param varies fastest.
        combos = [Combination({**c.params, str(param["name"]): v}) for v in values for c in combos]
    names = {str(p["name"]) for p in params}
    for include in matrix.get("include") or []:
        extra = {str(p.get("name")): normalise_value(p.get("value")) for p in include.get("params") or []}
        extra_str = {k: v if isinstance(v, str) else str(v) for k, v in extra.items()}
        overlap = {k: v for k, v in extra_str.items() if k in names}
        if not combos or (overlap and not any(all(c.params.get(k) == v for k, v in overlap.items()) for c in combos)):
            combos.append(Combination(dict(extra_str), include.get("name")))
            continue
        for combo in combos:
            if all(combo.params.get(k) == v for k, v in overlap.items()):
                combo.params.update(extra_str)
                if include.get("name"):
                    combo.name = str(include["name"])
    return combos


def empty_matrix(matrix: dict[str, Any]) -> bool:
    """True when a matrix param is an empty array, which makes Tekton skip the task."""
    return any(isinstance(p.get("value"), list) and not p["value"] for p in matrix.get("params") or [])
