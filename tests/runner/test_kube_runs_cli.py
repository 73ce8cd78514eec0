"""`taskhub run --backend kubernetes` as a Kubernetes user runs it, against the real kube-apiserver with the fake
controller and kubelet of test_kube_backend: namespaces taken as kubectl takes them, the record naming the created
run while it runs, plain names read from the cluster, references passed through to the cluster's resolvers, and
logs that cannot be read."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner, Result
from kubernetes import client

from catalog.db import make_engine
from hub.cli import main
from runner.pinning import LOCK_ANNOTATION
from runner.records import RunRecords
from runner.run_details import RunDetail
from tests.conftest import REPO
from tests.jobs.processes import wait_until
from tests.kube_fixture import KubeCluster
from tests.runner.hub_servers import served_hub  # noqa: F401
from tests.runner.test_kube_backend import PIPELINE_RUN, FakeTekton, fake_node, tekton  # noqa: F401

Taskhub = Callable[..., Result]
TASKHUB = str(Path(sys.executable).parent / "taskhub")


@pytest.fixture
def taskhub(tmp_path: Path, sqlite_templates: dict[str, Path]) -> Taskhub:
    """`taskhub ARGS...` on a database of its own holding the indexed test catalog; a dict argument is written to a
    file and passed by name."""
    shutil.copy(sqlite_templates["indexed"], tmp_path / "t.db")
    env = {"TASKHUB_DATA_DIR": str(tmp_path / "data"), "TASKHUB_DATABASE_URL": f"sqlite:///{tmp_path / 't.db'}"}

    def invoke(*args: Any, **env_vars: str) -> Result:
        argv = []
        for arg in args:
            if isinstance(arg, dict):
                path = tmp_path / f"{uuid.uuid4().hex}.yaml"
                path.write_text(yaml.safe_dump(arg))
                arg = path
            argv.append(str(arg))
        return CliRunner().invoke(main, argv, env={**env, **env_vars})

    invoke.database_url = env["TASKHUB_DATABASE_URL"]  # type: ignore[attr-defined]
    return invoke


@pytest.fixture
def context_kubeconfig(kube_cluster: KubeCluster, kube_namespace: str, tmp_path: Path) -> Path:
    """An admin kubeconfig whose context names the test's namespace, so that no -n is needed."""
    return kube_cluster.write_kubeconfig(tmp_path / "context.kubeconfig", namespace=kube_namespace)


def recorded_while(taskhub: Taskhub, run_id: int, ready: Callable[[RunDetail], bool]) -> RunDetail:
    """The record of run `run_id` once `ready` holds (the CLI writes it from another thread)."""
    engine = make_engine(taskhub.database_url)  # type: ignore[attr-defined]
    try:
        deadline = time.monotonic() + 20
        while True:
            detail = RunRecords(engine).get(run_id)
            if detail is not None and ready(detail):
                return detail
            if time.monotonic() > deadline:
                raise AssertionError(f"run {run_id} is recorded as {detail}")
            time.sleep(0.05)
    finally:
        engine.dispose()


def finish(controller: FakeTekton, plural: str, seen: list[dict[str, Any]] | None = None) -> str:
    """Play the controller for one run: wait for it, keep it as created in `seen`, and let it succeed."""
    created = controller.wait_for(plural)
    if seen is not None:
        seen.append(created)
    name = str(created["metadata"]["name"])
    controller.set_condition(plural, name, "True", "Succeeded")
    return name


def run_played(taskhub: Taskhub, controller: FakeTekton, plural: str, *args: Any) -> tuple[Result, dict[str, Any]]:
    """`taskhub ARGS...` with the controller finishing its one run: the command's result and the run as created."""
    seen: list[dict[str, Any]] = []
    with ThreadPoolExecutor(1) as pool:
        playing = pool.submit(finish, controller, plural, seen)
        done = taskhub(*args)
        playing.result()
    assert done.exit_code == 0, done.output
    return done, seen[0]


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


