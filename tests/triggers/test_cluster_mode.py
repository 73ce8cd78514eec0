"""`taskhub triggers serve` against a real kube-apiserver with the Triggers CRDs: the EventListener, Trigger,
TriggerBinding, TriggerTemplate and the interceptor's Secret are applied in the cluster as kubectl would; a signed
GitHub push to the sink creates the PipelineRun (and a ConfigMap) in the cluster with upstream's labels; a push
with a bad signature creates nothing, and says why in the event's record."""

from __future__ import annotations

import subprocess
import threading
from collections.abc import Iterator

import pytest
import requests
from kubernetes import client
from sqlalchemy import select

from catalog.db import make_engine
from catalog.manifests import load_documents
from tests.jobs.processes import wait_until
from tests.kube_fixture import TRIGGERS_CRDS, TRIGGERS_GROUP, KubeCluster, kube_cluster, kube_namespace  # noqa: F401
from tests.test_cli import TASKHUB, run  # noqa: F401 (the fixture)
from tests.triggers.support import PUSH, github_signature
from triggers.models import TriggerEvent

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

RESOURCES = """
apiVersion: triggers.tekton.dev/v1beta1
kind: EventListener
metadata: {name: github-listener}
spec:
  triggers:
  - triggerRef: github-push
---
apiVersion: triggers.tekton.dev/v1beta1
kind: Trigger
metadata: {name: github-push}
spec:
  interceptors:
  - ref: {name: github}
    params:
    - {name: secretRef, value: {secretName: github-secret, secretKey: secretToken}}
    - {name: eventTypes, value: [push]}
  bindings: [{ref: push-binding}]
  template: {ref: build-template}
---
apiVersion: triggers.tekton.dev/v1beta1
kind: TriggerBinding
metadata: {name: push-binding}
spec:
  params:
  - {name: revision, value: $(body.after)}
  - {name: url, value: $(body.repository.clone_url)}
---
apiVersion: triggers.tekton.dev/v1beta1
kind: TriggerTemplate
metadata: {name: build-template}
spec:
  params: [{name: revision}, {name: url}]
  resourcetemplates:
  - apiVersion: tekton.dev/v1
    kind: PipelineRun
    metadata: {generateName: build-}
    spec:
      pipelineRef: {name: build}
      params: [{name: revision, value: $(tt.params.revision)}, {name: url, value: $(tt.params.url)}]
  - apiVersion: v1
    kind: ConfigMap
    metadata: {name: push-$(uid)}
    data: {revision: $(tt.params.revision)}
"""
SECRET = "1234567"


def apply(cluster: KubeCluster, namespace: str) -> None:
    with cluster.api_client() as api:
        client.CoreV1Api(api).create_namespaced_secret(
            namespace, {"metadata": {"name": "github-secret"}, "stringData": {"secretToken": SECRET}}
        )
        objects = client.CustomObjectsApi(api)
        for doc in load_documents(RESOURCES):
            plural, versions = TRIGGERS_CRDS[doc["kind"]]
            objects.create_namespaced_custom_object(TRIGGERS_GROUP, versions[-1], namespace, plural, doc)


def listed(cluster: KubeCluster, namespace: str, kind: str) -> list[dict]:
    with cluster.api_client() as api:
        if kind == "ConfigMap":
            found = client.CoreV1Api(api).list_namespaced_config_map(namespace).to_dict()["items"]
            return [c for c in found if c["metadata"]["name"].startswith("push-")]
        return client.CustomObjectsApi(api).list_namespaced_custom_object(
            "tekton.dev", "v1", namespace, "pipelineruns"
        )["items"]


