"""PipelineRuns on the local executor: the outcomes Tekton's condition algorithm gives (tektoncd/pipeline:
pkg/reconciler/pipelinerun/resources/pipelinerunstate.go, GetPipelineConditionStatus), and the DAG at work."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import yaml

from runner.local import LocalExecutor, LocalRun, resolver_from_documents


def run(tmp_path: Path, pipeline_spec: str, *, extra_spec: str = "", cancel: threading.Event | None = None) -> LocalRun:
    """Runs a PipelineRun named `pr` with the given inline pipelineSpec body."""
    text = f"""
apiVersion: tekton.dev/v1
kind: PipelineRun
metadata: {{name: pr}}
spec:
{extra_spec}
  pipelineSpec:
{pipeline_spec}
"""
    return LocalExecutor(tmp_path).run(yaml.safe_load(text), cancel)


def task(name: str, script: str, extra: str = "", results: str = "") -> str:
    """A PipelineTask with an inline one-step taskSpec."""
    return f"""
    - name: {name}
{extra}
      taskSpec:
{results}
        steps:
        - image: alpine
          script: {script!r}
"""


def cond(obj: dict[str, Any]) -> tuple[str, str, str]:
    c = obj["status"]["conditions"][0]
    return c["status"], c["reason"], c["message"]


def child(result: LocalRun, name: str) -> dict[str, Any]:
    return next(c for c in result.children if c["metadata"]["name"] == name)


def log_text(result: LocalRun, taskrun: str) -> str:
    return "".join(log.path.read_text() for log in result.logs if log.taskrun == taskrun)


def test_two_tasks_succeed(tmp_path: Path) -> None:
    result = run(tmp_path, "    tasks:" + task("a", "true") + task("b", "true"))
    assert cond(result.object) == ("True", "Succeeded", "Tasks Completed: 2 (Failed: 0, Cancelled 0), Skipped: 0")
    assert [cond(child(result, n)) for n in ("pr-a", "pr-b")] == [
        ("True", "Succeeded", "All Steps have completed executing")
    ] * 2
    refs = result.object["status"]["childReferences"]
    assert sorted((r["kind"], r["name"], r["pipelineTaskName"]) for r in refs) == [
        ("TaskRun", "pr-a", "a"),
        ("TaskRun", "pr-b", "b"),
    ]
    labels = child(result, "pr-a")["metadata"]["labels"]
    assert labels["tekton.dev/pipelineRun"] == "pr" and labels["tekton.dev/memberOf"] == "tasks"
    assert "skippedTasks" not in result.object["status"]


def test_a_failure_skips_dependents_and_finally_sees_the_statuses(tmp_path: Path) -> None:
    result = run(
        tmp_path,
        "    tasks:"
        + task("a", "exit 1")
        + task("b", "true", extra="      runAfter: [a]")
        + "    finally:"
        + task("f", "echo $(tasks.a.status) $(tasks.b.status) $(tasks.status)"),
    )
    assert cond(result.object) == ("False", "Failed", "Tasks Completed: 2 (Failed: 1, Cancelled 0), Skipped: 1")
    assert result.object["status"]["skippedTasks"] == [{"name": "b", "reason": "PipelineRun was stopping"}]
    assert log_text(result, "pr-f") == "Failed None Failed\n"
    assert "finallyStartTime" in result.object["status"]
    assert child(result, "pr-f")["metadata"]["labels"]["tekton.dev/memberOf"] == "finally"


def test_a_running_sibling_of_a_failed_task_is_not_cancelled(tmp_path: Path) -> None:
    result = run(tmp_path, "    tasks:" + task("a", "exit 1") + task("c", "sleep 0.5; echo done"))
    assert cond(result.object)[:2] == ("False", "Failed")
    assert cond(child(result, "pr-c"))[:2] == ("True", "Succeeded")
    assert log_text(result, "pr-c") == "done\n"


def test_an_ignored_failure_lets_the_pipeline_succeed(tmp_path: Path) -> None:
    result = run(
        tmp_path,
        "    tasks:"
        + task("a", "exit 1", extra="      onError: continue")
        + task("b", "true", extra="      runAfter: [a]"),
    )
    assert cond(result.object) == (
        "True",
        "Succeeded",
        "Tasks Completed: 2 (Failed: 1 (Ignored: 1), Cancelled 0), Skipped: 0",
    )
    assert cond(child(result, "pr-a"))[:2] == ("False", "FailureIgnored")


def test_finally_sees_the_reason_of_an_ignored_failure(tmp_path: Path) -> None:
    result = run(
        tmp_path,
        "    tasks:"
        + task("a", "exit 1", extra="      onError: continue")
        + "    finally:"
        + task("f", "echo $(tasks.a.reason) $(tasks.status)"),
    )
    assert log_text(result, "pr-f") == "FailureIgnored Failed\n"


def test_a_when_skip_does_not_cascade_to_ordering_dependents(tmp_path: Path) -> None:
    when = "      when: [{input: 'no', operator: in, values: ['yes']}]"
    result = run(
        tmp_path, "    tasks:" + task("a", "true", extra=when) + task("b", "true", extra="      runAfter: [a]")
    )
    assert cond(result.object) == ("True", "Completed", "Tasks Completed: 1 (Failed: 0, Cancelled 0), Skipped: 1")
    assert result.object["status"]["skippedTasks"] == [
        {
            "name": "a",
            "reason": "When Expressions evaluated to false",
            "whenExpressions": [{"input": "no", "operator": "in", "values": ["yes"]}],
        }
    ]


def test_results_of_a_when_skipped_task_are_missing_for_their_consumer(tmp_path: Path) -> None:
    when = "      when: [{input: 'no', operator: in, values: ['yes']}]"
    result = run(
        tmp_path,
        "    tasks:"
        + task("a", "true", extra=when, results="        results: [{name: r}]")
        + task("b", "echo $(tasks.a.results.r)")
        + task("c", "true", extra="      runAfter: [b]"),
    )
    assert cond(result.object) == ("True", "Completed", "Tasks Completed: 0 (Failed: 0, Cancelled 0), Skipped: 3")
    reasons = {s["name"]: s["reason"] for s in result.object["status"]["skippedTasks"]}
    assert reasons == {
        "a": "When Expressions evaluated to false",
        "b": "Results were missing",
        "c": "Parent Tasks were skipped",
    }


def test_a_result_a_succeeded_task_never_wrote_fails_validation(tmp_path: Path) -> None:
    result = run(
        tmp_path,
        "    tasks:"
        + task("a", "true", results="        results: [{name: r}]")
        + task("b", "echo $(tasks.a.results.r)"),
    )
    assert cond(result.object) == (
        "False",
        "PipelineValidationFailed",
        'Tasks Completed: 1 (Failed: 0, Cancelled 0), Skipped: 0, Failed Validation: 1 (task "a" completed '
        'successfully but did not emit the result "r", which is referenced by task "b")',
    )
    assert [c["metadata"]["name"] for c in result.children] == ["pr-a"]


def test_retries_until_an_attempt_passes(tmp_path: Path) -> None:
    result = run(tmp_path, "    tasks:" + task("a", "[ $(context.task.retry-count) -ge 2 ]", extra="      retries: 2"))
    assert cond(result.object) == ("True", "Succeeded", "Tasks Completed: 1 (Failed: 0, Cancelled 0), Skipped: 0")
    status = child(result, "pr-a")["status"]
    assert [cond({"status": r})[:2] for r in status["retriesStatus"]] == [("False", "StepFailed")] * 2
    assert [r["podName"] for r in status["retriesStatus"]] + [status["podName"]] == [
        "pr-a-pod",
        "pr-a-pod-retry1",
        "pr-a-pod-retry2",
    ]


def test_a_pipeline_task_timeout_fails_its_taskrun(tmp_path: Path) -> None:
    result = run(tmp_path, "    tasks:" + task("a", "sleep 10", extra="      timeout: 1s"))
    assert cond(result.object) == ("False", "Failed", "Tasks Completed: 1 (Failed: 1, Cancelled 0), Skipped: 0")
    assert cond(child(result, "pr-a")) == ("False", "TaskRunTimeout", 'TaskRun "pr-a" failed to finish within "1s"')


def test_the_pipeline_timeout_cancels_running_tasks_and_skips_finally(tmp_path: Path) -> None:
    result = run(
        tmp_path,
        "    tasks:" + task("a", "sleep 10") + "    finally:" + task("f", "true"),
        extra_spec="  timeouts: {pipeline: 1s}",
    )
    assert cond(result.object) == ("False", "PipelineRunTimeout", 'PipelineRun "pr" failed to finish within "1s"')
    assert cond(child(result, "pr-a")) == (
        "False",
        "TaskRunCancelled",
        'TaskRun "pr-a" was cancelled. TaskRun cancelled as the PipelineRun it belongs to has timed out.',
    )
    assert [c["metadata"]["name"] for c in result.children] == ["pr-a"]


def test_cancel_stops_running_tasks_and_finally_does_not_run(tmp_path: Path) -> None:
    cancel = threading.Event()
    threading.Timer(0.5, cancel.set).start()
    result = run(tmp_path, "    tasks:" + task("a", "sleep 10") + "    finally:" + task("f", "true"), cancel=cancel)
    assert cond(result.object) == ("False", "Cancelled", 'PipelineRun "pr" was cancelled')
    assert cond(child(result, "pr-a")) == (
        "False",
        "TaskRunCancelled",
        'TaskRun "pr-a" was cancelled. TaskRun cancelled as the PipelineRun it belongs to has been cancelled.',
    )
    assert [c["metadata"]["name"] for c in result.children] == ["pr-a"]


def test_one_failing_matrix_run_fails_the_task_once_and_the_others_finish(tmp_path: Path) -> None:
    result = run(
        tmp_path,
        """    tasks:
    - name: m
      matrix:
        params: [{name: n, value: ["1", "2", "3"]}]
      taskSpec:
        params: [{name: n}]
        steps:
        - {image: alpine, script: '[ $(params.n) != 2 ]'}
