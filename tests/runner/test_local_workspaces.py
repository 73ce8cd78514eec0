"""Workspaces on the local executor: `readOnly` enforced (EROFS for the step, writable for everyone else) and
step-level (isolated) workspaces seen only by the steps that list them."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path
from typing import Any

import pytest
import yaml

from runner.local import LocalExecutor, LocalRun, resolver_from_documents

REPO = Path(__file__).resolve().parents[2]


def run(tmp_path: Path, text: str) -> LocalRun:
    docs = [d for d in yaml.safe_load_all(text) if d]
    runnable = [d for d in docs if d["kind"] in ("TaskRun", "PipelineRun")]
    return LocalExecutor(tmp_path, resolver_from_documents(docs)).run(runnable[0])


def cond(obj: dict[str, Any]) -> tuple[str, str, str]:
    c = obj["status"]["conditions"][0]
    return c["status"], c["reason"], c["message"]


def log_of(result: LocalRun, container: str, taskrun: str | None = None) -> str:
    return next(
        log.path.read_text()
        for log in result.logs
        if log.container == container and (taskrun is None or log.taskrun == taskrun)
    )


# Tekton's examples/v1/taskruns/workspace-readonly.yaml: one claim bound twice, read-write and read-only.
WORKSPACE_READONLY = """
apiVersion: tekton.dev/v1
kind: TaskRun
metadata: {name: workspaces-readonly}
spec:
  workspaces:
    - {name: write-allowed, persistentVolumeClaim: {claimName: my-pvc-2}}
    - {name: write-disallowed, persistentVolumeClaim: {claimName: my-pvc-2}}
  taskSpec:
    workspaces:
    - name: write-allowed
    - name: write-disallowed
      readOnly: true
    steps:
    - name: write-allowed
      image: ubuntu
      script: echo "hello" > $(workspaces.write-allowed.path)/foo
    - name: read-allowed
      image: ubuntu
      script: cat $(workspaces.write-allowed.path)/foo | grep "hello"
    - name: write-disallowed
      image: ubuntu
      script: |
        echo "goodbye" > $(workspaces.write-disallowed.path)/foo || touch write-failed.txt
        test -f write-failed.txt
    - name: read-again
      image: ubuntu
      script: cat $(workspaces.write-disallowed.path)/foo | grep "hello"
    - name: write-fails
      image: ubuntu
      script: echo "goodbye" > $(workspaces.write-disallowed.path)/foo
"""


def test_a_read_only_workspace_refuses_writes_while_the_same_claim_stays_writable(tmp_path: Path) -> None:
    result = run(tmp_path, WORKSPACE_READONLY)
    status = result.object["status"]
    assert cond(result.object) == ("False", "StepFailed", '"step-write-fails" exited with code 2: Error')
    assert [s["terminationReason"] for s in status["steps"]] == ["Completed"] * 4 + ["Error"]
    assert log_of(result, "step-read-again") == "hello\n"
    assert "Read-only file system" in log_of(result, "step-write-disallowed")
    assert "Read-only file system" in log_of(result, "step-write-fails")
    assert (tmp_path / "claims" / "my-pvc-2" / "foo").read_text() == "hello\n"


def test_read_only_volume_mounts_and_configmaps_cannot_be_written(tmp_path: Path) -> None:
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
    - {name: config}
    volumes:
    - {name: scratch, emptyDir: {}}
    steps:
    - name: fill
      image: alpine
      volumeMounts: [{name: scratch, mountPath: /scratch}]
      script: echo kept > /scratch/f
    - name: try
      image: alpine
      volumeMounts: [{name: scratch, mountPath: /scratch, readOnly: true}]
      workingDir: /scratch
      script: |
        cat f $(workspaces.config.path)/colour
        echo lost > f || echo "scratch refused"
        echo red > $(workspaces.config.path)/colour || echo "config refused"
        cat /scratch/f $(workspaces.config.path)/colour
""",
    )
    assert cond(result.object)[:2] == ("True", "Succeeded")
    log = log_of(result, "step-try")
    # A ConfigMap value has no trailing newline: `cat` runs the files together.
    assert log.startswith("kept\nblue") and log.endswith("kept\nblue")
    assert "scratch refused\n" in log and "config refused\n" in log
    assert "Read-only file system" in log


