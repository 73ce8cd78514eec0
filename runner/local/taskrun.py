"""A TaskRun from start to end: resolve, validate, substitute, run attempts (retries, timeout), status (§4, §10)."""

from __future__ import annotations

import copy
import threading
import uuid
from dataclasses import dataclass
from typing import Any

from runner.local.durations import format_duration, parse_duration
from runner.local.errors import ResolutionError, RunFailure
from runner.local.params import ParamError, given_values, param_replacements, resolve_params
from runner.local.pod import Pod, PodPlan
from runner.local.podmounts import WorkspaceMount, check_container_workspaces
from runner.local.process import Interrupt
from runner.local.runenv import RunEnv
from runner.local.status import (
    TR_CANCELLED,
    TR_FAILURE_IGNORED,
    TR_INVALID_PARAM_VALUE,
    TR_RESOLUTION_FAILED,
    TR_RUNNING,
    TR_SUCCEEDED,
    TR_TASK_VALIDATION_FAILED,
    TR_TIMEOUT,
    TR_VALIDATION_FAILED,
    succeeded_condition,
    timestamp,
)
from runner.local.steps import merge_step_template, step_name
from runner.local.substitution import Replacements, substitute, substitute_param_value

_ON_ERROR = ("continue", "stopAndFail")


@dataclass
class TaskRunOrigin:
    """How a TaskRun came to be: a PipelineRun hands over the resolved spec and its PipelineTask's choices."""

    task_spec: dict[str, Any] | None = None
    task_name: str | None = None
    inline: bool = True
    ignore_failure: bool = False


def run_taskrun(
    obj: dict[str, Any], env: RunEnv, interrupt: Interrupt, origin: TaskRunOrigin | None = None
) -> dict[str, Any]:
    """Runs a TaskRun object to its end and returns it with its status."""
    origin = origin or TaskRunOrigin()
    tr = copy.deepcopy(obj)
    meta = tr.setdefault("metadata", {})
    meta.setdefault("namespace", env.namespace)
    meta.setdefault("uid", str(uuid.uuid4()))
    name = str(meta["name"])
    spec = tr.setdefault("spec", {})
    status: dict[str, Any] = {
        "conditions": [succeeded_condition("Unknown", TR_RUNNING, "Not all Steps in the Task have finished executing")],
        "podName": f"{name}-pod",
        "startTime": timestamp(),
    }
    tr["status"] = status
    try:
        task_spec, task_name, inline = _task_spec(spec, origin, env)
        status["taskSpec"] = task_spec
        prepared = _Prepared(tr, task_spec, task_name, inline, env)
        timeout = _timeout(spec, env)
    except RunFailure as failure:
        _finish(status, "False", failure.reason, failure.message)
        return tr
    if spec.get("status") == "TaskRunCancelled":
        _finish(
            status, "False", TR_CANCELLED, f'TaskRun "{name}" was cancelled. {spec.get("statusMessage", "")}'.rstrip()
        )
        return tr
    retries = int(spec.get("retries") or 0)
    for attempt in range(retries + 1):
        pod_name = f"{name}-pod" if attempt == 0 else f"{name}-pod-retry{attempt}"
        status["podName"] = pod_name
        try:
            plan = prepared.plan(pod_name, attempt)
            status["taskSpec"] = prepared.status_spec
        except RunFailure as failure:
            _finish(status, "False", failure.reason, failure.message)
            return tr
        status["taskSpec"] = prepared.status_spec
        attempt_interrupt = interrupt.child()
        timer = None
        if timeout:
            message = f'TaskRun "{name}" failed to finish within "{format_duration(timeout)}"'
            timer = threading.Timer(timeout, attempt_interrupt.trigger, (TR_TIMEOUT, message))
            timer.daemon = True
            timer.start()
        pod_dir = env.root / "pods" / pod_name
        outcome = Pod(plan, pod_dir, env.root / "logs" / pod_name, env.services, attempt_interrupt).run()
        if timer is not None:
            timer.cancel()
        status["steps"] = outcome.steps
        if outcome.sidecars:
            status["sidecars"] = outcome.sidecars
        if outcome.results:
            status["results"] = outcome.results
        else:
            status.pop("results", None)
        if outcome.failure is None:
            _finish(status, "True", TR_SUCCEEDED, "All Steps have completed executing")
            return tr
        reason, message = outcome.failure
        if attempt < retries and reason != TR_CANCELLED and not interrupt.triggered:
            archived = copy.deepcopy(status)
            archived.pop("retriesStatus", None)
            archived.pop("taskSpec", None)
            _finish(archived, "False", reason, message)
            status.setdefault("retriesStatus", []).append(archived)
            status["startTime"] = timestamp()
            status.pop("results", None)
            continue
        _finish(status, "False", TR_FAILURE_IGNORED if origin.ignore_failure else reason, message)
        return tr
    return tr