# -- namespaces and the record --------------------------------------------------------------------------------------


def test_run_and_cancel_without_n_take_the_kubeconfig_contexts_namespace_and_the_record_names_the_created_run(
    kube_namespace: str,
    tekton: FakeTekton,  # noqa: F811
    taskhub: Taskhub,
    context_kubeconfig: Path,
) -> None:
    seen: dict[str, Any] = {}

    def controller() -> None:
        created = tekton.wait_for("pipelineruns")
        name = created["metadata"]["name"]
        tekton.set_condition("pipelineruns", name, "Unknown", "Running")
        seen["record"] = recorded_while(taskhub, 1, lambda detail: detail.name == name)
        seen["created"] = created
        cancel = [TASKHUB, "cancel", name, "-k", str(context_kubeconfig)]
        seen["cancel"] = subprocess.run(cancel, capture_output=True, text=True, timeout=60)
        tekton.wait_for("pipelineruns", lambda run: run["spec"].get("status") == "Cancelled")
        tekton.set_condition("pipelineruns", name, "False", "Cancelled")

    with ThreadPoolExecutor(1) as pool:
        playing = pool.submit(controller)
        done = taskhub("run", "-f", PIPELINE_RUN, "--backend", "kubernetes", "-k", context_kubeconfig)
        playing.result()
    created, record = seen["created"], seen["record"]
    assert seen["cancel"].returncode == 0, seen["cancel"].stderr
    assert seen["cancel"].stdout == (
        f"PipelineRun {created['metadata']['name']} in {kube_namespace} namespace: spec.status set to Cancelled\n"
    )
    assert done.exit_code == 1 and "Cancelled" in done.stderr, done.output
    # While it ran, the record named the run the cluster created, not its generateName.
    assert record.status == "Running" and record.name.startswith("hello-run-") and record.name != "hello-run-"
    assert (record.namespace, record.uid) == (kube_namespace, created["metadata"]["uid"])


def test_a_run_whose_taskhub_was_killed_is_abandoned_with_a_hint_naming_the_created_run(
    kube_namespace: str,
    tekton: FakeTekton,  # noqa: F811
    taskhub: Taskhub,
    context_kubeconfig: Path,
    tmp_path: Path,
) -> None:
    """The issue's `kubectl get pipelinerun scen-c-kill -n default`: the hint names the run the cluster created
    (generateName resolved) in the namespace it went to, the kubeconfig context's."""
    run_file = tmp_path / "run.yaml"
    run_file.write_text(yaml.safe_dump(PIPELINE_RUN))
    env = {**os.environ, "TASKHUB_DATA_DIR": str(tmp_path / "data"), "TASKHUB_JOB_LEASE_SECONDS": "2",
           "TASKHUB_DATABASE_URL": taskhub.database_url}  # type: ignore[attr-defined]  # fmt: skip
    command = [TASKHUB, "run", "-f", str(run_file), "--backend", "kubernetes", "-k", str(context_kubeconfig)]
    running = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        name = tekton.wait_for("pipelineruns")["metadata"]["name"]
        tekton.set_condition("pipelineruns", name, "Unknown", "Running")
        recorded_while(taskhub, 1, lambda detail: detail.name == name and detail.status == "Running")
    finally:
        running.kill()
        running.wait()

    def abandoned() -> Result | None:  # once the lease of its job lapses, as any process on any host reads it
        shown = taskhub("runs", "show", "1")
        return shown if shown.exit_code == 0 and "Abandoned" in shown.stdout else None

    shown = wait_until(abandoned, "the run to be shown abandoned")
    assert f"kubectl get pipelinerun {name} -n {kube_namespace}" in shown.stdout