@pytest.fixture
def sinks(run, kube_cluster, kube_namespace, tmp_path) -> Iterator[str]:  # noqa: F811
    """`taskhub triggers serve -n NAMESPACE` on a free port; its base URL once it said it serves."""
    run("db", "upgrade")
    kubeconfig = kube_cluster.write_kubeconfig(tmp_path / "admin.kubeconfig")
    server = subprocess.Popen(
        [TASKHUB, "triggers", "serve", "-k", str(kubeconfig), "-n", kube_namespace, "--port", "0"],
        env={**run.env, "TASKHUB_JOB_POLL_SECONDS": "0.1"}, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    lines: list[str] = []
    threading.Thread(target=lambda: lines.extend(server.stderr), daemon=True).start()
    threading.Thread(target=lambda: lines.extend(server.stdout), daemon=True).start()
    try:
        serving = wait_until(
            lambda: (
                next((line for line in lines if "serving the EventListeners" in line), None)
                or server.poll() is not None
            ),
            "taskhub triggers serve to start",
        )
        assert isinstance(serving, str), "".join(lines)
        yield serving.split(" at ")[-1].split("/v1/")[0]
    finally:
        server.terminate()
        assert server.wait(timeout=60) == 0, "".join(lines)


def processed(database_url: str, event_id: str) -> TriggerEvent:
    """The event as recorded once its job has run."""
    engine = make_engine(database_url)
    query = select(TriggerEvent).where(TriggerEvent.event_id == event_id)

    def done() -> TriggerEvent | None:
        with engine.connect() as conn:
            row = conn.execute(query).first()
        return row if row is not None and row.status not in ("queued", "processing") else None

    try:
        return wait_until(done, f"event {event_id} to be processed")
    finally:
        engine.dispose()


def test_a_signed_push_creates_the_pipelinerun_in_the_cluster_and_a_bad_signature_nothing(
    run, kube_cluster, kube_namespace, sinks,  # noqa: F811
):  # fmt: skip
    apply(kube_cluster, kube_namespace)
    url = f"{sinks}/v1/listeners/{kube_namespace}/github-listener"
    headers = {"Content-Type": "application/json", "X-GitHub-Event": "push"}
    signed = {**headers, "X-Hub-Signature-256": github_signature(SECRET, PUSH)}
    answer = requests.post(url, data=PUSH, headers=signed)
    assert answer.status_code == 202
    event_id = answer.json()["eventID"]
    assert answer.json()["eventListener"] == "github-listener" and answer.json()["namespace"] == kube_namespace

    event = processed(run.env["TASKHUB_DATABASE_URL"], event_id)
    assert [(o["status"], len(o["created"])) for o in event.outcomes] == [("created", 2)], event.reason
    (pipelinerun,) = listed(kube_cluster, kube_namespace, "PipelineRun")
    labels = {k: v for k, v in pipelinerun["metadata"]["labels"].items() if k.startswith("triggers.tekton.dev/")}
    assert labels == {
        "triggers.tekton.dev/eventlistener": "github-listener",
        "triggers.tekton.dev/trigger": "github-push",
        "triggers.tekton.dev/triggers-eventid": event_id,
    }
    assert pipelinerun["metadata"]["name"].startswith("build-")
    assert {p["name"]: p["value"] for p in pipelinerun["spec"]["params"]} == {
        "revision": "bffeb74224043ba2feb48d137756c8a9331c449a", "url": "https://github.com/example/widgets.git",
    }  # fmt: skip
    (config_map,) = listed(kube_cluster, kube_namespace, "ConfigMap")
    assert config_map["data"] == {"revision": "bffeb74224043ba2feb48d137756c8a9331c449a"}
    assert config_map["metadata"]["labels"]["triggers.tekton.dev/triggers-eventid"] == event_id

    answer = requests.post(url, data=PUSH.replace(b"widgets", b"gadgets"), headers=signed)
    assert answer.status_code == 202
    event = processed(run.env["TASKHUB_DATABASE_URL"], answer.json()["eventID"])
    ((status, interceptor, reason),) = [(o["status"], o["interceptor"], o["reason"]) for o in event.outcomes]
    assert (status, interceptor) == ("stopped", "github") and reason.endswith("payload signature check failed")
    assert len(listed(kube_cluster, kube_namespace, "PipelineRun")) == 1
    assert len(listed(kube_cluster, kube_namespace, "ConfigMap")) == 1
    unknown = requests.post(f"{sinks}/v1/listeners/{kube_namespace}/nope", data=PUSH, headers=headers)
    assert unknown.status_code == 404