def _finish(status: dict[str, Any], state: str, reason: str, message: str) -> None:
    status["conditions"] = [succeeded_condition(state, reason, message)]
    status["completionTime"] = timestamp()


def _timeout(spec: dict[str, Any], env: RunEnv) -> float | None:
    if spec.get("timeout") is None:
        return env.default_timeout
    try:
        seconds = parse_duration(str(spec["timeout"]))
    except ValueError as exc:
        raise RunFailure(TR_VALIDATION_FAILED, f"invalid value: {exc}: spec.timeout") from exc
    return seconds or None


def _task_spec(spec: dict[str, Any], origin: TaskRunOrigin, env: RunEnv) -> tuple[dict[str, Any], str, bool]:
    if origin.task_spec is not None:
        return copy.deepcopy(origin.task_spec), origin.task_name or "", origin.inline
    if spec.get("taskSpec") is not None and spec.get("taskRef") is not None:
        raise RunFailure(TR_VALIDATION_FAILED, "expected exactly one, got both: spec.taskRef, spec.taskSpec")
    if isinstance(spec.get("taskSpec"), dict):
        return copy.deepcopy(spec["taskSpec"]), "", True
    ref = spec.get("taskRef")
    if not isinstance(ref, dict):
        raise RunFailure(TR_VALIDATION_FAILED, "expected exactly one, got neither: spec.taskRef, spec.taskSpec")
    try:
        task_spec, name = env.resolve(ref, "Task")
    except ResolutionError as exc:
        raise RunFailure(TR_RESOLUTION_FAILED, str(exc)) from exc
    return task_spec, name, False