def test_a_run_naming_another_namespace_than_n_is_refused(
    kube_namespace: str, taskhub: Taskhub, context_kubeconfig: Path
) -> None:
    elsewhere = {**PIPELINE_RUN, "metadata": {"generateName": "hello-run-", "namespace": "elsewhere"}}
    done = taskhub("run", "-f", elsewhere, "--backend", "kubernetes", "-n", kube_namespace, "-k", context_kubeconfig)
    assert done.exit_code == 1
    assert done.stderr == (
        f'Error: PipelineRun "hello-run-": the namespace from the provided object "elsewhere" does not match the '
        f'namespace "{kube_namespace}" runs go to: remove metadata.namespace or choose elsewhere\n'
    )


# -- references -----------------------------------------------------------------------------------------------------


def task_run(ref: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": "tekton.dev/v1", "kind": "TaskRun", "metadata": {"generateName": "clone-"},
            "spec": {"params": [{"name": "url", "value": "https://example.com/repo.git"}], "taskRef": ref}}  # fmt: skip


def test_a_task_installed_with_hub_install_runs_by_name_read_and_locked_from_the_cluster(
    kube_cluster: KubeCluster,
    kube_namespace: str,
    tekton: FakeTekton,  # noqa: F811
    taskhub: Taskhub,
    context_kubeconfig: Path,
    served_hub: str,  # noqa: F811
) -> None:
    installed = taskhub("hub", "install", "task", "git-clone", "--api-server", served_hub, "-k", context_kubeconfig)
    assert installed.exit_code == 0, installed.output
    with kube_cluster.api_client() as api:
        task: Any = client.CustomObjectsApi(api).get_namespaced_custom_object(
            "tekton.dev", "v1", kube_namespace, "tasks", "git-clone"
        )
    args = ("run", "-f", task_run({"name": "git-clone"}), "--backend", "kubernetes", "-k", context_kubeconfig)
    _, created = run_played(taskhub, tekton, "taskruns", *args)
    assert "taskRef" not in created["spec"] and created["spec"]["taskSpec"] == task["spec"]
    (entry,) = json.loads(created["metadata"]["annotations"][LOCK_ANNOTATION])
    assert (entry["path"], entry["resolver"], entry["name"], entry["version"]) == (
        "spec.taskRef", "installed", "git-clone", "0.10",
    )  # fmt: skip
    uri = f"/apis/tekton.dev/v1/namespaces/{kube_namespace}/task/git-clone@{task['metadata']['uid']}"
    assert entry["uri"] == uri

    missing = taskhub("run", "-f", task_run({"name": "nope"}), "--backend", "kubernetes", "-k", context_kubeconfig)
    assert missing.exit_code == 1
    assert f'task "nope" not found in the {kube_namespace} namespace of the cluster at {kube_cluster.url}' in (
        missing.stderr
    )


def pipeline_run(*tasks: tuple[str, dict[str, Any]]) -> dict[str, Any]:
    return {"apiVersion": "tekton.dev/v1", "kind": "PipelineRun", "metadata": {"generateName": "mixed-"},
            "spec": {"pipelineSpec": {"tasks": [{"name": name, "taskRef": ref} for name, ref in tasks]}}}  # fmt: skip


HUB_REF = {"resolver": "hub", "params": [{"name": "name", "value": "git-clone"}, {"name": "version", "value": "0.9"}]}
TASKHUB_REF = {"resolver": "taskhub", "params": [{"name": "name", "value": "git-clone"},
                                                 {"name": "version", "value": ">=0.7"}]}  # fmt: skip
GIT_REF = {"resolver": "git", "params": [{"name": "url", "value": "https://example.com/tasks.git"},
                                         {"name": "pathInRepo", "value": "task/lint.yaml"}]}  # fmt: skip


