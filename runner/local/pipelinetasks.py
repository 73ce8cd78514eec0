"""From a PipelineTask to its child runs: TaskRuns (one per matrix combination) or a child PipelineRun."""

from __future__ import annotations

import copy
import hashlib
import json
import os
from dataclasses import dataclass, field
from typing import Any

from runner.local.durations import parse_duration
from runner.local.errors import RunFailure
from runner.local.matrix import combinations, display_name
from runner.local.params import param_type, value_type
from runner.local.status import PR_VALIDATION_FAILED
from runner.local.substitution import ParamValue
from runner.local.taskrun import TaskRunOrigin

_LONGEST, _MD5_LEN = 63, 32


@dataclass
class ResolvedTask:
    """What a PipelineTask runs: a Task spec, or a Pipeline spec (pipelines in pipelines)."""

    kind: str  # "Task" or "Pipeline"
    spec: dict[str, Any]
    name: str  # the referenced object's name, "" for inline specs
    inline: bool


@dataclass
class PipelineContext:
    """The PipelineRun facts every child needs."""

    pr_name: str
    namespace: str
    uid: str
    pipeline_name: str
    params: dict[str, ParamValue]
    workspaces: dict[str, dict[str, Any]]
    claims: dict[str, str]  # PipelineRun workspace name -> claim made from its volumeClaimTemplate
    task_run_specs: dict[str, dict[str, Any]]
    task_run_template: dict[str, Any]
    timeouts: dict[str, float | None] = field(default_factory=dict)


@dataclass
class ChildRun:
    """A child run to create: its object, and for TaskRuns how it came to be."""

    obj: dict[str, Any]
    origin: TaskRunOrigin | None
    display_name: str | None


def child_name(parent: str, *parts: str) -> str:
    """`<pr>-<pt>[-<i>]`; a name over 63 characters keeps its suffix and has the parent replaced by a prefix of it
    plus its MD5, as Kubernetes' kmeta.ChildName does."""
    suffix = "".join(f"-{part}" for part in parts)
    if len(parent) + len(suffix) <= _LONGEST:
        return parent + suffix
    head = _LONGEST - _MD5_LEN
    if head - len(suffix) <= 0:
        return parent[:head] + hashlib.md5((parent + suffix).encode()).hexdigest()
    return parent[: head - len(suffix)] + hashlib.md5(parent.encode()).hexdigest() + suffix


def _labels(ctx: PipelineContext, task: dict[str, Any], final: bool) -> dict[str, str]:
    labels = {
        "tekton.dev/pipelineRun": ctx.pr_name,
        "tekton.dev/pipelineTask": str(task["name"]),
        "tekton.dev/pipeline": ctx.pipeline_name,
        "tekton.dev/memberOf": "finally" if final else "tasks",
    }
    ref = task.get("taskRef") or {}
    if ref.get("name"):
        labels["tekton.dev/task"] = str(ref["name"])
    return labels


def _metadata(ctx: PipelineContext, name: str, task: dict[str, Any], final: bool) -> dict[str, Any]:
    return {
        "name": name,
        "namespace": ctx.namespace,
        "labels": _labels(ctx, task, final),
        "ownerReferences": [
            {
                "apiVersion": "tekton.dev/v1",
                "kind": "PipelineRun",
                "name": ctx.pr_name,
                "uid": ctx.uid,
                "controller": True,
                "blockOwnerDeletion": True,
            }
        ],
    }


def child_workspaces(task: dict[str, Any], ctx: PipelineContext, propagate_from: Any = None) -> list[dict[str, Any]]:
    """The workspace bindings a child gets from the PipelineRun's, subPaths joined (§3.7)."""
    out: list[dict[str, Any]] = []
    for ws in task.get("workspaces") or []:
        name = str(ws.get("name"))
        pipeline_ws = str(ws.get("workspace") or name)
        binding = ctx.workspaces.get(pipeline_ws)
        if binding is None:
            continue  # an optional Pipeline workspace left unbound
        out.append(_rebind(binding, name, pipeline_ws, ws.get("subPath"), ctx))
    if propagate_from is not None:
        # Inline specs may use `$(workspaces.w.path)` of the PipelineRun's workspaces without binding them.
        text = json.dumps(propagate_from)
        bound = {b["name"] for b in out}
        for pipeline_ws, binding in ctx.workspaces.items():
            if pipeline_ws not in bound and f"workspaces.{pipeline_ws}." in text:
                out.append(_rebind(binding, pipeline_ws, pipeline_ws, None, ctx))
    return out


def _rebind(
    binding: dict[str, Any], name: str, pipeline_ws: str, sub_path: Any, ctx: PipelineContext
) -> dict[str, Any]:
    child = {k: copy.deepcopy(v) for k, v in binding.items() if k not in ("name", "subPath")}
    if "volumeClaimTemplate" in child:
        child.pop("volumeClaimTemplate")
        child["persistentVolumeClaim"] = {"claimName": ctx.claims[pipeline_ws]}
    parts = [p for p in (binding.get("subPath"), sub_path) if p]
    result = {"name": name, **child}
    if parts:
        result["subPath"] = os.path.join(*[str(p) for p in parts])
    return result


