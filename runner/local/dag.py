"""The graph of a Pipeline's tasks: edges from `runAfter` and result references, checked for cycles (§3.1)."""

from __future__ import annotations

import re
from typing import Any

from runner.local.substitution import ResultRef, result_refs

_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")


class GraphError(Exception):
    """The tasks of a Pipeline do not form a valid graph."""


def task_result_refs(task: dict[str, Any]) -> list[ResultRef]:
    """Result references of a PipelineTask: in params, matrix, when, and an inline taskSpec."""
    refs: list[ResultRef] = []
    for key in ("params", "matrix", "when", "taskSpec", "displayName"):
        if key in task:
            refs.extend(result_refs(task[key]))
    return refs


def build_graph(tasks: list[dict[str, Any]], finally_tasks: list[dict[str, Any]]) -> dict[str, set[str]]:
    """Each task's parents; raises GraphError with Tekton's wording for duplicates, unknown names and cycles."""
    names = [str(t.get("name")) for t in tasks]
    all_names = names + [str(t.get("name")) for t in finally_tasks]
    seen: set[str] = set()
    for name in all_names:
        if not _DNS_LABEL.match(name):
            raise GraphError(f'invalid value: pipeline task name "{name}" must be a valid DNS Label')
        if name in seen:
            raise GraphError(f'duplicate pipeline task "{name}"')
        seen.add(name)
    known = set(names)
    parents: dict[str, set[str]] = {}
    for task in tasks:
        name = str(task.get("name"))
        deps: set[str] = set()
        for after in task.get("runAfter") or []:
            if after not in known:
                raise GraphError(f"task {name} depends on {after} but {after} wasn't present in Pipeline")
            deps.add(str(after))
        for ref in task_result_refs(task):
            if ref.owner not in known:
                raise GraphError(f"pipeline task {ref.owner} is not defined in the pipeline")
            deps.add(ref.owner)
        parents[name] = deps
    _check_cycles(parents)
    for task in finally_tasks:
        name = str(task.get("name"))
        if task.get("runAfter"):
            raise GraphError(f"no runAfter allowed under spec.finally, final task {name} has runAfter specified")
        deps = set()
        for ref in task_result_refs(task):
            if ref.owner not in known:
                if ref.owner in all_names:
                    raise GraphError(
                        "invalid task result reference, final task has task result reference from a final task "
                        + ref.owner
                    )
                raise GraphError(f"pipeline task {ref.owner} is not defined in the pipeline")
            deps.add(ref.owner)
        parents[name] = deps
    return parents


def _check_cycles(parents: dict[str, set[str]]) -> None:
    state: dict[str, int] = {}  # 1 visiting, 2 done

    def visit(name: str) -> None:
        state[name] = 1
        for parent in sorted(parents[name]):
            if state.get(parent) == 1:
                raise GraphError(f'cycle detected; task "{parent}" depends on {name}')
            if state.get(parent) is None:
                visit(parent)
        state[name] = 2

    for name in parents:
        if name not in state:
            visit(name)
