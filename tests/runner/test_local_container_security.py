"""Container mode and the pod's securityContext: the user and groups steps and sidecars run as, and runAsNonRoot
refused as the kubelet refuses it, with real podman (tests/container_fixture.py). Skipped where podman is not
installed."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from runner.local import LocalExecutor, LocalRun
from runner.local.errors import RunFailure
from runner.local.podman_pod import ContainerMode
from runner.local.podsecurity import user_options
from runner.podman import Podman
from tests.container_fixture import ImageMirror


@pytest.fixture
def containers(podman: Podman, image_mirror: ImageMirror) -> ContainerMode:
    return ContainerMode(podman, dict(image_mirror.images))


def run(tmp_path: Path, containers: ContainerMode, text: str) -> LocalRun:
    return LocalExecutor(tmp_path, containers=containers).run(yaml.safe_load(text))


def cond(obj: dict[str, Any]) -> tuple[str, str, str]:
    c = obj["status"]["conditions"][0]
    return c["status"], c["reason"], c["message"]


def results(obj: dict[str, Any]) -> dict[str, str]:
    return {r["name"]: r["value"] for r in obj["status"].get("results") or []}


IDS = 'echo "$(id -u) $(id -g) $(id -G)"'


def test_the_pods_user_and_groups_reach_steps_and_sidecars_a_steps_own_user_wins(
    tmp_path: Path, containers: ContainerMode
) -> None:
    result = run(
        tmp_path,
        containers,
        f"""
apiVersion: tekton.dev/v1
kind: TaskRun
metadata: {{name: ids}}
spec:
  podTemplate:
    securityContext: {{runAsUser: 1234, runAsGroup: 5678, fsGroup: 2000, supplementalGroups: [3000]}}
  taskSpec:
    results: [{{name: pod}}, {{name: own}}, {{name: sidecar}}]
    volumes: [{{name: shared, emptyDir: {{}}}}]
    sidecars:
    - name: watcher
      image: alpine
      volumeMounts: [{{name: shared, mountPath: /shared}}]
      script: '{IDS} > /shared/ids.tmp && mv /shared/ids.tmp /shared/ids && exec sleep 600'
      readinessProbe: {{exec: {{command: [test, -f, /shared/ids]}}}}
    steps:
    - name: pod-user
      image: alpine
      volumeMounts: [{{name: shared, mountPath: /shared}}]
      script: |
        {IDS} | tr -d '\\n' > $(results.pod.path)
        tr -d '\\n' < /shared/ids > $(results.sidecar.path)
    - name: own-user
      image: ubuntu
      securityContext: {{runAsUser: 4321}}
      script: {IDS} | tr -d '\\n' > $(results.own.path)
""",
    )
    assert cond(result.object) == ("True", "Succeeded", "All Steps have completed executing")
    assert results(result.object) == {
        "pod": "1234 5678 5678 2000 3000",
        "sidecar": "1234 5678 5678 2000 3000",
        "own": "4321 5678 5678 2000 3000",  # its own user, the pod's group and groups
    }


def test_run_as_non_root_refuses_root_as_the_kubelet_does_also_from_a_pipelineruns_template(
    tmp_path: Path, containers: ContainerMode
) -> None:
    result = run(
        tmp_path,
        containers,
        """
apiVersion: tekton.dev/v1
kind: PipelineRun
metadata: {name: nonroot}
spec:
  taskRunTemplate:
    podTemplate: {securityContext: {runAsNonRoot: true, runAsUser: 1000}}
  taskRunSpecs:
  - pipelineTaskName: image-root
    podTemplate: {securityContext: {runAsNonRoot: true}}
  pipelineSpec:
    tasks:
    - name: allowed
      taskSpec:
        results: [{name: uid}]
        steps: [{name: s, image: alpine, script: 'id -u | tr -d "\\n" > $(results.uid.path)'}]
    - name: image-root
      taskSpec:
        steps: [{name: s, image: alpine, script: 'echo ran as $(id -u)'}]
    - name: step-root
      taskSpec:
        steps: [{name: s, image: alpine, securityContext: {runAsUser: 0}, script: 'echo ran as $(id -u)'}]
""",
    )
    children = {child["metadata"]["name"]: child for child in result.children}
    assert cond(children["nonroot-allowed"])[:2] == ("True", "Succeeded")
    assert results(children["nonroot-allowed"]) == {"uid": "1000"}
    assert cond(children["nonroot-image-root"]) == (
        "False",
        "CreateContainerConfigError",
        'container has runAsNonRoot and image will run as root (pod: "nonroot-image-root-pod_default", '
        "container: step-s)",
    )
    assert cond(children["nonroot-step-root"]) == (
        "False",
        "CreateContainerConfigError",
        'container\'s runAsUser breaks non-root policy (pod: "nonroot-step-root-pod_default", container: step-s)',
    )
    assert not any("ran as" in log.path.read_text() for log in result.logs if log.path.exists())
    assert cond(result.object)[:2] == ("False", "Failed")


@pytest.mark.parametrize(
    ("pod", "own", "image_user", "options"),
    [
        ({"runAsGroup": 5678}, None, "", ["--user", "0:5678"]),  # no user: the image's, root where it names none
        ({"runAsGroup": 5678}, None, "app:app", ["--user", "app:5678"]),
        ({"runAsUser": 1}, {"runAsUser": 2, "runAsGroup": 3}, "", ["--user", "2:3"]),
        (
            {"runAsNonRoot": True, "fsGroup": 7, "supplementalGroups": [7, 8]},
            None,
            "1000:1000",
            ["--group-add", "7", "--group-add", "8"],
        ),
        ({"runAsNonRoot": True}, {"runAsNonRoot": False}, "", []),  # the container's own word wins
    ],
)
def test_user_options_as_the_kubelet_works_them_out(
    pod: dict[str, Any], own: dict[str, Any] | None, image_user: str, options: list[str]
) -> None:
    assert user_options(pod, own, lambda: image_user, pod="p", namespace="n", container="step-s") == options


@pytest.mark.parametrize(
    ("pod", "image_user", "message"),
    [
        ({"runAsNonRoot": True}, "app", "image has non-numeric user (app), cannot verify user is non-root"),
        ({"runAsNonRoot": True}, "0:0", "image will run as root"),
        ({"runAsUser": "1000"}, "", "securityContext.runAsUser: '1000' is not an id from 0 to 2147483647"),
    ],
)
def test_user_options_refuse_what_the_kubelet_refuses(pod: dict[str, Any], image_user: str, message: str) -> None:
    with pytest.raises(RunFailure, match=re.escape(message)) as refused:
        user_options(pod, None, lambda: image_user, pod="p", namespace="n", container="step-s")
    assert refused.value.reason == "CreateContainerConfigError"