class _Prepared:
    """A TaskRun's validated inputs; `plan()` substitutes them for one attempt."""

    def __init__(
        self, tr: dict[str, Any], task_spec: dict[str, Any], task_name: str, inline: bool, env: RunEnv
    ) -> None:
        self.tr, self.spec, self.env = tr, task_spec, env
        self.name = str(tr["metadata"]["name"])
        # For an inline taskSpec, context.task.name is the TaskRun's own name.
        self.task_name = task_name or self.name
        self.label = task_name or self.name
        steps = task_spec.get("steps")
        if not isinstance(steps, list) or not steps:
            raise RunFailure(TR_TASK_VALIDATION_FAILED, "missing field(s): spec.steps")
        self.actions = self._resolve_actions(steps)
        sidecars = task_spec.get("sidecars") or []
        for index, sidecar in enumerate(sidecars):
            _check_container(sidecar, "sidecar", index)
        try:
            self.values = resolve_params(
                task_spec.get("params"), given_values(tr["spec"].get("params")), propagate=inline
            )
        except ParamError as exc:
            reason = TR_INVALID_PARAM_VALUE if exc.kind == "enum" else TR_VALIDATION_FAILED
            raise RunFailure(reason, f"invalid input params for task {self.label}: {exc.message}") from exc
        self.workspaces = self._workspaces(inline)
        declared = {ws.name for ws in self.workspaces}
        check_container_workspaces("steps", steps, declared)
        check_container_workspaces("sidecars", sidecars, declared)
        self.status_spec: dict[str, Any] = task_spec

    def _resolve_actions(self, steps: list[Any]) -> dict[int, dict[str, Any]]:
        actions = {}
        for index, step in enumerate(steps):
            _check_container(step, "step", index)
            ref = step.get("ref")
            if ref is None:
                if step.get("params"):
                    raise RunFailure(
                        TR_TASK_VALIDATION_FAILED, f"params cannot be used without Ref: spec.steps[{index}].params"
                    )
                continue
            for field in ("image", "command", "args", "script", "workingDir", "env", "volumeMounts", "results"):
                if step.get(field):
                    raise RunFailure(
                        TR_TASK_VALIDATION_FAILED, f"{field} cannot be used with Ref: spec.steps[{index}].{field}"
                    )
            try:
                actions[index], _name = self.env.resolve(ref, "StepAction")
            except ResolutionError as exc:
                raise RunFailure(TR_RESOLUTION_FAILED, str(exc)) from exc
        return actions

    def _workspaces(self, inline: bool) -> list[WorkspaceMount]:
        bindings = {str(b.get("name")): b for b in self.tr["spec"].get("workspaces") or [] if isinstance(b, dict)}
        declared = [d for d in self.spec.get("workspaces") or [] if isinstance(d, dict)]
        names = {str(d.get("name")) for d in declared}
        for extra in bindings:
            if extra not in names:
                if not inline:
                    raise RunFailure(
                        TR_VALIDATION_FAILED, f'workspace binding "{extra}" does not match any declared workspace'
                    )
                # An inline spec gets undeclared bindings, declared by name (pkg/workspace/apply.go, Apply).
                declared.append({"name": extra})
                self.spec["workspaces"] = [*(self.spec.get("workspaces") or []), {"name": extra}]
        mounts = []
        for decl in declared:
            name = str(decl.get("name"))
            binding = bindings.get(name)
            if binding is None and not decl.get("optional"):
                raise RunFailure(
                    TR_VALIDATION_FAILED, f'declared workspace "{name}" is required but has not been bound'
                )
            mount_path = str(decl.get("mountPath") or f"/workspace/{name}")
            mounts.append(WorkspaceMount(name, mount_path, binding, bool(decl.get("readOnly"))))
        return mounts

    def _passes(self, attempt: int) -> list[Replacements]:
        meta = self.tr["metadata"]
        context = Replacements()
        context.strings.update(
            {
                "context.taskRun.name": self.name,
                "context.taskRun.namespace": str(meta.get("namespace", "")),
                "context.taskRun.uid": str(meta.get("uid", "")),
                "context.task.name": self.task_name,
                "context.task.retry-count": str(attempt),
            }
        )
        paths = Replacements()
        for decl in self.spec.get("results") or []:
            result = str(decl.get("name"))
            for form in (f"results.{result}", f'results["{result}"]', f"results['{result}']"):
                paths.strings[f"{form}.path"] = f"/tekton/results/{result}"
        for index, step in enumerate(self.spec.get("steps") or []):
            name = step_name(step, index)
            paths.strings[f"steps.step-{name}.exitCode.path"] = f"/tekton/steps/step-{name}/exitCode"
        workspaces = Replacements()
        for ws in self.workspaces:
            bound = ws.binding is not None
            claim = (ws.binding or {}).get("persistentVolumeClaim", {}) or {}
            workspaces.strings[f"workspaces.{ws.name}.path"] = ws.mount_path if bound else ""
            workspaces.strings[f"workspaces.{ws.name}.bound"] = "true" if bound else "false"
            if bound:
                workspaces.strings[f"workspaces.{ws.name}.claim"] = str(claim.get("claimName", ""))
                workspaces.strings[f"workspaces.{ws.name}.volume"] = (
                    f"ws-{uuid.uuid5(uuid.NAMESPACE_OID, self.name + ws.name).hex[:5]}"
                )
        return [param_replacements(self.values), context, paths, workspaces]

    def plan(self, pod_name: str, attempt: int) -> PodPlan:
        """The substituted, template-merged steps and volumes of one attempt."""
        passes = self._passes(attempt)
        spec = copy.deepcopy(self.spec)
        for reps in passes:
            spec = _substitute_spec(spec, reps)
        template = spec.get("stepTemplate")
        steps = []
        for index, step in enumerate(spec.get("steps") or []):
            step = substitute(dict(step), _step_result_paths(step_name(step, index), step.get("results")))
            if index not in self.actions:
                step = merge_step_template(template, step)
                if not step.get("image"):
                    raise RunFailure(TR_TASK_VALIDATION_FAILED, f"missing field(s): spec.steps[{index}].image")
            on_error = step.get("onError")
            if on_error is not None and on_error not in _ON_ERROR:
                raise RunFailure(
                    TR_TASK_VALIDATION_FAILED,
                    f'invalid value: "{on_error}": spec.steps[{index}].onError\n'
                    'Task step onError must be either "continue" or "stopAndFail"',
                )
            steps.append(step)
        self.status_spec = spec
        pod_template = self.tr["spec"].get("podTemplate") or {}
        volumes = list(spec.get("volumes") or []) + list(pod_template.get("volumes") or [])
        # A StepAction's own fields get the TaskRun's later passes (context, paths, workspaces) once its params
        # are applied at step start, plus its own `$(step.results.*.path)`.
        action_passes = {
            index: [*passes[1:], _step_result_paths(step_name(steps[index], index), action.get("results"))]
            for index, action in self.actions.items()
        }
        return PodPlan(
            taskrun=self.name,
            pod=pod_name,
            namespace=str(self.tr["metadata"].get("namespace", "")),
            steps=steps,
            actions=self.actions,
            step_template=template,
            results=[d for d in spec.get("results") or [] if isinstance(d, dict)],
            workspaces=self.workspaces,
            volumes=volumes,
            action_passes=action_passes,
            sidecars=[dict(sc) for sc in spec.get("sidecars") or []],
            security_context=pod_template.get("securityContext"),
        )


