"""`taskhub run -f` as a user runs it: a Task from a locally written catalog, resolved through the hub, run."""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

TASKHUB = str(Path(sys.executable).parent / "taskhub")

TASK = """\
apiVersion: tekton.dev/v1
kind: Task
metadata:
  name: exit-with
  labels:
    app.kubernetes.io/version: "0.1"
  annotations:
    tekton.dev/pipelines.minVersion: "0.50.0"
    tekton.dev/displayName: exit with
spec:
  description: Says hello and exits with the given code.
  params:
    - name: code
      default: "0"
  steps:
    - name: say
      image: alpine
      script: |
        #!/bin/sh
        echo "hello from exit-with"
        exit $(params.code)
"""

RUN = """\
apiVersion: tekton.dev/v1
kind: PipelineRun
metadata:
  name: local-run
spec:
  params:
    - name: code
      value: "0"
  pipelineSpec:
    params:
      - name: code
    tasks:
      - name: first
        params:
          - name: code
            value: $(params.code)
        taskRef:
          resolver: hub
          params:
            - {name: catalog, value: local}
            - {name: name, value: exit-with}
            - {name: version, value: ">=0.1"}
"""


@pytest.fixture
def taskhub(tmp_path, empty_database_url):
    env = {**os.environ, "TASKHUB_DATA_DIR": str(tmp_path / "data"), "TASKHUB_DATABASE_URL": empty_database_url}

    def taskhub(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        done = subprocess.run([TASKHUB, *args], env=env, capture_output=True, text=True, timeout=120)
        if check:
            assert done.returncode == 0, done.stdout + done.stderr
        return done

    catalog = tmp_path / "catalog"
    (catalog / "task/exit-with/0.1").mkdir(parents=True)
    (catalog / "task/exit-with/0.1/exit-with.yaml").write_text(TASK)
    (catalog / "task/exit-with/0.1/README.md").write_text("# exit-with\n")
    taskhub("db", "upgrade")
    taskhub("catalog", "add", "local", str(catalog))
    taskhub("catalog", "sync", "local")
    (tmp_path / "run.yaml").write_text(RUN)
    return taskhub


def test_run_succeeds_end_to_end_and_prints_the_run_with_its_status_and_lock(taskhub, tmp_path):
    done = taskhub("run", "-f", str(tmp_path / "run.yaml"), "-o", "json")
    run = json.loads(done.stdout)
    assert run["kind"] == "PipelineRun"
    succeeded = next(c for c in run["status"]["conditions"] if c["type"] == "Succeeded")
    assert succeeded["status"] == "True"
    assert "[local-run-first/say] hello from exit-with" in done.stderr
    lock = json.loads(run["metadata"]["annotations"]["taskhub.dev/lock"])
    assert [(e["path"], e["name"], e["version"]) for e in lock] == [
        ("spec.pipelineSpec.tasks[first].taskRef", "exit-with", "0.1")
    ]
    assert "taskSpec" in run["spec"]["pipelineSpec"]["tasks"][0]


def test_a_failing_run_exits_1_and_pin_only_prints_without_running(taskhub, tmp_path):
    failed = taskhub("run", "-f", str(tmp_path / "run.yaml"), "-p", "code=3", "-o", "yaml", check=False)
    assert failed.returncode == 1, failed.stderr
    assert "status: 'False'" in failed.stdout or 'status: "False"' in failed.stdout

    pinned = taskhub("run", "-f", str(tmp_path / "run.yaml"), "--pin-only", "-o", "json")
    ref = json.loads(pinned.stdout)["spec"]["pipelineSpec"]["tasks"][0]["taskRef"]
    assert {"name": "version", "value": "0.1"} in ref["params"]
    assert "[" not in pinned.stderr  # nothing ran


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{not: [yaml", "not YAML"),
        ("kind: Task\napiVersion: tekton.dev/v1\n", "not a run"),
        (RUN.replace("exit-with}", "missing}"), "tasks[first].taskRef: requested resource"),
    ],
)
def test_bad_input_is_a_one_line_error(taskhub, tmp_path, text, message):
    (tmp_path / "bad.yaml").write_text(textwrap.dedent(text))
    done = taskhub("run", "-f", str(tmp_path / "bad.yaml"), check=False)
    assert done.returncode == 1
    assert message in done.stderr and len(done.stderr.strip().splitlines()) == 1
