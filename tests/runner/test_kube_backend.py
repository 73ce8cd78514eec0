"""The Kubernetes backend against a real kube-apiserver. No Tekton controller or kubelet runs there, so a test thread
plays both: it moves the run through its conditions, creates the child TaskRun and its pod on a fake node, and a
fake kubelet (environment.md Appendix A) serves the step containers' logs through the apiserver's pods/log proxy.
"""

from __future__ import annotations

import socket
import ssl
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest
import yaml
from click.testing import CliRunner
from kubernetes import client
from kubernetes.client import rest

from hub.cli import main
from hub.cli.cancel import cancel as cancel_command
from runner.kube import ClusterError
from runner.kube_backend import RunEvent, cancel_run, run_on_kubernetes
from runner.kube_logs import LogLine
from tests.kube_fixture import KubeCluster

assert cancel_command  # importing hub.cli.cancel registers `taskhub cancel`

LOGS: dict[tuple[str, str, str], str] = {}  # (namespace, pod, container) -> log text the fake kubelet serves


class FakeKubelet(BaseHTTPRequestHandler):
    def log_message(self, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        url = urlparse(self.path)
        parts = url.path.strip("/").split("/")
        text = LOGS.get((parts[1], parts[2], parts[3])) if len(parts) == 4 and parts[0] == "containerLogs" else None
        if text is None:
            self.send_response(404)
            self.end_headers()
            return
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.end_headers()
        follow = parse_qs(url.query).get("follow") == ["true"]
        for line in text.splitlines(True) if follow else [text]:
            self.wfile.write(line.encode())
            self.wfile.flush()
            time.sleep(0.05)


@pytest.fixture(scope="module")
def fake_node(kube_cluster: KubeCluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A Node whose kubelet endpoint is a fake kubelet on loopback; pods with this nodeName have logs."""
    base = tmp_path_factory.mktemp("kubelet")
    cert, key = base / "kubelet.crt", base / "kubelet.key"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=fake-kubelet",
         "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeKubelet)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    name = f"fake-node-{uuid.uuid4().hex[:6]}"
    with kube_cluster.api_client() as api:
        core = client.CoreV1Api(api)
        node: Any = {"metadata": {"name": name}}
        core.create_node(node)
        core.patch_node_status(
            name,
            {
                "status": {
                    "addresses": [{"type": "InternalIP", "address": "127.0.0.1"}],
                    "daemonEndpoints": {"kubeletEndpoint": {"Port": server.server_address[1]}},
                }
            },
        )
    yield name
    server.shutdown()


class FakeTekton:
    """Plays the Tekton controller and the kubelet for the one run created in `namespace`."""

    def __init__(self, cluster: KubeCluster, namespace: str, node: str) -> None:
        self.api = cluster.api_client()
        self.api.user_agent = "fake-tekton-controller"
        self.namespace, self.node = namespace, node
        self.objects = client.CustomObjectsApi(self.api)
        self.core = client.CoreV1Api(self.api)

    def wait_for(self, plural: str, ready: Callable[[dict[str, Any]], bool] = bool) -> dict[str, Any]:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            listing: Any = self.objects.list_namespaced_custom_object("tekton.dev", "v1", self.namespace, plural)
            items = listing["items"]
            found = [item for item in items if ready(item)]
            if found:
                return dict(found[0])
            time.sleep(0.05)
        raise AssertionError(f"no {plural} in {self.namespace} after 20 s")

    def set_condition(self, plural: str, name: str, status: str, reason: str, **extra: Any) -> None:
        condition = {"type": "Succeeded", "status": status, "reason": reason, "message": f"{reason} ({name})"}
        body = {"status": {"conditions": [condition], **extra}}
        self.objects.patch_namespaced_custom_object_status("tekton.dev", "v1", self.namespace, plural, name, body)

    def run_pipeline(self, *, fail: bool = False) -> str:
        pr = self.wait_for("pipelineruns")["metadata"]["name"]
        self.set_condition("pipelineruns", pr, "Unknown", "Running")
        tr = f"{pr}-greet"
        labels = {"tekton.dev/pipelineRun": pr, "tekton.dev/pipelineTask": "greet"}
        self.objects.create_namespaced_custom_object(
            "tekton.dev", "v1", self.namespace, "taskruns",
            {"apiVersion": "tekton.dev/v1", "kind": "TaskRun", "metadata": {"name": tr, "labels": labels},
             "spec": {"taskSpec": {"steps": [{"name": "hello"}, {"name": "count"}]}}},
        )  # fmt: skip
        self.set_condition("taskruns", tr, "Unknown", "Running")
        pod = f"{tr}-pod"
        LOGS[(self.namespace, pod, "step-hello")] = "hello from the cluster\n"
        LOGS[(self.namespace, pod, "step-count")] = "one\ntwo\nthree"
        pod_manifest: Any = {
            "metadata": {"name": pod, "labels": {**labels, "tekton.dev/taskRun": tr}},
            "spec": {
                "nodeName": self.node,
                "containers": [{"name": "step-hello", "image": "busybox"}, {"name": "step-count", "image": "busybox"}],
            },
        }
        self.core.create_namespaced_pod(self.namespace, pod_manifest)
        self.core.patch_namespaced_pod_status(pod, self.namespace, {"status": {"phase": "Running"}})
        time.sleep(0.3)
        phase = "Failed" if fail else "Succeeded"
        self.core.patch_namespaced_pod_status(pod, self.namespace, {"status": {"phase": phase}})
        if fail:
            self.set_condition("taskruns", tr, "False", "Failed")
            self.set_condition("pipelineruns", pr, "False", "Failed")
        else:
            self.set_condition("taskruns", tr, "True", "Succeeded", results=[{"name": "greeting", "value": "hi\n"}])
            self.set_condition("pipelineruns", pr, "True", "Succeeded", results=[{"name": "greeting", "value": "hi\n"}])
        return pr

    def close(self) -> None:
        self.api.close()


@pytest.fixture
def tekton(kube_cluster: KubeCluster, kube_namespace: str, fake_node: str) -> Iterator[FakeTekton]:
    fake = FakeTekton(kube_cluster, kube_namespace, fake_node)
    yield fake
    fake.close()


@pytest.fixture
def writes(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str]]:
    """Every write request (method, user agent) sent through the official client during the test."""
    seen: list[tuple[str, str]] = []
    original = rest.RESTClientObject.request

    def spy(self: rest.RESTClientObject, method: str, url: str, headers: Any = None, *a: Any, **kw: Any) -> Any:
        if method in ("POST", "PUT", "PATCH", "DELETE"):
            seen.append((method, str((headers or {}).get("User-Agent"))))
        return original(self, method, url, headers, *a, **kw)

    monkeypatch.setattr(rest.RESTClientObject, "request", spy)
    return seen


PIPELINE_RUN = {
    "apiVersion": "tekton.dev/v1",
    "kind": "PipelineRun",
    "metadata": {"generateName": "hello-run-"},
    "spec": {"pipelineSpec": {"tasks": [{"name": "greet", "taskSpec": {"steps": [{"name": "hello"}]}}]}},
}


def backend_writes(seen: list[tuple[str, str]]) -> list[str]:
    return [method for method, agent in seen if agent != "fake-tekton-controller"]


def test_pipeline_run_is_created_once_and_followed_to_success(
    kube_cluster: KubeCluster, kube_namespace: str, tekton: FakeTekton, writes: list[tuple[str, str]]
) -> None:
    events: list[RunEvent] = []
    logs: list[LogLine] = []
    with ThreadPoolExecutor(1) as pool:
        controller: Future[str] = pool.submit(tekton.run_pipeline)
        result = run_on_kubernetes(
            PIPELINE_RUN, namespace=kube_namespace, kubeconfig=kube_cluster.kubeconfig,
            on_event=events.append, on_log=logs.append,
        )  # fmt: skip
        pr = controller.result()
    assert result.name == pr and pr.startswith("hello-run-")
    assert result.succeeded and result.reason == "Succeeded"
    assert result.object["status"]["results"] == [{"name": "greeting", "value": "hi\n"}]
    assert [(e.kind, e.status, e.reason) for e in events if e.kind == "PipelineRun"] == [
        ("PipelineRun", "Unknown", "Running"),
        ("PipelineRun", "True", "Succeeded"),
    ]
    task_run_states = [(e.name, e.reason) for e in events if e.kind == "TaskRun"]
    assert task_run_states[-1] == (f"{pr}-greet", "Succeeded") and (f"{pr}-greet", "Running") in task_run_states
    by_step: dict[str, list[str]] = {}
    for line in logs:
        assert line.task_run == f"{pr}-greet" and line.pod == f"{pr}-greet-pod"
        by_step.setdefault(line.step, []).append(line.text)
    assert not result.warnings, result.warnings
    assert by_step == {"hello": ["hello from the cluster"], "count": ["one", "two", "three"]}
    assert result.writes == 1 and backend_writes(writes) == ["POST"]
    assert result.warnings == []


def test_failing_pipeline_run_returns_succeeded_false(
    kube_cluster: KubeCluster, kube_namespace: str, tekton: FakeTekton
) -> None:
    with ThreadPoolExecutor(1) as pool:
        controller = pool.submit(tekton.run_pipeline, fail=True)
        result = run_on_kubernetes(PIPELINE_RUN, namespace=kube_namespace, kubeconfig=kube_cluster.kubeconfig)
        controller.result()
    assert not result.succeeded and result.reason == "Failed"
    assert ("TaskRun", "False", "Failed") in [(e.kind, e.status, e.reason) for e in result.events]


def test_cancel_event_patches_spec_status_and_the_run_ends_cancelled(
    kube_cluster: KubeCluster, kube_namespace: str, tekton: FakeTekton, writes: list[tuple[str, str]]
) -> None:
    cancel = threading.Event()

    def controller() -> None:
        pr = tekton.wait_for("pipelineruns")["metadata"]["name"]
        tekton.set_condition("pipelineruns", pr, "Unknown", "Running")
        tekton.wait_for("pipelineruns", lambda run: run["spec"].get("status") == "Cancelled")
        tekton.set_condition("pipelineruns", pr, "False", "Cancelled")

    def on_event(event: RunEvent) -> None:
        if event.reason == "Running":
            cancel.set()

    with ThreadPoolExecutor(1) as pool:
        playing = pool.submit(controller)
        result = run_on_kubernetes(
            PIPELINE_RUN, namespace=kube_namespace, kubeconfig=kube_cluster.kubeconfig, on_event=on_event, cancel=cancel
        )
        playing.result()
    assert result.reason == "Cancelled" and not result.succeeded
    assert result.object["spec"]["status"] == "Cancelled"
    assert result.writes == 2 and backend_writes(writes) == ["POST", "PATCH"]


def test_taskhub_cancel_patches_a_task_run(kube_cluster: KubeCluster, kube_namespace: str) -> None:
    with kube_cluster.api_client() as api:
        objects = client.CustomObjectsApi(api)
        objects.create_namespaced_custom_object(
            "tekton.dev", "v1", kube_namespace, "taskruns",
            {"apiVersion": "tekton.dev/v1", "kind": "TaskRun", "metadata": {"name": "build"}, "spec": {}},
        )  # fmt: skip
        outcome = CliRunner().invoke(
            main, ["cancel", "build", "--kind", "taskrun", "-n", kube_namespace, "-k", str(kube_cluster.kubeconfig)]
        )
        assert outcome.exit_code == 0, outcome.output
        assert "spec.status set to TaskRunCancelled" in outcome.output
        stored: Any = objects.get_namespaced_custom_object("tekton.dev", "v1", kube_namespace, "taskruns", "build")
    assert stored["spec"]["status"] == "TaskRunCancelled"


def test_cancel_of_a_missing_run_is_a_one_line_error(kube_cluster: KubeCluster, kube_namespace: str) -> None:
    outcome = CliRunner().invoke(main, ["cancel", "nope", "-n", kube_namespace, "-k", str(kube_cluster.kubeconfig)])
    assert outcome.exit_code == 1
    assert outcome.output.startswith("Error: could not cancel PipelineRun nope") and "404" in outcome.output


def test_unreachable_apiserver_is_a_clear_error(kube_cluster: KubeCluster, tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    kubeconfig = tmp_path / "gone.kubeconfig"
    config = yaml.safe_load(kube_cluster.kubeconfig.read_text())
    config["clusters"][0]["cluster"]["server"] = f"https://127.0.0.1:{port}"
    kubeconfig.write_text(yaml.safe_dump(config))
    with pytest.raises(ClusterError) as raised:
        run_on_kubernetes(PIPELINE_RUN, namespace="default", kubeconfig=kubeconfig)
    server = f"https://127.0.0.1:{port}"
    assert str(raised.value) == f"cannot reach the Kubernetes API server at {server}: connection refused"
    with pytest.raises(ClusterError, match="connection refused"):
        cancel_run("x", kubeconfig=kubeconfig)


def test_task_run_logs_of_a_pod_that_finished_before_being_watched_are_read(
    kube_cluster: KubeCluster, kube_namespace: str, tekton: FakeTekton
) -> None:
    def controller() -> None:
        tr = tekton.wait_for("taskruns")["metadata"]["name"]
        pod = f"{tr}-pod"
        LOGS[(kube_namespace, pod, "step-only")] = "quick\n"
        manifest: Any = {
            "metadata": {"name": pod, "labels": {"tekton.dev/taskRun": tr}},
            "spec": {"nodeName": tekton.node, "containers": [{"name": "step-only", "image": "busybox"}]},
        }
        tekton.core.create_namespaced_pod(kube_namespace, manifest)
        tekton.core.patch_namespaced_pod_status(pod, kube_namespace, {"status": {"phase": "Succeeded"}})
        tekton.set_condition("taskruns", tr, "True", "Succeeded", results=[{"name": "out", "value": "1"}])

    task_run = {"apiVersion": "tekton.dev/v1", "kind": "TaskRun", "metadata": {"name": "quick"}, "spec": {}}
    logs: list[LogLine] = []
    with ThreadPoolExecutor(1) as pool:
        playing = pool.submit(controller)
        result = run_on_kubernetes(
            task_run, namespace=kube_namespace, kubeconfig=kube_cluster.kubeconfig, on_log=logs.append
        )
        playing.result()
    assert result.succeeded and result.object["status"]["results"] == [{"name": "out", "value": "1"}]
    assert [(line.task_run, line.step, line.text) for line in logs] == [("quick", "only", "quick")]
    assert [(e.kind, e.name, e.status) for e in result.events] == [("TaskRun", "quick", "True")]
