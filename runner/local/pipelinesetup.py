"""A PipelineRun's first reconcile: resolve, validate, substitute params and context (§10 PipelineRun 1-2)."""

from __future__ import annotations

import copy
import uuid
from dataclasses import dataclass
from typing import Any

from runner.local.celwhen import CELError, evaluate_cel
from runner.local.dag import GraphError, build_graph, task_result_refs
from runner.local.durations import parse_duration
from runner.local.errors import ResolutionError, RunFailure
from runner.local.params import ParamError, given_values, param_replacements, resolve_params
from runner.local.pipelinetasks import PipelineContext, ResolvedTask
from runner.local.runenv import RunEnv
from runner.local.status import (
    PR_CEL_EVALUATION_FAILED,
    PR_COULDNT_GET_PIPELINE,
    PR_COULDNT_GET_TASK,
    PR_INVALID_GRAPH,
    PR_INVALID_PARAM_VALUE,
    PR_INVALID_RESULT_REFERENCE,
    PR_INVALID_WORKSPACES,
    PR_OBJECT_KEYS_MISSING,
    PR_PARAMETER_MISSING,
    PR_PARAMETER_TYPE_MISMATCH,
    PR_VALIDATION_FAILED,
)
from runner.local.substitution import Replacements, references, substitute, substitute_param_value

_KINDS = ("taskRef", "taskSpec", "pipelineRef", "pipelineSpec")
_STATUS_VARIABLE_PREFIXES = ("tasks.status",)


@dataclass
class PreparedPipeline:
    """A validated PipelineRun ready to schedule."""

    spec: dict[str, Any]  # the Pipeline spec after params, context and workspace substitution
    tasks: list[dict[str, Any]]
    finally_tasks: list[dict[str, Any]]
    parents: dict[str, set[str]]
    resolved: dict[str, ResolvedTask]
    context: PipelineContext


def substitute_task(task: dict[str, Any], reps: Replacements, *, inner: bool) -> dict[str, Any]:
    """A PipelineTask with variables substituted in its params, matrix, when and other fields; `inner` also
    substitutes inside its inline taskSpec/pipelineSpec."""
    out: dict[str, Any] = {}
    for key, value in task.items():
        if key in ("taskSpec", "pipelineSpec"):
            out[key] = substitute(value, reps) if inner else value
        elif key == "params":
            out[key] = [_param(p, reps) for p in value or []]
        elif key == "matrix" and isinstance(value, dict):
            matrix = dict(value)
            matrix["params"] = [_param(p, reps) for p in value.get("params") or []]
            matrix["include"] = [
                {**inc, "params": [_param(p, reps) for p in inc.get("params") or []]}
                for inc in value.get("include") or []
            ]
            out[key] = matrix
        else:
            out[key] = substitute(value, reps)
    return out


def _param(param: Any, reps: Replacements) -> Any:
    if not isinstance(param, dict):
        return param
    return {**param, "value": substitute_param_value(param.get("value"), reps)}


def resolve_pipeline(pr: dict[str, Any], env: RunEnv) -> tuple[dict[str, Any], str]:
    """The Pipeline spec of a PipelineRun and the name for `context.pipeline.name` (the PR's for inline specs)."""
    spec, meta = pr["spec"], pr["metadata"]
    has_ref, has_spec = spec.get("pipelineRef") is not None, spec.get("pipelineSpec") is not None
    if has_ref == has_spec:
        which = "both" if has_ref else "neither"
        raise RunFailure(
            PR_VALIDATION_FAILED, f"expected exactly one, got {which}: spec.pipelineRef, spec.pipelineSpec"
        )
    if has_spec:
        if not isinstance(spec["pipelineSpec"], dict):
            raise RunFailure(PR_VALIDATION_FAILED, "invalid value: spec.pipelineSpec must be a mapping")
        return copy.deepcopy(spec["pipelineSpec"]), str(meta["name"])
    try:
        pipeline, name = env.resolve(spec["pipelineRef"], "Pipeline")
    except ResolutionError as exc:
        raise RunFailure(
            PR_COULDNT_GET_PIPELINE,
            f"Error retrieving pipeline for pipelinerun {meta['namespace']}/{meta['name']}: {exc}",
        ) from exc
    return pipeline, name or str(meta["name"])