def test_pass_through_leaves_taskhub_and_git_references_to_the_cluster_and_pins_hub_ones(
    kube_cluster: KubeCluster,
    kube_namespace: str,
    tekton: FakeTekton,  # noqa: F811
    taskhub: Taskhub,
    context_kubeconfig: Path,
) -> None:
    mixed = pipeline_run(("from-hub", HUB_REF), ("clone", TASKHUB_REF), ("lint", GIT_REF))
    refused = taskhub("run", "-f", mixed, "--backend", "kubernetes", "-k", context_kubeconfig)
    assert refused.exit_code == 1
    assert 'tasks[lint].taskRef: Task reference uses resolver "git", which only a cluster resolves' in refused.stderr
    with kube_cluster.api_client() as api:
        listing: Any = client.CustomObjectsApi(api).list_namespaced_custom_object(
            "tekton.dev", "v1", kube_namespace, "pipelineruns"
        )
    assert listing["items"] == []  # refused before anything was created

    args = ("run", "-f", mixed, "--backend", "kubernetes", "--pass-through", "-k", context_kubeconfig)
    _, created = run_played(taskhub, tekton, "pipelineruns", *args)
    from_hub, clone, lint = created["spec"]["pipelineSpec"]["tasks"]
    assert (clone, lint) == ({"name": "clone", "taskRef": TASKHUB_REF}, {"name": "lint", "taskRef": GIT_REF})
    assert "taskRef" not in from_hub and from_hub["taskSpec"]["steps"][0]["name"] == "clone"
    lock = json.loads(created["metadata"]["annotations"][LOCK_ANNOTATION])
    assert [(e["resolver"], e["version"], e.get("passedThrough", False)) for e in lock] == [
        ("hub", "0.9", False), ("taskhub", None, True), ("git", None, True),
    ]  # fmt: skip
    shown = taskhub("runs", "show", "2")
    assert "taskhub resolver of the cluster" in shown.stdout and "git resolver of the cluster" in shown.stdout


def readme_resolver_example() -> dict[str, Any]:
    """The PipelineRun of the README's example for `taskhub resolver serve` (its last YAML block)."""
    readme = (REPO / "README.md").read_text()
    section = readme[readme.index("## taskhub as a cluster's resolver") : readme.index("## Running and pinning")]
    spec = yaml.safe_load(section.rsplit("```yaml\n", 1)[1].split("```", 1)[0])
    return {"apiVersion": "tekton.dev/v1", "kind": "PipelineRun", "metadata": {"generateName": "readme-"}, **spec}


def test_the_readme_example_for_resolver_serve_goes_to_the_cluster_as_written_with_pass_through(
    tekton: FakeTekton,  # noqa: F811
    taskhub: Taskhub,
    context_kubeconfig: Path,
) -> None:
    example = readme_resolver_example()
    args = ("run", "-f", example, "--backend", "kubernetes", "--pass-through", "-k", context_kubeconfig)
    _, created = run_played(taskhub, tekton, "pipelineruns", *args)
    assert created["spec"] == example["spec"]  # untouched: both references are for the cluster's taskhub

    # Pinned here instead: the hub reference by this hub's index, the bundle only from a registry it may reach.
    pinned = taskhub("run", "-f", example, "--pin-only", "-o", "json")
    assert pinned.exit_code == 1
    assert pinned.stderr == (
        "Error: spec.pipelineSpec.tasks[lint].taskRef: registry registry.example.com is not on this hub's "
        "allowlist of registries to resolve from (TASKHUB_RESOLVE_REGISTRIES); no request was made to it\n"
    )


def test_resolver_taskhub_is_accepted_by_pin_only(taskhub: Taskhub) -> None:
    done = taskhub("run", "-f", pipeline_run(("clone", TASKHUB_REF)), "--pin-only", "-o", "json")
    assert done.exit_code == 0, done.output
    (clone,) = json.loads(done.stdout)["spec"]["pipelineSpec"]["tasks"]
    assert clone["taskRef"] == {"resolver": "taskhub", "params": [{"name": "name", "value": "git-clone"},
                                                                   {"name": "version", "value": "0.10"}]}  # fmt: skip
    lock = json.loads(json.loads(done.stdout)["metadata"]["annotations"][LOCK_ANNOTATION])
    assert [(e["resolver"], e["version"]) for e in lock] == [("taskhub", "0.10")]