""",
    )
    assert cond(result.object) == ("False", "Failed", "Tasks Completed: 1 (Failed: 1, Cancelled 0), Skipped: 0")
    outcomes = {c["metadata"]["name"]: cond(c)[0] for c in result.children}
    assert outcomes == {"pr-m-0": "True", "pr-m-1": "False", "pr-m-2": "True"}


def test_independent_tasks_run_at_the_same_time(tmp_path: Path) -> None:
    # Each task waits (up to 10 s) for the other's mark in a shared claim: both finish only if they overlap.
    wait = "touch /workspace/s/{me}; for i in $(seq 100); do [ -e /workspace/s/{other} ] && exit 0; sleep 0.1; done"
    wait += "; exit 1"
    ws = "      workspaces: [{name: s, workspace: shared}]"
    body = f"""    workspaces: [{{name: shared}}]
    tasks:
    - name: a
{ws}
      taskSpec:
        workspaces: [{{name: s}}]
        steps: [{{image: alpine, script: '{wait.format(me="a", other="b")}'}}]
    - name: b
{ws}
      taskSpec:
        workspaces: [{{name: s}}]
        steps: [{{image: alpine, script: '{wait.format(me="b", other="a")}'}}]
"""
    spec = "  workspaces: [{name: shared, volumeClaimTemplate: {spec: {}}}]"
    result = run(tmp_path, body, extra_spec=spec)
    assert cond(result.object)[:2] == ("True", "Succeeded")


def test_results_flow_between_tasks_and_into_pipeline_results(tmp_path: Path) -> None:
    result = run(
        tmp_path,
        "    tasks:"
        + task("a", "echo -n 4 > $(results.n.path)", results="        results: [{name: n}]")
        + """
    - name: b
      params: [{name: x, value: "$(tasks.a.results.n)2"}]
      taskSpec:
        params: [{name: x}]
        results: [{name: doubled}]
        steps:
        - {image: alpine, script: 'echo -n $(( $(params.x) * 2 )) > $(results.doubled.path)'}
    results:
    - {name: answer, value: "$(tasks.a.results.n) and $(tasks.b.results.doubled)"}