def prepare_pipeline(pr: dict[str, Any], pipeline: dict[str, Any], pipeline_name: str, env: RunEnv) -> PreparedPipeline:
    """Validates a PipelineRun against its Pipeline and substitutes what is known before any task runs."""
    meta, spec = pr["metadata"], pr["spec"]
    ns, name = meta["namespace"], meta["name"]
    tasks = [t for t in pipeline.get("tasks") or [] if isinstance(t, dict)]
    finally_tasks = [t for t in pipeline.get("finally") or [] if isinstance(t, dict)]
    invalid = f"Pipeline {ns}/{pipeline_name} can't be Run; it has an invalid spec: "
    if not tasks:
        detail = (
            f"spec.tasks is empty but spec.finally has {len(finally_tasks)} tasks"
            if finally_tasks
            else "missing field(s): spec.tasks"
        )
        raise RunFailure(PR_VALIDATION_FAILED, invalid + detail)
    for task in tasks + finally_tasks:
        present = [k for k in _KINDS if task.get(k) is not None]
        if len(present) != 1:
            which = "multiple" if present else "neither"
            raise RunFailure(
                PR_VALIDATION_FAILED,
                invalid + f"expected exactly one, got {which}: {task.get('name')}.{{{', '.join(_KINDS)}}}",
            )
        if task.get("onError") == "continue" and task.get("retries"):
            raise RunFailure(
                PR_VALIDATION_FAILED,
                invalid + 'PipelineTask OnError cannot be set to "continue" when Retries is greater than 0',
            )
        for index, when in enumerate(task.get("when") or []):
            if isinstance(when, dict) and "cel" in when and any(k in when for k in ("input", "operator", "values")):
                raise RunFailure(
                    PR_VALIDATION_FAILED,
                    invalid + "cel and input+operator+values cannot be set in one WhenExpression: "
                    f"{task.get('name')}.when[{index}]",
                )
        if task.get("onError") not in (None, "continue", "stopAndFail"):
            raise RunFailure(
                PR_VALIDATION_FAILED, invalid + f'invalid value: "{task.get("onError")}": {task.get("name")}.onError'
            )
    for task in tasks:
        for key in references({k: v for k, v in task.items() if k not in ("taskSpec", "pipelineSpec")}):
            if key.startswith(_STATUS_VARIABLE_PREFIXES) or (
                key.startswith("tasks.") and key.endswith((".status", ".reason"))
            ):
                raise RunFailure(
                    PR_VALIDATION_FAILED,
                    invalid
                    + "pipeline tasks can not refer to execution status of any other pipeline task"
                    + " or aggregate status of tasks",
                )
    try:
        parents = build_graph(tasks, finally_tasks)
    except GraphError as exc:
        raise RunFailure(PR_INVALID_GRAPH, f"PipelineRun {ns}/{name}'s Pipeline DAG is invalid: {exc}") from exc
    values = _params(pr, pipeline, pipeline_name)
    workspaces, claims, declared_ws = _workspaces(pr, pipeline, env)
    task_run_specs = {str(s.get("pipelineTaskName")): s for s in spec.get("taskRunSpecs") or [] if isinstance(s, dict)}
    known = {str(t.get("name")) for t in tasks + finally_tasks}
    for pt_name in task_run_specs:
        if pt_name not in known:
            raise RunFailure(
                "InvalidTaskRunSpecs",
                f'pipelineRun\'s taskrunSpecs defined wrong taskName: "{pt_name}", does not exist in Pipeline',
            )
    context = Replacements()
    context.strings.update(
        {
            "context.pipelineRun.name": name,
            "context.pipelineRun.namespace": ns,
            "context.pipelineRun.uid": str(meta.get("uid", "")),
            "context.pipeline.name": pipeline_name,
        }
    )
    bound = Replacements()
    for ws in declared_ws:
        bound.strings[f"workspaces.{ws}.bound"] = "true" if ws in workspaces else "false"
    param_reps = param_replacements(values)
    substituted: list[list[dict[str, Any]]] = []
    for group in (tasks, finally_tasks):
        out = []
        for task in group:
            task = substitute_task(task, param_reps, inner=False)
            task = substitute_task(task, context, inner=True)
            out.append(substitute_task(task, bound, inner=False))
        substituted.append(out)
    tasks, finally_tasks = substituted
    check_cel(tasks + finally_tasks, name)
    status_spec = dict(pipeline, tasks=tasks, **({"finally": finally_tasks} if finally_tasks else {}))
    resolved = {str(t["name"]): _resolve_task(t, env, ns, pipeline_name) for t in tasks + finally_tasks}
    _check_result_refs(tasks + finally_tasks, resolved)
    if not (isinstance(spec.get("pipelineSpec"), dict)):
        for task in tasks + finally_tasks:
            for ws in task.get("workspaces") or []:
                wanted = str(ws.get("workspace") or ws.get("name"))
                if wanted not in declared_ws:
                    raise RunFailure(
                        PR_VALIDATION_FAILED,
                        invalid
                        + f'pipeline task "{task["name"]}" expects workspace with name "{wanted}" '
                        + "but none exists in pipeline spec",
                    )
    ctx = PipelineContext(
        pr_name=name,
        namespace=ns,
        uid=str(meta.get("uid", "")),
        pipeline_name=pipeline_name,
        params=values,
        workspaces=workspaces,
        claims=claims,
        task_run_specs=task_run_specs,
        task_run_template=dict(spec.get("taskRunTemplate") or {}),
    )
    return PreparedPipeline(status_spec, tasks, finally_tasks, parents, resolved, ctx)


