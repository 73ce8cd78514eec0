"""TaskRuns on the local executor: steps, params, results, failures, timeouts, cancel, logs and status shape."""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

import pytest
import yaml

from runner.local import InvalidRunObject, LocalExecutor, LocalRun, resolver_from_documents


def run(tmp_path: Path, text: str, **kwargs: Any) -> LocalRun:
    """Runs the TaskRun in `text` (other documents become resolvable by name)."""
    docs = [d for d in yaml.safe_load_all(text) if d]
    runnable = [d for d in docs if d["kind"] == "TaskRun"]
    executor = LocalExecutor(tmp_path, resolver_from_documents(docs), **kwargs)
    return executor.run(runnable[0], kwargs.pop("cancel", None) if "cancel" in kwargs else None)


def taskrun(steps: str, *, extra: str = "", params: str = "") -> str:
    return f"""
apiVersion: tekton.dev/v1
kind: TaskRun
metadata: {{name: tr}}
spec:
{params}
  taskSpec:
{extra}
    steps:
{steps}
"""


def cond(run_: LocalRun) -> tuple[str, str, str]:
    c = run_.condition
    return c["status"], c["reason"], c["message"]


def log_of(run_: LocalRun, container: str) -> str:
    return next(log.path for log in run_.logs if log.container == container).read_text()


def test_steps_run_in_order_share_the_workspace_and_report_tektons_status(tmp_path: Path) -> None:
    result = run(
        tmp_path,
        taskrun("""
    - name: write
      image: alpine
      script: echo hello > /workspace/greeting
    - image: ubuntu
      script: |
        #!/usr/bin/env bash
        cat /workspace/greeting
"""),
    )
    assert cond(result) == ("True", "Succeeded", "All Steps have completed executing")
    status = result.object["status"]
    assert status["podName"] == "tr-pod"
    assert status["startTime"] <= status["completionTime"]
    assert [(s["name"], s["container"], s["imageID"]) for s in status["steps"]] == [
        ("write", "step-write", "alpine"),
        ("unnamed-1", "step-unnamed-1", "ubuntu"),
    ]
    assert all(s["terminated"]["exitCode"] == 0 and s["terminationReason"] == "Completed" for s in status["steps"])
    assert log_of(result, "step-unnamed-1") == "hello\n"
    assert status["taskSpec"]["steps"][0]["script"] == "echo hello > /workspace/greeting"


def test_params_string_array_object_defaults_reach_command_and_args(tmp_path: Path) -> None:
    result = run(
        tmp_path,
        taskrun(
            """
    - name: echo
      image: ubuntu
      command: [echo]
      args: ["$(params.words[*])", "$(params.who)", "$(params.obj.k)", "$(params.words[0])"]
""",
            extra="""    params:
    - name: who
      default: world
    - name: words
      type: array
    - name: obj
      properties: {k: {type: string}}
      default: {k: key}
""",
            params="""  params:
  - name: words
    value: [a, "b c"]
""",
        ),
    )
    assert cond(result)[0] == "True"
    assert log_of(result, "step-echo") == "a b c world key a\n"


def test_a_missing_param_fails_validation_before_any_step(tmp_path: Path) -> None:
    result = run(tmp_path, taskrun("    - {image: alpine, script: 'true'}", extra="    params: [{name: needed}]"))
    assert cond(result) == (
        "False",
        "TaskRunValidationFailed",
        "invalid input params for task tr: missing values for these params which have no default values: [needed]",
    )
    assert "steps" not in result.object["status"] and result.logs == []


def test_an_enum_violation_is_invalid_param_value(tmp_path: Path) -> None:
    result = run(
        tmp_path,
        taskrun(
            "    - {image: alpine, script: 'true'}",
            extra="    params: [{name: mode, enum: [fast, slow]}]",
            params="  params: [{name: mode, value: medium}]",
        ),
    )
    assert cond(result)[1:] == (
        "InvalidParamValue",
        "invalid input params for task tr: param `mode` value: medium is not in the enum list",
    )


def test_results_are_verbatim_and_typed_by_their_declaration(tmp_path: Path) -> None:
    result = run(
        tmp_path,
        taskrun(
            """
    - image: alpine
      script: |
        echo hello > $(results.text.path)
        echo -n '["a", "b"]' > $(results.list.path)
        echo -n '{"url": "u"}' > /tekton/results/obj
""",
            extra="""    results:
    - name: text
    - name: list
      type: array
    - name: obj
      properties: {url: {type: string}}
""",
        ),
    )
    assert result.object["status"]["results"] == [
        {"name": "text", "type": "string", "value": "hello\n"},
        {"name": "list", "type": "array", "value": ["a", "b"]},
        {"name": "obj", "type": "object", "value": {"url": "u"}},
    ]


