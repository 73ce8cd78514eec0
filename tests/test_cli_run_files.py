"""`taskhub run -f FILE` with whole files, as `kubectl create -f` takes them: the other documents (ConfigMaps,
Secrets, claims, Tasks) are applied first and kept, every run in the file runs and is printed, the exit status
says whether all succeeded, and a named claim keeps its files from one run to the next."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner, Result

from hub.cli import main

# A ConfigMap and a Secret reach steps as volumes, as env (valueFrom) and as envFrom; two TaskRuns and a
# PipelineRun use them.
CONFIGURED = """
apiVersion: v1
kind: ConfigMap
metadata: {name: settings}
data: {greeting: hello, mode: fast}
---
apiVersion: v1
kind: Secret
metadata: {name: login}
type: Opaque
data: {password: czNjcjN0}
stringData: {user: admin}
---
apiVersion: tekton.dev/v1
kind: Task
metadata: {name: check-config}
spec:
  params: [{name: expected-mode, default: fast}]
  volumes:
  - {name: settings, configMap: {name: settings}}
  - {name: login, secret: {secretName: login, items: [{key: password, path: pw}]}}
  steps:
  - name: check
    image: alpine
    volumeMounts:
    - {name: settings, mountPath: /etc/settings}
    - {name: login, mountPath: /etc/login}
    env:
    - {name: GREETING, valueFrom: {configMapKeyRef: {name: settings, key: greeting}}}
    - {name: PASSWORD, valueFrom: {secretKeyRef: {name: login, key: password}}}
    envFrom:
    - {secretRef: {name: login}, prefix: LOGIN_}
    script: |
      [ "$(cat /etc/settings/mode)" = "$(params.expected-mode)" ]
      [ "$(cat /etc/login/pw)" = s3cr3t ] && [ ! -e /etc/login/user ]
      [ "$GREETING" = hello ] && [ "$PASSWORD" = s3cr3t ] && [ "$LOGIN_user" = admin ]
      echo "checked $(params.expected-mode)"
---
apiVersion: tekton.dev/v1
kind: TaskRun
metadata: {name: first}
spec:
  taskRef: {name: check-config}
---
apiVersion: tekton.dev/v1
kind: TaskRun
metadata: {generateName: second-}
spec:
  params: [{name: expected-mode, value: fast}]
  taskRef: {name: check-config}
---
apiVersion: tekton.dev/v1
kind: PipelineRun
metadata: {name: third}
spec:
  pipelineSpec:
    tasks:
    - {name: check, taskRef: {name: check-config, kind: Task}}
    - name: mounted
      workspaces: [{name: conf, workspace: conf}]
      taskSpec:
        workspaces: [{name: conf, readOnly: true}]
        steps: [{image: alpine, script: 'grep -qx hello $(workspaces.conf.path)/greeting'}]
    workspaces: [{name: conf}]
  workspaces:
  - {name: conf, configMap: {name: settings}}
"""

# A build cache in a named claim: each run adds a line to it and prints how many it holds.
CACHED = """
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: build-cache}
spec:
  accessModes: [ReadWriteOnce]
  resources: {requests: {storage: 1Gi}}
---
apiVersion: tekton.dev/v1
kind: TaskRun
metadata: {generateName: build-}
spec:
  workspaces: [{name: cache, persistentVolumeClaim: {claimName: build-cache}}]
  taskSpec:
    workspaces: [{name: cache}]
    steps:
    - image: alpine
      script: 'echo built >> $(workspaces.cache.path)/log; echo "cache holds $(wc -l < $(workspaces.cache.path)/log)"'
"""


@pytest.fixture
def taskhub(tmp_path: Path, database_url: str):
    env = {"TASKHUB_DATA_DIR": str(tmp_path / "data"), "TASKHUB_DATABASE_URL": database_url}

    def taskhub(*args: str, code: int = 0) -> Result:
        done = CliRunner().invoke(main, list(args), env=env)
        assert done.exit_code == code, done.output
        return done

    return taskhub


def write(tmp_path: Path, name: str, text: str) -> str:
    (tmp_path / name).write_text(text)
    return str(tmp_path / name)


def test_every_run_of_a_file_runs_with_its_configmaps_and_secrets(taskhub, tmp_path: Path) -> None:
    done = taskhub("run", "-f", write(tmp_path, "configured.yaml", CONFIGURED), "-o", "json")
    decoder, text, ended = json.JSONDecoder(), done.stdout.strip(), []
    while text:
        obj, end = decoder.raw_decode(text)
        ended.append(obj)
        text = text[end:].strip()
    assert [(r["kind"], r["status"]["conditions"][0]["reason"]) for r in ended] == [
        ("TaskRun", "Succeeded"),
        ("TaskRun", "Succeeded"),
        ("PipelineRun", "Succeeded"),
    ]
    assert ended[0]["metadata"]["name"] == "first" and ended[1]["metadata"]["name"].startswith("second-")
    applied = done.stderr.splitlines()[:3]
    assert applied == ["configmap/settings created", "secret/login created", "task.tekton.dev/check-config created"]
    assert "[first/check] checked fast" in done.stderr.splitlines()
    assert [line.split()[1] for line in done.stderr.splitlines() if line.startswith("run ")] == ["1", "2", "3"]

    # They are kept, as a cluster keeps what `kubectl create -f` made; the Secret's values are not shown.
    assert yaml.safe_load(taskhub("get", "cm", "settings", "-o", "yaml").stdout)["data"]["mode"] == "fast"
    assert yaml.safe_load(taskhub("get", "secret", "login", "-o", "yaml").stdout)["data"] == {
        "password": None,
        "user": None,
    }
    assert json.loads(taskhub("runs", "list", "-o", "json").stdout)["total"] == 3


def test_one_failing_run_of_several_fails_the_command_after_all_ran(taskhub, tmp_path: Path) -> None:
    failing = CONFIGURED.replace(
        "{name: first}\nspec:\n", "{name: first}\nspec:\n  params: [{name: expected-mode, value: slow}]\n"
    )
    done = taskhub("run", "-f", write(tmp_path, "failing.yaml", failing), code=1)
    assert done.stdout.splitlines()[0] == "taskrun.tekton.dev/first" and len(done.stdout.splitlines()) == 3
    outcomes = [line for line in done.stderr.splitlines() if line.startswith(("taskrun/", "pipelinerun/"))]
    assert [line.split(": ")[1] for line in outcomes] == ["StepFailed", "Succeeded", "Succeeded"]


def test_a_named_claim_keeps_its_files_across_runs_until_it_is_made_again(taskhub, tmp_path: Path) -> None:
    cached = write(tmp_path, "cached.yaml", CACHED)
    assert "cache holds 1" in taskhub("run", "-f", cached).stderr
    assert "cache holds 2" in taskhub("run", "-f", cached).stderr  # the same claim: the cache is reused

    taskhub("delete", "pvc", "build-cache")
    assert "cache holds 1" in taskhub("run", "-f", cached).stderr  # a new claim of that name starts empty

    unclaimed = write(tmp_path, "unclaimed.yaml", CACHED.split("---", 1)[1].replace("build-cache", "typo"))
    failed = taskhub("run", "-f", unclaimed, "-o", "yaml", code=1)
    message = yaml.safe_load(failed.stdout)["status"]["conditions"][0]["message"]
    assert 'persistentvolumeclaim "typo" not found in namespace "default"' in message
