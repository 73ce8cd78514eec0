"""CEL `when` expressions on the local executor: substituted, then evaluated with cel-python; false skips the
task like any `when`, an expression that cannot be evaluated fails the PipelineRun (`CELEvaluationFailed`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from runner.local import LocalExecutor, LocalRun


def run(tmp_path: Path, when: str, *, branch: str = "main", flavour: str = "plain", extra_tasks: str = "") -> LocalRun:
    text = f"""
apiVersion: tekton.dev/v1
kind: PipelineRun
metadata: {{name: pr}}
spec:
  params: [{{name: branch, value: {branch}}}, {{name: flavour, value: {flavour}}}]
  pipelineSpec:
    params: [{{name: branch}}, {{name: flavour}}]
    tasks:
    - name: deploy
      when: {when}
      taskSpec:
        steps: [{{image: alpine, script: 'echo deployed'}}]
{extra_tasks}
"""
    return LocalExecutor(tmp_path).run(yaml.safe_load(text))


def cond(result: LocalRun) -> tuple[str, str, str]:
    c = result.condition
    return c["status"], c["reason"], c["message"]


def ran(result: LocalRun) -> list[str]:
    return sorted(c["metadata"]["name"] for c in result.children)


ON_MAIN = """[{cel: "'$(params.branch)' == 'main'"}]"""


def test_a_true_cel_expression_runs_the_task(tmp_path: Path) -> None:
    result = run(tmp_path, ON_MAIN)
    assert cond(result) == ("True", "Succeeded", "Tasks Completed: 1 (Failed: 0, Cancelled 0), Skipped: 0")
    assert ran(result) == ["pr-deploy"]
    assert result.object["status"]["childReferences"][0]["whenExpressions"] == [{"cel": "'main' == 'main'"}]


def test_a_false_cel_expression_skips_the_task_as_any_when_does(tmp_path: Path) -> None:
    result = run(tmp_path, ON_MAIN, branch="feature")
    assert cond(result) == ("True", "Completed", "Tasks Completed: 0 (Failed: 0, Cancelled 0), Skipped: 1")
    assert ran(result) == []
    assert result.object["status"]["skippedTasks"] == [
        {
            "name": "deploy",
            "reason": "When Expressions evaluated to false",
            "whenExpressions": [{"cel": "'feature' == 'main'"}],
        }
    ]


@pytest.mark.parametrize(
    ("branch", "flavour", "runs"),
    [("main", "plain", True), ("main", "fancy", False), ("dev", "plain", False)],
)
def test_cel_and_input_operator_values_expressions_are_anded(
    tmp_path: Path, branch: str, flavour: str, runs: bool
) -> None:
    when = (
        """[{input: "$(params.flavour)", operator: in, values: [plain]},"""
        """ {cel: "'$(params.branch)' in ['main', 'release']"}]"""
    )
    result = run(tmp_path, when, branch=branch, flavour=flavour)
    assert ran(result) == (["pr-deploy"] if runs else [])
    skipped = result.object["status"].get("skippedTasks", [])
    assert [s["reason"] for s in skipped] == ([] if runs else ["When Expressions evaluated to false"])


@pytest.mark.parametrize(
    ("when", "detail"),
    [
        ("""[{cel: "'$(params.branch)' =="}]""", "ERROR: <input>:1:"),
        ("""[{cel: "'$(params.branch)'"}]""", "The CEL expression 'main' is not evaluated to a boolean"),
        ("""[{cel: "'$(params.branch)' + 1 == 2"}]""", "ERROR: <input>: found no matching overload"),
    ],
)
def test_a_cel_expression_that_cannot_be_evaluated_fails_the_run_before_any_task(
    tmp_path: Path, when: str, detail: str
) -> None:
    result = run(
        tmp_path, when, extra_tasks="    - {name: other, taskSpec: {steps: [{image: alpine, script: 'true'}]}}"
    )
    status, reason, message = cond(result)
    assert (status, reason) == ("False", "CELEvaluationFailed")
    assert message.startswith("Error evaluating CEL pr: [User error] ")
    assert detail in message
    assert ran(result) == []


def test_a_cel_expression_on_a_task_result_is_evaluated_once_the_result_exists(tmp_path: Path) -> None:
    extra = """
    - name: check
      taskSpec:
        results: [{name: verdict}]
        steps: [{image: alpine, script: 'printf yes > $(results.verdict.path)'}]
    - name: gated
      when: [{cel: "'$(tasks.check.results.verdict)' == 'yes'"}]
      taskSpec:
        steps: [{image: alpine, script: 'true'}]
    - name: not-gated
      when: [{cel: "'$(tasks.check.results.verdict)' != 'yes'"}]
      taskSpec:
        steps: [{image: alpine, script: 'true'}]
"""
    result = run(tmp_path, ON_MAIN, extra_tasks=extra)
    assert ran(result) == ["pr-check", "pr-deploy", "pr-gated"]
    skipped: list[dict[str, Any]] = result.object["status"]["skippedTasks"]
    assert skipped == [
        {
            "name": "not-gated",
            "reason": "When Expressions evaluated to false",
            "whenExpressions": [{"cel": "'yes' != 'yes'"}],
        }
    ]


def test_cel_and_input_in_one_expression_is_invalid(tmp_path: Path) -> None:
    result = run(tmp_path, """[{cel: "true", input: a, operator: in, values: [a]}]""")
    status, reason, message = cond(result)
    assert (status, reason) == ("False", "PipelineValidationFailed")
    assert "cel and input+operator+values cannot be set in one WhenExpression" in message


def test_a_step_when_with_cel_skips_the_step(tmp_path: Path) -> None:
    text = """
apiVersion: tekton.dev/v1
kind: TaskRun
metadata: {name: tr}
spec:
  params: [{name: mode, value: quick}]
  taskSpec:
    params: [{name: mode}]
    steps:
    - {name: slow, image: alpine, script: 'echo slow', when: [{cel: "'$(params.mode)' == 'thorough'"}]}
    - {name: fast, image: alpine, script: 'echo fast', when: [{cel: "'$(params.mode)' == 'quick'"}]}
"""
    result = LocalExecutor(tmp_path).run(yaml.safe_load(text))
    assert result.condition["status"] == "True"
    assert [s["terminationReason"] for s in result.object["status"]["steps"]] == ["Skipped", "Completed"]


def test_a_cel_expression_a_result_makes_unevaluable_fails_the_run_when_it_is_reached(tmp_path: Path) -> None:
    extra = """
    - name: check
      taskSpec:
        results: [{name: verdict}]
        steps: [{image: alpine, script: 'printf yes > $(results.verdict.path)'}]
    - name: gated
      when: [{cel: "$(tasks.check.results.verdict) == 'yes'"}]
      taskSpec:
        steps: [{image: alpine, script: 'true'}]
"""
    result = run(tmp_path, ON_MAIN, extra_tasks=extra)
    status, reason, message = cond(result)
    assert (status, reason) == ("False", "CELEvaluationFailed")
    assert message == "Error evaluating CEL pr: [User error] ERROR: <input>: undeclared reference to 'yes'"
    assert "pr-gated" not in ran(result)