def test_a_result_of_the_wrong_type_fails_the_taskrun(tmp_path: Path) -> None:
    result = run(
        tmp_path,
        taskrun(
            "    - {image: alpine, script: 'echo -n 42 > $(results.list.path)'}",
            extra="    results: [{name: list, type: array}]",
        ),
    )
    status, reason, message = cond(result)
    assert (status, reason) == ("False", "TaskRunValidationFailed")
    assert 'task result is expected to be "array" type but was initialized to a different type "string"' in message


def test_a_result_over_the_size_limit_fails_the_taskrun(tmp_path: Path) -> None:
    result = run(
        tmp_path,
        taskrun(
            "    - {image: alpine, script: 'head -c 200 /dev/zero | tr \"\\\\0\" x > $(results.big.path)'}",
            extra="    results: [{name: big}]",
        ),
        max_result_size=100,
    )
    assert cond(result)[:2] == ("False", "TaskRunResultLargerThanAllowedLimit")


def test_a_failing_step_skips_the_rest_and_names_the_step(tmp_path: Path) -> None:
    result = run(
        tmp_path,
        taskrun("""
    - {name: fail, image: alpine, script: 'exit 3'}
    - {name: never, image: alpine, script: 'echo ran > /workspace/ran'}
"""),
    )
    assert cond(result) == ("False", "StepFailed", '"step-fail" exited with code 3: Error')
    fail, never = result.object["status"]["steps"]
    assert (fail["terminated"]["exitCode"], fail["terminationReason"]) == (3, "Error")
    assert (never["terminated"]["exitCode"], never["terminationReason"]) == (1, "Skipped")
    assert not any(log.container == "step-never" for log in result.logs)


def test_a_script_without_shebang_stops_at_its_first_failing_command(tmp_path: Path) -> None:
    result = run(tmp_path, taskrun('    - {name: s, image: ubuntu, script: "false\\necho after"}'))
    assert cond(result)[1] == "StepFailed"
    assert "after" not in log_of(result, "step-s")


def test_on_error_continue_records_the_exit_code_and_goes_on(tmp_path: Path) -> None:
    result = run(
        tmp_path,
        taskrun("""
    - {name: flaky, image: alpine, onError: continue, script: 'exit 7'}
    - {name: next, image: alpine, script: 'cat $(steps.step-flaky.exitCode.path)'}
"""),
    )
    assert cond(result)[0] == "True"
    flaky = result.object["status"]["steps"][0]
    assert (flaky["terminated"]["exitCode"], flaky["terminationReason"]) == (7, "Continued")
    assert log_of(result, "step-next") == "7"


def test_a_step_timeout_kills_the_step_and_fails_the_taskrun(tmp_path: Path) -> None:
    result = run(tmp_path, taskrun("    - {name: slow, image: alpine, timeout: 200ms, script: 'sleep 30'}"))
    assert cond(result) == (
        "False",
        "StepFailed",
        '"step-slow" exited because the step exceeded the specified timeout limit',
    )
    assert result.object["status"]["steps"][0]["terminationReason"] == "TimeoutExceeded"


def test_a_taskrun_timeout_ends_it_as_tekton_reports(tmp_path: Path) -> None:
    text = taskrun("    - {name: slow, image: alpine, script: 'sleep 30'}").replace(
        "spec:\n", "spec:\n  timeout: 300ms\n", 1
    )
    result = run(tmp_path, text)
    assert cond(result) == ("False", "TaskRunTimeout", 'TaskRun "tr" failed to finish within "300ms"')
    assert result.object["status"]["steps"][0]["terminationReason"] == "TaskRunTimeout"


def test_retries_rerun_in_a_new_pod_with_the_retry_count(tmp_path: Path) -> None:
    text = taskrun("    - {name: s, image: alpine, script: '[ $(context.task.retry-count) -ge 2 ]'}").replace(
        "spec:\n", "spec:\n  retries: 3\n", 1
    )
    result = run(tmp_path, text)
    status = result.object["status"]
    assert cond(result)[0] == "True"
    assert status["podName"] == "tr-pod-retry2"
    assert [r["podName"] for r in status["retriesStatus"]] == ["tr-pod", "tr-pod-retry1"]
    assert {r["conditions"][0]["reason"] for r in status["retriesStatus"]} == {"StepFailed"}


def test_cancel_kills_the_running_step_promptly(tmp_path: Path) -> None:
    cancel = threading.Event()
    threading.Timer(0.3, cancel.set).start()
    docs = yaml.safe_load(
        taskrun("    - {name: s, image: alpine, script: 'sleep 30'}\n    - {name: t, image: alpine, script: 'true'}")
    )
    result = LocalExecutor(tmp_path).run(docs, cancel)
    assert cond(result)[:2] == ("False", "TaskRunCancelled")
    assert cond(result)[2].startswith('TaskRun "tr" was cancelled.')
    assert [s["terminationReason"] for s in result.object["status"]["steps"]] == [
        "TaskRunCancelled",
        "TaskRunCancelled",
    ]