def check_cel(tasks: list[dict[str, Any]], pr_name: str) -> None:
    """Evaluates every CEL `when` that needs no task result, as Tekton does before the first TaskRun: one that
    cannot be evaluated fails the PipelineRun (`CELEvaluationFailed`)."""
    for task in tasks:
        for when in task.get("when") or []:
            if isinstance(when, dict) and "cel" in when and not list(references(when["cel"])):
                try:
                    evaluate_cel(str(when["cel"]))
                except CELError as exc:
                    raise RunFailure(PR_CEL_EVALUATION_FAILED, cel_failure_message(pr_name, exc)) from exc


def cel_failure_message(pr_name: str, exc: CELError) -> str:
    """The condition message of a PipelineRun whose CEL `when` could not be evaluated."""
    return f"Error evaluating CEL {pr_name}: [User error] {exc}"


def _params(pr: dict[str, Any], pipeline: dict[str, Any], pipeline_name: str) -> dict[str, Any]:
    ns, name = pr["metadata"]["namespace"], pr["metadata"]["name"]
    for param in pr["spec"].get("params") or []:
        if isinstance(param, dict) and any(
            k.startswith(("tasks.", "finally.")) for k in references(param.get("value"))
        ):
            raise RunFailure(
                PR_VALIDATION_FAILED,
                f"cannot use result expressions in {param.get('name')} as PipelineRun parameter values",
            )
    try:
        return resolve_params(pipeline.get("params"), given_values(pr["spec"].get("params")), propagate=True)
    except ParamError as exc:
        if exc.kind == "missing":
            raise RunFailure(
                PR_PARAMETER_MISSING,
                f"PipelineRun {ns}/{name} is missing some parameters required by Pipeline {ns}/{pipeline_name}: "
                f"pipelineRun missing parameters: [{' '.join(exc.names)}]",
            ) from exc
        if exc.kind == "type":
            raise RunFailure(
                PR_PARAMETER_TYPE_MISMATCH,
                f"PipelineRun {ns}/{name} parameters have mismatching types with Pipeline {ns}/{pipeline_name}'s "
                f"parameters: parameters have inconsistent types : [{' '.join(exc.names)}]",
            ) from exc
        reason = PR_OBJECT_KEYS_MISSING if exc.kind == "keys" else PR_INVALID_PARAM_VALUE
        raise RunFailure(
            reason, f"PipelineRun {ns}/{name} parameters is missing object keys or has invalid values: {exc.message}"
        ) from exc