def _step_result_paths(step: str, decls: Any) -> Replacements:
    reps = Replacements()
    for decl in decls or []:
        name = decl.get("name") if isinstance(decl, dict) else None
        for form in (f"step.results.{name}", f'step.results["{name}"]', f"step.results['{name}']"):
            reps.strings[f"{form}.path"] = f"/tekton/steps/step-{step}/results/{name}"
    return reps


def _substitute_spec(spec: dict[str, Any], reps: Replacements) -> dict[str, Any]:
    """One substitution pass over the fields of a Task spec that accept variables."""
    out = dict(spec)
    for key in ("steps", "stepTemplate", "sidecars", "volumes", "workspaces"):
        if key in out:
            out[key] = substitute(out[key], reps)
    for step in out.get("steps") or []:
        if isinstance(step, dict) and step.get("params"):
            step["params"] = [
                {**p, "value": substitute_param_value(p.get("value"), reps)} for p in spec_step_params(step)
            ]
    return out


def spec_step_params(step: dict[str, Any]) -> list[dict[str, Any]]:
    """The `params` of a StepAction step as a list of mappings."""
    return [p for p in step.get("params") or [] if isinstance(p, dict)]


def _check_container(container: Any, what: str, index: int) -> None:
    """A step or sidecar (`what`) is a mapping that does not give both `script` and `command`."""
    where = f"spec.{what}s[{index}]"
    if not isinstance(container, dict):
        raise RunFailure(TR_TASK_VALIDATION_FAILED, f"invalid value: {what} must be a mapping: {where}")
    if container.get("script") and container.get("command"):
        raise RunFailure(TR_TASK_VALIDATION_FAILED, f"script cannot be used with command: {where}.script")
