"""`taskhub run --backend kubernetes` as a Kubernetes user runs it, against the real kube-apiserver with the fake
controller and kubelet of test_kube_backend: the run's output, its record, and logs that cannot be read."""

from __future__ import annotations

import json
import socket
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner, Result
from kubernetes import client

from hub.cli import main
from tests.kube_fixture import KubeCluster
from tests.runner.test_kube_backend import PIPELINE_RUN, FakeTekton, fake_node, tekton  # noqa: F401

Taskhub = Callable[..., Result]


@pytest.fixture
def taskhub(tmp_path: Path) -> Taskhub:
    """`taskhub ARGS...` on a fresh database of its own; a dict argument is written to a file and passed by name."""
    env = {"TASKHUB_DATA_DIR": str(tmp_path / "data"), "TASKHUB_DATABASE_URL": f"sqlite:///{tmp_path / 't.db'}"}
    assert CliRunner().invoke(main, ["db", "upgrade"], env=env).exit_code == 0

    def invoke(*args: Any, **env_vars: str) -> Result:
        argv = []
        for arg in args:
            if isinstance(arg, dict):
                path = tmp_path / f"{uuid.uuid4().hex}.yaml"
                path.write_text(yaml.safe_dump(arg))
                arg = path
            argv.append(str(arg))
        return CliRunner().invoke(main, argv, env={**env, **env_vars})

    return invoke


@pytest.fixture(scope="module")
def dead_node(kube_cluster: KubeCluster) -> str:
    """A Node whose kubelet endpoint is a loopback port nothing listens on: the API server cannot get its logs."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    name = f"dead-node-{uuid.uuid4().hex[:6]}"
    with kube_cluster.api_client() as api:
        core = client.CoreV1Api(api)
        node: Any = {"metadata": {"name": name}}
        core.create_node(node)
        status = {"addresses": [{"type": "InternalIP", "address": "127.0.0.1"}],
                  "daemonEndpoints": {"kubeletEndpoint": {"Port": port}}}  # fmt: skip
        core.patch_node_status(name, {"status": status})
    return name


def test_taskhub_run_with_the_kubernetes_backend(
    kube_cluster: KubeCluster,
    kube_namespace: str,
    tekton: FakeTekton,  # noqa: F811
    taskhub: Taskhub,
) -> None:
    args = ["run", "-f", PIPELINE_RUN, "--backend", "kubernetes", "-n", kube_namespace, "-k", kube_cluster.kubeconfig]
    with ThreadPoolExecutor(1) as pool:
        controller = pool.submit(tekton.run_pipeline)
        done = taskhub(*args, "-o", "json")
        pr = controller.result()
    assert done.exit_code == 0, done.output
    final = json.loads(done.stdout)
    assert final["metadata"]["name"] == pr and final["status"]["conditions"][0]["reason"] == "Succeeded"
    assert "taskhub.dev/lock" in final["metadata"]["annotations"]  # pinned before it was created
    assert f"[{pr}-greet/count] three" in done.stderr


def test_logs_that_cannot_be_read_are_one_line_each_and_noted_in_the_record(
    kube_cluster: KubeCluster,
    kube_namespace: str,
    tekton: FakeTekton,  # noqa: F811
    dead_node: str,
    taskhub: Taskhub,
) -> None:
    def controller() -> str:
        pr = tekton.wait_for("pipelineruns")["metadata"]["name"]
        tekton.set_condition("pipelineruns", pr, "Unknown", "Running")
        for task, node, phase in (("build", dead_node, "Running"), ("test", None, "Pending")):
            tr = f"{pr}-{task}"
            labels = {"tekton.dev/pipelineRun": pr, "tekton.dev/pipelineTask": task, "tekton.dev/taskRun": tr}
            tekton.objects.create_namespaced_custom_object(
                "tekton.dev", "v1", kube_namespace, "taskruns",
                {"apiVersion": "tekton.dev/v1", "kind": "TaskRun", "metadata": {"name": tr, "labels": labels},
                 "spec": {"taskSpec": {"steps": [{"name": "only"}]}}},
            )  # fmt: skip
            spec: Any = {"containers": [{"name": "step-only", "image": "busybox"}]}
            if node:
                spec["nodeName"] = node
            pod: Any = {"metadata": {"name": f"{tr}-pod", "labels": labels}, "spec": spec}
            tekton.core.create_namespaced_pod(kube_namespace, pod)
            tekton.core.patch_namespaced_pod_status(f"{tr}-pod", kube_namespace, {"status": {"phase": phase}})
            tekton.set_condition("taskruns", tr, "False", "Failed")
        tekton.set_condition("pipelineruns", pr, "False", "Failed")
        return pr

    args = ["run", "-f", PIPELINE_RUN, "--backend", "kubernetes", "-n", kube_namespace, "-k", kube_cluster.kubeconfig]
    with ThreadPoolExecutor(1) as pool:
        playing = pool.submit(controller)
        done = taskhub(*args)
        pr = playing.result()
    assert done.exit_code == 1, done.output
    notes = [line for line in done.stderr.splitlines() if "logs unavailable" in line]
    assert len(notes) == 2 and "HTTP response" not in done.stderr, done.stderr
    build, test = sorted(notes)
    unreachable = f"logs unavailable: the API server could not get them from the kubelet of node {dead_node}: 500 "
    assert build.startswith(f"[{pr}-build/only] [taskhub: {unreachable}Internal Server Error: ")
    assert "connection refused" in build
    assert test == f"[{pr}-test/only] [taskhub: logs unavailable: pod {pr}-test-pod was never scheduled to a node]"
    recorded = taskhub("runs", "logs", "1")
    assert recorded.exit_code == 0, recorded.output
    assert f"[test : only] [taskhub: logs unavailable: pod {pr}-test-pod was never scheduled" in recorded.stdout
    assert f"[build : only] [taskhub: {unreachable}" in recorded.stdout