""",
    )
    assert cond(result.object)[0] == "True"
    assert result.object["status"]["results"] == [{"name": "answer", "value": "4 and 84"}]


def test_a_pipeline_reference_without_a_resolver_fails_as_tekton_reports(tmp_path: Path) -> None:
    obj = {
        "apiVersion": "tekton.dev/v1",
        "kind": "PipelineRun",
        "metadata": {"name": "pr"},
        "spec": {"pipelineRef": {"name": "build"}},
    }
    result = LocalExecutor(tmp_path).run(obj)
    status, reason, message = cond(result.object)
    assert (status, reason) == ("False", "CouldntGetPipeline")
    assert message.startswith("Error retrieving pipeline for pipelinerun default/pr:") and "no resolver" in message


def test_a_missing_pipeline_param_is_parameter_missing(tmp_path: Path) -> None:
    docs = yaml.safe_load_all("""
apiVersion: tekton.dev/v1
kind: Pipeline
metadata: {name: p}
spec:
  params: [{name: who}]
  tasks:
  - {name: a, taskSpec: {steps: [{image: alpine, script: 'true'}]}}
---
apiVersion: tekton.dev/v1
kind: PipelineRun
metadata: {name: pr}
spec: {pipelineRef: {name: p}}
""")
    docs_list = list(docs)
    result = LocalExecutor(tmp_path, resolver_from_documents(docs_list)).run(docs_list[1])
    assert cond(result.object) == (
        "False",
        "ParameterMissing",
        "PipelineRun default/pr is missing some parameters required by Pipeline default/p: "
        "pipelineRun missing parameters: [who]",
    )


def test_a_cycle_is_an_invalid_graph(tmp_path: Path) -> None:
    result = run(
        tmp_path,
        "    tasks:" + task("a", "true", extra="      runAfter: [b]") + task("b", "true", extra="      runAfter: [a]"),
    )
    assert cond(result.object)[:2] == ("False", "PipelineInvalidGraph")
    assert "cycle detected" in cond(result.object)[2]


def test_a_task_reference_of_any_kind_spelling_names_a_task(tmp_path: Path) -> None:
    # Tekton reads every taskRef without a resolver as a namespaced Task, `kind: task` too (tektoncd/pipeline:
    # pkg/reconciler/taskrun/resources/taskref.go, LocalTaskRefResolver).
    docs = list(
        yaml.safe_load_all("""
apiVersion: tekton.dev/v1
kind: Task
metadata: {name: hello}
spec:
  steps: [{image: alpine, script: 'echo hello'}]
---
apiVersion: tekton.dev/v1
kind: PipelineRun
metadata: {name: pr}
spec:
  pipelineSpec:
    tasks:
    - {name: lower, taskRef: {name: hello, kind: task}}
    - {name: upper, taskRef: {name: hello, kind: Task}}
""")
    )
    result = LocalExecutor(tmp_path, resolver_from_documents(docs)).run(docs[1])
    assert cond(result.object) == ("True", "Succeeded", "Tasks Completed: 2 (Failed: 0, Cancelled 0), Skipped: 0")