def _workspaces(
    pr: dict[str, Any], pipeline: dict[str, Any], env: RunEnv
) -> tuple[dict[str, dict[str, Any]], dict[str, str], set[str]]:
    bindings: dict[str, dict[str, Any]] = {}
    for index, binding in enumerate(pr["spec"].get("workspaces") or []):
        name = str(binding.get("name"))
        if name in bindings:
            raise RunFailure(
                PR_INVALID_WORKSPACES, f'workspace "{name}" provided by pipelinerun more than once, at index {index}'
            )
        bindings[name] = binding
    declared = {str(w.get("name")): w for w in pipeline.get("workspaces") or [] if isinstance(w, dict)}
    for name, decl in declared.items():
        if name not in bindings and not decl.get("optional"):
            raise RunFailure(
                PR_INVALID_WORKSPACES, f'pipeline requires workspace with name "{name}" be provided by pipelinerun'
            )
    claims: dict[str, str] = {}
    for name, binding in bindings.items():
        if "volumeClaimTemplate" in binding:
            # One claim per PipelineRun workspace, shared by all its TaskRuns, gone with the run.
            claim = f"pvc-{uuid.uuid4().hex[:10]}"
            env.private_claims[claim] = env.root / "claims" / claim
            claims[name] = claim
    return bindings, claims, set(declared)


def _resolve_task(task: dict[str, Any], env: RunEnv, ns: str, pipeline_name: str) -> ResolvedTask:
    if task.get("taskSpec") is not None:
        return ResolvedTask("Task", copy.deepcopy(task["taskSpec"]), "", True)
    if task.get("pipelineSpec") is not None:
        return ResolvedTask("Pipeline", copy.deepcopy(task["pipelineSpec"]), "", True)
    kind = "Task" if task.get("taskRef") is not None else "Pipeline"
    ref = task.get("taskRef") if kind == "Task" else task.get("pipelineRef")
    if not isinstance(ref, dict):
        raise RunFailure(PR_VALIDATION_FAILED, f"invalid value: {task.get('name')}.{kind.lower()}Ref must be a mapping")
    if kind == "Task" and ref.get("apiVersion") and ref.get("kind"):
        raise RunFailure(
            PR_COULDNT_GET_TASK,
            f"pipeline task {task['name']} refers to a custom task ({ref['apiVersion']}/{ref['kind']}), "
            "which the local executor cannot run",
        )
    try:
        spec, name = env.resolve(ref, kind)
    except ResolutionError as exc:
        reason = PR_COULDNT_GET_TASK if kind == "Task" else PR_COULDNT_GET_PIPELINE
        raise RunFailure(
            reason,
            f"Pipeline {ns}/{pipeline_name} can't be Run; it contains Tasks that don't exist: "
            f'Couldn\'t retrieve {kind} "{ref.get("name", "")}": {exc}',
        ) from exc
    return ResolvedTask(kind, spec, name, False)


def _check_result_refs(tasks: list[dict[str, Any]], resolved: dict[str, ResolvedTask]) -> None:
    for task in tasks:
        for ref in task_result_refs(task):
            producer = resolved.get(ref.owner)
            if producer is None:
                continue
            names = {str(r.get("name")) for r in producer.spec.get("results") or [] if isinstance(r, dict)}
            if ref.result not in names:
                raise RunFailure(
                    PR_INVALID_RESULT_REFERENCE,
                    f'invalid result reference in pipeline task "{task["name"]}": "{ref.result}" is not a named result '
                    f'returned by pipeline task "{ref.owner}"',
                )


def pipeline_timeouts(pr: dict[str, Any], default: float | None) -> tuple[float | None, float | None, float | None]:
    """(pipeline, tasks, finally) timeouts in seconds, None for none (§3.4)."""
    raw = pr["spec"].get("timeouts") or {}
    parsed: dict[str, float | None] = {}
    for key in ("pipeline", "tasks", "finally"):
        if raw.get(key) is None:
            parsed[key] = None
            continue
        try:
            parsed[key] = parse_duration(str(raw[key]))
        except ValueError as exc:
            raise RunFailure(PR_VALIDATION_FAILED, f"invalid value: {exc}: spec.timeouts.{key}") from exc
    pipeline = default if raw.get("pipeline") is None else parsed["pipeline"]
    tasks, final = parsed["tasks"], parsed["finally"]
    if pipeline:
        for key, value in (("tasks", tasks), ("finally", final)):
            if value is not None and value > pipeline:
                raise RunFailure(
                    PR_VALIDATION_FAILED,
                    f"invalid value: {raw[key]} should be <= pipeline duration: spec.timeouts.{key}",
                )
        if tasks is not None and final is not None and tasks + final > pipeline:
            raise RunFailure(
                PR_VALIDATION_FAILED,
                "invalid value: tasks timeout + finally timeout should be <= pipeline duration: spec.timeouts",
            )
        if tasks is None and final:
            tasks = pipeline - final
    return pipeline or None, tasks or None, final or None
