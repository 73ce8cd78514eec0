"""Conversion of Tekton objects between API versions, as Tekton's own conversion does it, without a cluster.

Catalogs still hold mostly ``tekton.dev/v1beta1`` Tasks while current clusters serve ``tekton.dev/v1`` (and the
test clusters serve a single version). Task and Pipeline convert between v1beta1 and v1 both ways, TaskRun and
PipelineRun from v1beta1 to v1, and StepAction between v1alpha1 and v1beta1 (its spec did not change; there is
no StepAction v1). A field that has no counterpart in the target version (PipelineResources, the container fields
v1 dropped from steps) is a ConversionError naming it: nothing is dropped silently. The input is never modified.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

from catalog.errors import TaskhubError

GROUP = "tekton.dev"
Json = dict[str, Any]

# Container fields of v1beta1 steps and step templates that tekton.dev/v1 no longer has.
_DROPPED_STEP_FIELDS = (
    "ports", "livenessProbe", "readinessProbe", "startupProbe", "lifecycle",
    "terminationMessagePath", "terminationMessagePolicy", "stdin", "stdinOnce", "tty",
)  # fmt: skip
# PipelineRun.taskRunSpecs[] and TaskRun fields renamed in v1 (v1beta1 name -> v1 name).
_RUN_SPEC_RENAMES = {
    "taskServiceAccountName": "serviceAccountName",
    "taskPodTemplate": "podTemplate",
    "stepOverrides": "stepSpecs",
    "sidecarOverrides": "sidecarSpecs",
}


class ConversionError(TaskhubError):
    """An object that cannot be expressed in the API version asked for; the message names the field."""


def api_version_of(obj: Json) -> str:
    """The version part of ``tekton.dev/<version>`` ("" for another group)."""
    group, _, version = str(obj.get("apiVersion", "")).partition("/")
    return version if group == GROUP else ""


def can_convert(kind: str, source: str, target: str) -> bool:
    """Whether `kind` objects convert from version `source` to `target` (equal versions always do)."""
    return source == target or (kind, source, target) in _CONVERTERS


def convert(obj: Json, target: str) -> Json:
    """A copy of the Tekton object `obj` as ``tekton.dev/<target>``; ConversionError if it cannot be."""
    kind = str(obj.get("kind", ""))
    source = api_version_of(obj)
    if not source:
        raise ConversionError(f"{obj.get('apiVersion')!r} is not a {GROUP} API version")
    out = copy.deepcopy(obj)
    if source == target:
        return out
    converter = _CONVERTERS.get((kind, source, target))
    if converter is None:
        raise ConversionError(f"cannot convert {kind} from {GROUP}/{source} to {GROUP}/{target}")
    if isinstance(out.get("spec"), dict):
        converter(out["spec"], "spec")
    out["apiVersion"] = f"{GROUP}/{target}"
    return out


# -- Task ----------------------------------------------------------------------------------------------------


def _no(spec: Json, key: str, where: str, why: str) -> None:
    if spec.get(key) not in (None, [], {}):
        raise ConversionError(f"{where}.{key} {why}")


def _rename(obj: Json, old: str, new: str, where: str) -> None:
    if old in obj:
        if new in obj:
            raise ConversionError(f"{where} has both {old} and {new}")
        obj[new] = obj.pop(old)


def _container_to_v1(container: Json, where: str, *, step: bool) -> None:
    if step:
        for key in _DROPPED_STEP_FIELDS:
            _no(container, key, where, f"is not a field of {GROUP}/v1 steps")
    _rename(container, "resources", "computeResources", where)


def _task_spec_to_v1(spec: Json, where: str) -> None:
    _no(spec, "resources", where, "(PipelineResources) was removed in tekton.dev/v1 and cannot be converted")
    for i, step in enumerate(_items(spec, "steps")):
        _container_to_v1(step, f"{where}.steps[{i}]", step=True)
    if isinstance(spec.get("stepTemplate"), dict):
        _container_to_v1(spec["stepTemplate"], f"{where}.stepTemplate", step=True)
        spec["stepTemplate"].pop("name", None)  # v1beta1 ignored a step template's name; v1 has no such field
    for i, sidecar in enumerate(_items(spec, "sidecars")):
        _container_to_v1(sidecar, f"{where}.sidecars[{i}]", step=False)


def _task_spec_to_v1beta1(spec: Json, where: str) -> None:
    for container in [*_items(spec, "steps"), *_items(spec, "sidecars")]:
        _rename(container, "computeResources", "resources", where)
    if isinstance(spec.get("stepTemplate"), dict):
        _rename(spec["stepTemplate"], "computeResources", "resources", f"{where}.stepTemplate")


# -- Pipeline ------------------------------------------------------------------------------------------------


def _ref_to_v1(ref: Json, kind: str) -> None:
    """v1beta1's ``bundle:`` becomes the bundles resolver, as Tekton's conversion did before bundle was removed."""
    bundle = ref.pop("bundle", None)
    if bundle:
        ref["resolver"] = "bundles"
        ref["params"] = [
            {"name": "bundle", "value": bundle},
            {"name": "name", "value": ref.pop("name", "")},
            {"name": "kind", "value": kind},
        ]
        ref.pop("kind", None)


def _pipeline_task(task: Json, where: str, to_v1: bool) -> None:
    if to_v1:
        _no(task, "resources", where, "(PipelineResources) was removed in tekton.dev/v1 and cannot be converted")
        if isinstance(task.get("taskRef"), dict):
            _ref_to_v1(task["taskRef"], "task")
        if isinstance(task.get("pipelineRef"), dict):
            _ref_to_v1(task["pipelineRef"], "pipeline")
    embedded = task.get("taskSpec")
    # An embedded spec with its own apiVersion/kind is a custom task: not ours to convert.
    if isinstance(embedded, dict) and "apiVersion" not in embedded:
        (_task_spec_to_v1 if to_v1 else _task_spec_to_v1beta1)(embedded, f"{where}.taskSpec")
    if isinstance(task.get("pipelineSpec"), dict):
        _pipeline_spec(task["pipelineSpec"], f"{where}.pipelineSpec", to_v1)


def _pipeline_spec(spec: Json, where: str, to_v1: bool) -> None:
    if to_v1:
        _no(spec, "resources", where, "(PipelineResources) was removed in tekton.dev/v1 and cannot be converted")
    for section in ("tasks", "finally"):
        for i, task in enumerate(_items(spec, section)):
            _pipeline_task(task, f"{where}.{section}[{i}]", to_v1)


def _pipeline_spec_to_v1(spec: Json, where: str) -> None:
    _pipeline_spec(spec, where, True)


def _pipeline_spec_to_v1beta1(spec: Json, where: str) -> None:
    _pipeline_spec(spec, where, False)


# -- runs (v1beta1 -> v1) -------------------------------------------------------------------------------------


def _run_overrides_to_v1(spec: Json, where: str) -> None:
    for old, new in _RUN_SPEC_RENAMES.items():
        _rename(spec, old, new, where)
    for key in ("stepSpecs", "sidecarSpecs"):
        for i, item in enumerate(_items(spec, key)):
            _rename(item, "resources", "computeResources", f"{where}.{key}[{i}]")


def _taskrun_spec_to_v1(spec: Json, where: str) -> None:
    _no(spec, "resources", where, "(PipelineResources) was removed in tekton.dev/v1 and cannot be converted")
    if isinstance(spec.get("taskRef"), dict):
        _ref_to_v1(spec["taskRef"], "task")
    if isinstance(spec.get("taskSpec"), dict):
        _task_spec_to_v1(spec["taskSpec"], f"{where}.taskSpec")
    _run_overrides_to_v1(spec, where)


def _pipelinerun_spec_to_v1(spec: Json, where: str) -> None:
    _no(spec, "resources", where, "(PipelineResources) was removed in tekton.dev/v1 and cannot be converted")
    _no(spec, "serviceAccountNames", where, "was removed in tekton.dev/v1; use taskRunSpecs[].serviceAccountName")
    if isinstance(spec.get("pipelineRef"), dict):
        _ref_to_v1(spec["pipelineRef"], "pipeline")
    if isinstance(spec.get("pipelineSpec"), dict):
        _pipeline_spec_to_v1(spec["pipelineSpec"], f"{where}.pipelineSpec")
    template: Json = {}
    for old, new in (("serviceAccountName", "serviceAccountName"), ("podTemplate", "podTemplate")):
        if old in spec:
            template[new] = spec.pop(old)
    if template:
        spec["taskRunTemplate"] = {**template, **(spec.get("taskRunTemplate") or {})}
    if "timeout" in spec:
        timeouts = spec.setdefault("timeouts", {})
        if "pipeline" in timeouts:
            raise ConversionError(f"{where} has both timeout and timeouts.pipeline")
        timeouts["pipeline"] = spec.pop("timeout")
    for i, item in enumerate(_items(spec, "taskRunSpecs")):
        _run_overrides_to_v1(item, f"{where}.taskRunSpecs[{i}]")


def _same(spec: Json, where: str) -> None:
    """StepAction v1alpha1 and v1beta1 have the same spec."""


def _items(obj: Json, key: str) -> list[Json]:
    value = obj.get(key)
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []


_CONVERTERS: dict[tuple[str, str, str], Callable[[Json, str], None]] = {
    ("Task", "v1beta1", "v1"): _task_spec_to_v1,
    ("Task", "v1", "v1beta1"): _task_spec_to_v1beta1,
    ("Pipeline", "v1beta1", "v1"): _pipeline_spec_to_v1,
    ("Pipeline", "v1", "v1beta1"): _pipeline_spec_to_v1beta1,
    ("TaskRun", "v1beta1", "v1"): _taskrun_spec_to_v1,
    ("PipelineRun", "v1beta1", "v1"): _pipelinerun_spec_to_v1,
    ("StepAction", "v1alpha1", "v1beta1"): _same,
    ("StepAction", "v1beta1", "v1alpha1"): _same,
}
