"""deploy/'s manifests for tests: rendered (tests/kustomize.py), moved to other namespaces, created on the tests'
kube-apiserver; the production variant created once per session, in its own namespaces."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from kubernetes import client, utils

from tests.kube_fixture import KubeCluster
from tests.kustomize import render

__all__ = ["NAMESPACE", "RUNS_NAMESPACE", "create_all", "deployed_production", "rendered", "service_account_token"]

REPO = Path(__file__).resolve().parent.parent
NAMESPACE, RUNS_NAMESPACE = "taskhub", "taskhub-runs"

Obj = dict[str, Any]


def rendered(variant: str, namespaces: dict[str, str] | None = None) -> list[Obj]:
    """The objects of deploy/VARIANT, moved to other namespaces when `namespaces` maps the usual ones elsewhere."""
    objects = render(REPO / "deploy" / variant)
    for old, new in (namespaces or {}).items():
        for obj in objects:
            meta = obj["metadata"]
            if meta.get("namespace") == old:
                meta["namespace"] = new
            if obj["kind"] == "Namespace" and meta["name"] == old:
                meta["name"] = new
            for subject in obj.get("subjects", []):
                if subject.get("namespace") == old:
                    subject["namespace"] = new
            data = obj.get("data", {}) if obj["kind"] == "ConfigMap" else {}
            for key, value in data.items():
                if value == old:  # TASKHUB_RUN_NAMESPACE
                    data[key] = new
    return objects


def create_all(cluster: KubeCluster, objects: list[Obj]) -> list[str]:
    """Create every object on the cluster; returns what the API server refused, one line each."""
    refused = []
    with cluster.api_client() as api:
        for obj in objects:
            try:
                utils.create_from_dict(api, obj)
            except utils.FailToCreateError as exc:
                reasons = "; ".join(f"{e.status} {e.body}" for e in exc.api_exceptions)
                refused.append(f"{obj['kind']} {obj['metadata']['name']}: {reasons}")
    return refused


@pytest.fixture(scope="session")
def deployed_production(kube_cluster: KubeCluster) -> list[Obj]:
    """deploy/production created on the session's cluster, in its own namespaces (taskhub, taskhub-runs)."""
    objects = rendered("production")
    refused = create_all(kube_cluster, objects)
    assert refused == []
    return objects


def service_account_token(cluster: KubeCluster, namespace: str, name: str) -> str:
    """A token of the ServiceAccount, as the kubelet gets one for a pod of it (the TokenRequest API)."""
    with cluster.api_client() as api:
        request: Any = {"spec": {"expirationSeconds": 3600}}
        answer = client.CoreV1Api(api).create_namespaced_service_account_token(name, namespace, request)
    return str(answer.status.token)
