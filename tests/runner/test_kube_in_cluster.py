"""In a pod there is no kubeconfig: taskhub then talks to the cluster as the pod's ServiceAccount (its token, the
cluster's CA and its namespace, mounted where Kubernetes mounts them), as the worker and the resolver of
deploy/ do. Checked against the tests' real kube-apiserver with the mounted files stood in for."""

from __future__ import annotations

import pytest
from kubernetes import client
from kubernetes.config import incluster_config

from runner import kube
from tests.kube_fixture import ADMIN_TOKEN


def test_without_a_kubeconfig_a_pod_uses_its_service_account(kube_cluster, kube_namespace, tmp_path, monkeypatch):
    mounted = tmp_path / "serviceaccount"
    mounted.mkdir()
    (mounted / "token").write_text(ADMIN_TOKEN)
    (mounted / "ca.crt").write_bytes(kube_cluster.ca_cert.read_bytes())
    (mounted / "namespace").write_text(kube_namespace)
    monkeypatch.setattr(incluster_config, "SERVICE_TOKEN_FILENAME", str(mounted / "token"))
    monkeypatch.setattr(incluster_config, "SERVICE_CERT_FILENAME", str(mounted / "ca.crt"))
    monkeypatch.setattr(kube, "SERVICE_ACCOUNT_NAMESPACE", mounted / "namespace")
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "none"))
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "127.0.0.1")
    monkeypatch.setenv("KUBERNETES_SERVICE_PORT", str(kube_cluster.port))

    api, namespace = kube.api_client_from_kubeconfig(None, None)
    with api:
        assert namespace == kube_namespace
        assert client.CoreV1Api(api).read_namespace(kube_namespace).metadata.name == kube_namespace


def test_outside_a_pod_a_missing_kubeconfig_is_still_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "none"))
    with pytest.raises(kube.ClusterError) as refused:
        kube.api_client_from_kubeconfig(None, None)
    assert str(refused.value) == f"kubeconfig {tmp_path / 'none'} not found: pass -k/--kubeconfig or set KUBECONFIG"
