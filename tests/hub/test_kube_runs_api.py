"""POST /v1/runs with the Kubernetes backend, against the real kube-apiserver with the fake controller of
test_kube_backend: a run goes to TASKHUB_RUN_NAMESPACE, else to the kubeconfig context's namespace, and its record
says so from the 202 on."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from hub.app import create_app
from hub.config import Settings
from tests.hub.test_auth import bearer, issue
from tests.hub.test_runs_api import wait_for_end
from tests.hub.workers import working
from tests.kube_fixture import KubeCluster
from tests.runner.test_kube_backend import PIPELINE_RUN, FakeTekton


@pytest.fixture
def cluster_app(settings: Settings, kube_cluster: KubeCluster, kube_namespace: str, tmp_path: Path) -> Iterator[Flask]:
    """A hub whose API runs go to the test cluster; its kubeconfig's context names the test's namespace."""
    kubeconfig = kube_cluster.write_kubeconfig(tmp_path / "context.kubeconfig", namespace=kube_namespace)
    app = create_app(dataclasses.replace(settings, run_backend="kubernetes", kubeconfig=str(kubeconfig)))
    with working(app):
        yield app


def post_and_finish(
    app: Flask, cluster: KubeCluster, namespace: str, run: dict[str, Any], path: str = "/v1/runs"
) -> tuple[Any, Any]:
    """POST the run; play the controller in `namespace` until it succeeds; return (the 202's record, the end's)."""
    http, writer = app.test_client(), bearer(issue(app, "ci", "runs:write"))
    controller = FakeTekton(cluster, namespace, "no-node")
    try:
        with ThreadPoolExecutor(1) as pool:
            created = pool.submit(controller.wait_for, "pipelineruns")
            started = http.post(path, json=run, headers=writer)
            assert started.status_code == 202, started.get_data(as_text=True)
            name = created.result()["metadata"]["name"]
            controller.set_condition("pipelineruns", name, "True", "Succeeded")
        return started.get_json()["data"], wait_for_end(
            http, started.get_json()["data"]["links"]["self"], headers=writer
        )
    finally:
        controller.close()


def test_an_api_run_goes_to_the_kubeconfig_contexts_namespace(
    cluster_app: Flask, kube_cluster: KubeCluster, kube_namespace: str
) -> None:
    accepted, ended = post_and_finish(cluster_app, kube_cluster, kube_namespace, PIPELINE_RUN)
    assert accepted["namespace"] == kube_namespace and accepted["backend"] == "kubernetes"
    assert ended["status"] == "Succeeded" and ended["namespace"] == kube_namespace
    assert ended["name"].startswith("hello-run-") and ended["uid"] == ended["object"]["metadata"]["uid"]


def test_an_api_run_goes_to_TASKHUB_RUN_NAMESPACE_and_one_naming_another_is_refused(
    settings: Settings, kube_cluster: KubeCluster, kube_namespace: str, tmp_path: Path
) -> None:
    chosen = kube_cluster.create_namespace()
    kubeconfig = kube_cluster.write_kubeconfig(tmp_path / "context.kubeconfig", namespace=kube_namespace)
    app = create_app(
        dataclasses.replace(settings, run_backend="kubernetes", kubeconfig=str(kubeconfig), run_namespace=chosen)
    )
    try:
        with working(app):
            accepted, ended = post_and_finish(app, kube_cluster, chosen, PIPELINE_RUN)
            assert accepted["namespace"] == ended["namespace"] == chosen and ended["status"] == "Succeeded"
            elsewhere = {**PIPELINE_RUN, "metadata": {"generateName": "hello-run-", "namespace": kube_namespace}}
            refused = app.test_client().post("/v1/runs", json=elsewhere, headers=bearer(issue(app, "w", "runs:write")))
            assert refused.status_code == 400
            assert refused.get_json()["message"] == (
                f'the namespace from the provided object "{kube_namespace}" does not match the namespace "{chosen}" '
                f"runs go to: remove metadata.namespace or choose {kube_namespace}"
            )
    finally:
        kube_cluster.delete_namespace(chosen)


def test_an_api_run_may_name_resolver_taskhub_which_taskhub_resolves_and_locks(
    cluster_app: Flask, kube_cluster: KubeCluster, kube_namespace: str, indexed: Any
) -> None:
    taskhub_ref = {"resolver": "taskhub", "params": [{"name": "name", "value": "git-clone"},
                                                     {"name": "version", "value": ">=0.7, <0.10"}]}  # fmt: skip
    run = {**PIPELINE_RUN, "spec": {"pipelineSpec": {"tasks": [{"name": "clone", "taskRef": taskhub_ref}]}}}
    _, ended = post_and_finish(cluster_app, kube_cluster, kube_namespace, run)
    assert ended["status"] == "Succeeded", ended
    (entry,) = ended["lock"]
    assert (entry["resolver"], entry["name"], entry["version"]) == ("taskhub", "git-clone", "0.9")
    (clone,) = ended["object"]["spec"]["pipelineSpec"]["tasks"]
    assert "taskRef" not in clone and clone["taskSpec"]["steps"][0]["name"] == "clone"


def test_an_api_run_may_pass_what_only_the_cluster_resolves_through_to_it(
    cluster_app: Flask, kube_cluster: KubeCluster, kube_namespace: str, indexed: Any
) -> None:
    hub_ref = {"resolver": "hub", "params": [{"name": "name", "value": "git-clone"},
                                             {"name": "version", "value": "0.9"}]}  # fmt: skip
    git_ref = {"resolver": "git", "params": [{"name": "url", "value": "https://example.com/tasks.git"},
                                             {"name": "pathInRepo", "value": "task/lint.yaml"}]}  # fmt: skip
    tasks = [{"name": "clone", "taskRef": hub_ref}, {"name": "lint", "taskRef": git_ref}]
    run = {**PIPELINE_RUN, "spec": {"pipelineSpec": {"tasks": tasks}}}
    _, ended = post_and_finish(cluster_app, kube_cluster, kube_namespace, run, "/v1/runs?passThrough=true")
    assert ended["status"] == "Succeeded", ended
    clone, lint = ended["object"]["spec"]["pipelineSpec"]["tasks"]
    assert lint == {"name": "lint", "taskRef": git_ref}  # as written, for the cluster's git resolver
    assert "taskRef" not in clone and clone["taskSpec"]["steps"][0]["name"] == "clone"
    assert [(e["resolver"], e["version"], e.get("passedThrough", False)) for e in ended["lock"]] == [
        ("hub", "0.9", False), ("git", None, True),
    ]  # fmt: skip