def test_step_logs_go_to_files_and_to_the_sink(tmp_path: Path) -> None:
    lines: list[tuple[str, str, str]] = []
    result = run(
        tmp_path,
        taskrun("    - {name: talk, image: alpine, script: 'echo out; echo err >&2'}"),
        log_sink=lambda tr, container, line: lines.append((tr, container, line)),
    )
    assert log_of(result, "step-talk") == "out\nerr\n"
    assert lines == [("tr", "step-talk", "out\n"), ("tr", "step-talk", "err\n")]
    assert result.logs[0].path.is_relative_to(result.directory)


def test_steps_get_a_private_home_and_the_tekton_paths_map_into_the_run(tmp_path: Path) -> None:
    result = run(
        tmp_path,
        taskrun("""
    - name: look
      image: ubuntu
      workingDir: /tekton/home
      script: |
        #!/usr/bin/env bash
        echo "$HOME" > /workspace/home
        pwd > /workspace/pwd
    - {name: show, image: ubuntu, script: 'cat /workspace/home /workspace/pwd'}
"""),
    )
    home, pwd = log_of(result, "step-show").splitlines()
    assert home != os.environ.get("HOME") and Path(home).is_relative_to(result.directory)
    assert pwd.endswith("/tekton/home") and Path(pwd).is_relative_to(result.directory)


def test_a_working_dir_outside_every_mount_is_made_per_step_and_is_what_pwd_says(tmp_path: Path) -> None:
    # The container runtime makes such a directory in the step's own filesystem (tektoncd/pipeline:
    # pkg/pod/workingdir_init.go makes only those under /workspace): the next step does not see its files.
    result = run(
        tmp_path,
        taskrun("""
    - name: build
      image: alpine
      workingDir: /var/build/out
      script: '[ "$PWD" = /var/build/out ] && touch made && [ -e /var/build/out/made ]'
    - name: other
      image: alpine
      script: '[ ! -e /var/build/out/made ]'
"""),
    )
    assert cond(result) == ("True", "Succeeded", "All Steps have completed executing"), log_of(result, "step-build")


def test_workspaces_from_inline_configmap_and_an_unbound_optional_one(tmp_path: Path) -> None:
    result = run(
        tmp_path,
        """
apiVersion: v1
kind: ConfigMap
metadata: {name: settings}
data: {colour: blue}
---
apiVersion: tekton.dev/v1
kind: TaskRun
metadata: {name: tr}
spec:
  workspaces:
  - {name: config, configMap: {name: settings}}
  taskSpec:
    workspaces:
    - {name: config, readOnly: true}
    - {name: extra, optional: true}
    steps:
    - name: s
      image: alpine
      script: |
        cat $(workspaces.config.path)/colour
        echo " bound=$(workspaces.extra.bound) path=[$(workspaces.extra.path)]"
        touch $(workspaces.config.path)/new 2>/dev/null && echo writable || echo read-only
""",
    )
    assert log_of(result, "step-s") == "blue bound=false path=[]\nread-only\n"


def test_a_task_reference_without_a_resolver_is_a_resolution_failure(tmp_path: Path) -> None:
    obj = {
        "apiVersion": "tekton.dev/v1",
        "kind": "TaskRun",
        "metadata": {"name": "tr"},
        "spec": {"taskRef": {"name": "git-clone"}},
    }
    result = LocalExecutor(tmp_path).run(obj)
    status, reason, message = cond(result)
    assert (status, reason) == ("False", "TaskRunResolutionFailed")
    assert 'Task "git-clone"' in message and "no resolver" in message


def test_an_image_with_an_unknown_entrypoint_says_so_in_the_step_log(tmp_path: Path) -> None:
    result = run(tmp_path, taskrun("    - {name: s, image: example.com/tool:1, args: [--version]}"))
    assert cond(result)[:2] == ("False", "StepFailed")
    assert "entrypoint of image 'example.com/tool:1' is not known" in log_of(result, "step-s")


@pytest.mark.parametrize(
    ("obj", "message"),
    [
        ("not a mapping", "must be a mapping"),
        ({"apiVersion": "tekton.dev/v1", "kind": "Task", "spec": {}}, "only TaskRun and PipelineRun run"),
        ({"apiVersion": "tekton.dev/v1beta1", "kind": "TaskRun", "spec": {}}, "runs tekton.dev/v1 objects"),
        (
            {"apiVersion": "tekton.dev/v1", "kind": "TaskRun", "spec": {}},
            "needs metadata.name or metadata.generateName",
        ),
    ],
)
def test_objects_that_cannot_run_are_refused_clearly(tmp_path: Path, obj: Any, message: str) -> None:
    with pytest.raises(InvalidRunObject, match=message):
        LocalExecutor(tmp_path).run(obj)