def _timeout(task: dict[str, Any], ctx: PipelineContext, final: bool) -> str | None:
    run_spec = ctx.task_run_specs.get(str(task["name"]), {})
    for candidate in (run_spec.get("timeout"), task.get("timeout")):
        if candidate is not None:
            return str(candidate)
    return None


def _params_for_task(task: dict[str, Any], resolved: ResolvedTask, ctx: PipelineContext) -> list[dict[str, Any]]:
    given = {str(p.get("name")): p.get("value") for p in task.get("params") or [] if isinstance(p, dict)}
    if resolved.inline:
        # Propagation (§1.1): PipelineRun params reach an inline taskSpec, below the PipelineTask's own values.
        declared = {str(d.get("name")): param_type(d) for d in resolved.spec.get("params") or []}
        for name, value in ctx.params.items():
            if name in given:
                mine = given[name]
                if isinstance(value, dict) and isinstance(mine, dict):
                    given[name] = {**value, **mine}
                continue
            if name in declared and declared[name] != value_type(value):
                continue
            given[name] = value
    return [{"name": k, "value": v} for k, v in given.items()]


def plan_children(task: dict[str, Any], resolved: ResolvedTask, ctx: PipelineContext, final: bool) -> list[ChildRun]:
    """The child runs of a (substituted) PipelineTask, in creation order."""
    name = str(task["name"])
    if resolved.kind == "Pipeline":
        spec: dict[str, Any] = {
            "params": [{"name": p.get("name"), "value": p.get("value")} for p in task.get("params") or []],
            "workspaces": child_workspaces(task, ctx),
        }
        spec["pipelineRef" if "pipelineRef" in task else "pipelineSpec"] = copy.deepcopy(
            task.get("pipelineRef") or task.get("pipelineSpec")
        )
        obj = {
            "apiVersion": "tekton.dev/v1",
            "kind": "PipelineRun",
            "metadata": _metadata(ctx, child_name(ctx.pr_name, name), task, final),
            "spec": spec,
        }
        return [ChildRun(obj, None, task.get("displayName"))]
    base_params = _params_for_task(task, resolved, ctx)
    matrix = task.get("matrix")
    combos = combinations(matrix) if matrix else []
    # (name, params, combination) of each TaskRun; a matrix fans out one per combination.
    runs: list[tuple[str, list[dict[str, Any]], dict[str, str]]] = []
    if not matrix:
        runs.append((child_name(ctx.pr_name, name), base_params, {}))
    for index, combo in enumerate(combos):
        params = [p for p in base_params if p["name"] not in combo] + [
            {"name": k, "value": v} for k, v in combo.items()
        ]
        runs.append((child_name(ctx.pr_name, name, str(index)), params, combo))
    workspaces = child_workspaces(task, ctx, task.get("taskSpec") if resolved.inline else None)
    children = []
    own_params = {str(p.get("name")): p.get("value") for p in task.get("params") or [] if isinstance(p, dict)}
    for run_name, params, combo in runs:
        spec = {"params": params}
        if task.get("taskRef") is not None:
            spec["taskRef"] = copy.deepcopy(task["taskRef"])
        else:
            spec["taskSpec"] = copy.deepcopy(task.get("taskSpec") or {})
        if workspaces:
            spec["workspaces"] = copy.deepcopy(workspaces)
        timeout = _timeout(task, ctx, final)
        if timeout is not None:
            try:
                parse_duration(timeout)
            except ValueError as exc:
                raise RunFailure(PR_VALIDATION_FAILED, f"invalid value: {exc}: {name}.timeout") from exc
            spec["timeout"] = timeout
        if task.get("retries"):
            spec["retries"] = int(task["retries"])
        account = (ctx.task_run_specs.get(name) or {}).get("serviceAccountName") or ctx.task_run_template.get(
            "serviceAccountName"
        )
        if account:
            spec["serviceAccountName"] = account
        pod_template = (ctx.task_run_specs.get(name) or {}).get("podTemplate") or ctx.task_run_template.get(
            "podTemplate"
        )
        if pod_template:
            spec["podTemplate"] = copy.deepcopy(pod_template)
        obj = {
            "apiVersion": "tekton.dev/v1",
            "kind": "TaskRun",
            "metadata": _metadata(ctx, run_name, task, final),
            "spec": spec,
        }
        origin = TaskRunOrigin(
            task_spec=resolved.spec if not resolved.inline else copy.deepcopy(task.get("taskSpec") or {}),
            task_name=resolved.name,
            inline=resolved.inline,
            ignore_failure=task.get("onError") == "continue",
        )
        # Named by the TaskRun's params as Tekton makes them: the PipelineTask's and the combination's.
        children.append(ChildRun(obj, origin, display_name(task, {**own_params, **combo})))
    return children
