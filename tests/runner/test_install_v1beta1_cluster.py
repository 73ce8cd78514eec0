"""A cluster that serves Tasks and Pipelines only as tekton.dev/v1beta1 (as Tekton Pipelines before v0.43 did):
`v1` catalog manifests are converted down, `v1beta1` ones go in as they are."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from click.testing import CliRunner
from kubernetes import client

from hub.cli import main
from tests.kube_fixture import KubeCluster, running_cluster
from tests.runner.hub_servers import served_hub  # noqa: F401

V1BETA1_ONLY = {
    "Task": ("tasks", ("v1beta1",)),
    "Pipeline": ("pipelines", ("v1beta1",)),
    "StepAction": ("stepactions", ("v1alpha1",)),
}


@pytest.fixture(scope="module")
def old_cluster() -> Iterator[KubeCluster]:
    with running_cluster("taskhub-kube-v1beta1-", crds=V1BETA1_ONLY) as cluster:
        yield cluster


def test_v1_manifests_are_converted_down_for_a_v1beta1_cluster(old_cluster, served_hub, tmp_path):  # noqa: F811
    namespace = old_cluster.create_namespace()
    config = old_cluster.write_kubeconfig(tmp_path / "old", namespace=namespace)

    def install(*args: str) -> None:
        argv = ["hub", "install", *args, "--api-server", served_hub, "-k", str(config)]
        result = CliRunner().invoke(main, argv, catch_exceptions=False)
        assert result.exit_code == 0, result.output

    install("task", "git-clone", "--version", "0.10")  # tekton.dev/v1 in the catalog
    install("task", "yq", "--version", "0.3")  # tekton.dev/v1beta1 in the catalog
    install("pipeline", "buildpacks", "--version", "0.2")  # tekton.dev/v1
    install("stepaction", "git-clone")  # tekton.dev/v1beta1, served here as v1alpha1
    with old_cluster.api_client() as api:
        objects = client.CustomObjectsApi(api)
        expected = [
            ("tasks", "git-clone", "v1beta1"),
            ("tasks", "yq", "v1beta1"),
            ("pipelines", "buildpacks", "v1beta1"),
            ("stepactions", "git-clone", "v1alpha1"),
        ]
        for plural, name, version in expected:
            stored = objects.get_namespaced_custom_object("tekton.dev", version, namespace, plural, name)
            assert stored["apiVersion"] == f"tekton.dev/{version}"
            assert stored["metadata"]["labels"]["hub.tekton.dev/catalog"] == "tekton"