def test_other_tasks_write_the_volume_a_read_only_task_only_reads(tmp_path: Path) -> None:
    result = run(
        tmp_path,
        """
apiVersion: tekton.dev/v1
kind: PipelineRun
metadata: {name: pr}
spec:
  workspaces:
  - name: shared
    volumeClaimTemplate: {spec: {accessModes: [ReadWriteOnce]}}
  pipelineSpec:
    workspaces: [{name: shared}]
    tasks:
    - name: write
      workspaces: [{name: out, workspace: shared}]
      taskSpec:
        workspaces: [{name: out}]
        steps: [{image: alpine, script: 'echo one > $(workspaces.out.path)/data'}]
    - name: read
      runAfter: [write]
      onError: continue
      workspaces: [{name: src, workspace: shared}]
      taskSpec:
        workspaces: [{name: src, readOnly: true}]
        steps:
        - image: alpine
          script: |
            cat $(workspaces.src.path)/data
            echo two >> $(workspaces.src.path)/data
    - name: append
      runAfter: [read]
      workspaces: [{name: out, workspace: shared}]
      taskSpec:
        workspaces: [{name: out}]
        steps: [{image: alpine, script: 'echo three >> $(workspaces.out.path)/data; cat $(workspaces.out.path)/data'}]
""",
    )
    read = next(c for c in result.children if c["metadata"]["name"] == "pr-read")
    assert cond(read)[:2] == ("False", "FailureIgnored")
    assert log_of(result, "step-unnamed-0", "pr-read").startswith("one\n")
    assert "Read-only file system" in log_of(result, "step-unnamed-0", "pr-read")
    assert log_of(result, "step-unnamed-0", "pr-append") == "one\nthree\n"
    assert cond(result.object)[:2] == ("True", "Succeeded")


