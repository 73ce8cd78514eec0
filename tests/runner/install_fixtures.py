"""Fixtures and checks shared by the `taskhub hub` cluster tests: the CLI run against the served hub and the
test cluster, the admin's view of the objects, the cluster's Pipelines version."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from kubernetes import client

from hub.cli import main
from tests.kube_fixture import KubeCluster
from tests.runner.hub_servers import served_hub, stub_hub

# The fixtures, for `from tests.runner.install_fixtures import *`; the check functions are imported by name.
__all__ = ["kubeconfig", "objects", "pipelines_version", "run", "served_hub", "stub_hub"]


@pytest.fixture
def kubeconfig(kube_cluster: KubeCluster, kube_namespace: str, tmp_path: Path) -> Path:
    """An admin kubeconfig whose context's namespace is the test's namespace (so no -n is needed)."""
    return kube_cluster.write_kubeconfig(tmp_path / "kubeconfig", namespace=kube_namespace)


@pytest.fixture
def run(kubeconfig: Path, served_hub: str) -> Any:
    """Runs `taskhub hub <args>` against the served hub and the test cluster; returns the click Result."""

    def run(*args: str, api: str | None = None, config: Path | None = None) -> Result:
        argv = ["hub", *args, "--api-server", api or served_hub, "-k", str(config or kubeconfig)]
        return CliRunner().invoke(main, argv, catch_exceptions=False)

    return run


@pytest.fixture
def objects(kube_cluster: KubeCluster) -> Iterator[client.CustomObjectsApi]:
    with kube_cluster.api_client() as api:
        yield client.CustomObjectsApi(api)


def get_task(objects: client.CustomObjectsApi, namespace: str, name: str, plural: str = "tasks") -> Any:
    version = "v1beta1" if plural == "stepactions" else "v1"
    return objects.get_namespaced_custom_object("tekton.dev", version, namespace, plural, name)


def absent(objects: client.CustomObjectsApi, namespace: str, name: str) -> bool:
    try:
        get_task(objects, namespace, name)
    except client.ApiException as exc:
        return exc.status == 404
    return False


def ok(result: Result) -> str:
    assert result.exit_code == 0, result.output
    return result.stdout


def fails(result: Result, *fragments: str) -> str:
    """The one-line error of a failed command, checked for each fragment; never a traceback."""
    assert result.exit_code != 0, result.output
    assert "Traceback" not in result.output
    error = result.stderr.strip()
    assert error.startswith("Error:") and "\n" not in error, error
    for fragment in fragments:
        assert fragment in error, error
    return error


@pytest.fixture
def pipelines_version(kube_cluster: KubeCluster) -> Iterator[Any]:
    """Sets the cluster's Tekton Pipelines version (the pipelines-info ConfigMap in tekton-pipelines)."""
    kube_cluster.ensure_namespace("tekton-pipelines")
    with kube_cluster.api_client() as api:
        core = client.CoreV1Api(api)

        def set_version(version: str) -> None:
            body = {"metadata": {"name": "pipelines-info"}, "data": {"version": version}}
            try:
                core.replace_namespaced_config_map("pipelines-info", "tekton-pipelines", body)
            except client.ApiException:
                core.create_namespaced_config_map("tekton-pipelines", body)

        yield set_version
        core.delete_namespaced_config_map("pipelines-info", "tekton-pipelines")