NON_ROOT_RUN = """
import json, sys
from pathlib import Path
import yaml
from runner.local import LocalExecutor
obj = yaml.safe_load(sys.stdin.read())
result = LocalExecutor(Path(sys.argv[1])).run(obj)
logs = {log.container: log.path.read_text() for log in result.logs}
print(json.dumps({"condition": result.condition, "logs": logs}))
"""


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("setpriv"), reason="needs root to become another user")
def test_a_non_root_executor_enforces_read_only_workspaces_too() -> None:
    python = Path(f"/usr/bin/python{sys.version_info.major}.{sys.version_info.minor}")
    site = REPO / ".venv" / "lib" / python.name / "site-packages"
    if not python.exists() or not site.is_dir():
        pytest.skip("no system Python matching the venv for an unprivileged user")
    work = Path(tempfile.mkdtemp(prefix="taskhub-nonroot-", dir="/tmp"))
    os.chmod(work, 0o777)
    taskrun = textwrap.dedent("""
        apiVersion: tekton.dev/v1
        kind: TaskRun
        metadata: {name: tr}
        spec:
          workspaces: [{name: ro, emptyDir: {}}, {name: rw, emptyDir: {}}]
          taskSpec:
            workspaces: [{name: ro, readOnly: true}, {name: rw}]
            steps:
            - name: s
              image: alpine
              script: |
                id -u
                echo x > $(workspaces.rw.path)/f && echo rw-ok
                echo x > $(workspaces.ro.path)/f || echo ro-refused
        """)
    try:
        done = subprocess.run(
            ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", str(python), "-c", NON_ROOT_RUN, str(work)],
            input=taskrun,
            capture_output=True,
            text=True,
            env={"PATH": os.environ["PATH"], "PYTHONPATH": f"{REPO}:{site}"},
            cwd="/tmp",
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        outcome = json.loads(done.stdout)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    assert outcome["condition"]["status"] == "True", outcome
    lines = outcome["logs"]["step-s"].splitlines()
    assert lines[0] == "65534" and lines[1] == "rw-ok" and lines[-1] == "ro-refused"
    assert any("Read-only file system" in line for line in lines)


# Tekton's examples/v1/pipelineruns/beta/isolated-workspaces.yaml (lower-case `mountpath` included).
ISOLATED_WORKSPACES = """
kind: Secret
apiVersion: v1
metadata: {name: test-ssh-credentials}
stringData: {id_rsa: "-----BEGIN OPENSSH PRIVATE KEY-----"}
---
kind: PipelineRun
apiVersion: tekton.dev/v1
metadata: {name: isolated-workspaces}
spec:
  workspaces:
  - {name: ssh-credentials, secret: {secretName: test-ssh-credentials}}
  pipelineSpec:
    workspaces: [{name: ssh-credentials}]
    tasks:
    - name: test-isolation
      workspaces: [{name: creds, workspace: ssh-credentials}]
      taskSpec:
        workspaces: [{name: creds}]
        steps:
        - image: alpine:3.12.0
          script: |
            if [ ! -d /creds ] ; then
              echo "unable to access creds"
              exit 1
            fi
            head -c 10 /creds/id_rsa; echo
          workspaces:
          - name: creds
            mountpath: /creds
        - image: alpine:3.12.0
          script: |
            if [ -d /workspace/creds ] || [ -d /creds ] ; then
              echo "this step should not be able to see creds"
              exit 255
            fi
            echo "no creds here"
"""


def test_a_workspace_listed_by_a_step_is_seen_by_that_step_only(tmp_path: Path) -> None:
    result = run(tmp_path, ISOLATED_WORKSPACES)
    assert cond(result.object)[:2] == ("True", "Succeeded"), result.children
    assert log_of(result, "step-unnamed-0") == "-----BEGIN\n"
    assert log_of(result, "step-unnamed-1") == "no creds here\n"


def test_a_step_listing_an_undeclared_workspace_fails_validation(tmp_path: Path) -> None:
    result = run(
        tmp_path,
        """
apiVersion: tekton.dev/v1
kind: TaskRun
metadata: {name: tr}
spec:
  taskSpec:
    steps:
    - {image: alpine, script: 'true', workspaces: [{name: nope}]}
""",
    )
    assert cond(result.object) == (
        "False",
        "TaskValidationFailed",
        'invalid value: undefined workspace "nope": spec.steps[0].workspaces[0].name',
    )
    assert "steps" not in result.object["status"]


def test_propagated_workspaces_are_declared_in_the_status_task_spec(tmp_path: Path) -> None:
    # A binding an inline taskSpec does not declare is declared for it, by name (tektoncd/pipeline:
    # pkg/workspace/apply.go; pkg/reconciler/taskrun/taskrun_test.go TestPropagatedWorkspaces), also when the
    # binding comes from a PipelineRun's workspace the task only uses.
    result = run(
        tmp_path,
        """
apiVersion: tekton.dev/v1
kind: PipelineRun
metadata: {name: pr}
spec:
  workspaces: [{name: shared, emptyDir: {}}]
  pipelineSpec:
    workspaces: [{name: shared}]
    tasks:
    - name: uses
      taskSpec:
        workspaces: [{name: own, optional: true}]
        steps: [{image: alpine, script: 'touch $(workspaces.shared.path)/x'}]
""",
    )
    assert cond(result.object)[:2] == ("True", "Succeeded")
    assert result.children[0]["status"]["taskSpec"]["workspaces"] == [
        {"name": "own", "optional": True},
        {"name": "shared"},
    ]
