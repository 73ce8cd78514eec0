"""A real Kubernetes API server for tests: Debian's etcd plus kube-apiserver v1.20.2 built from Debian's source
package by scripts/build-kube-apiserver, on free loopback ports, with the Tekton CRDs applied in the versions a
Tekton Pipelines installation serves (Tasks, Pipelines and runs in v1beta1 and v1, StepActions in v1alpha1 and
v1beta1).

There is no controller-manager, scheduler or kubelet: objects are stored and served, nothing reconciles them.
Users: "admin" (system:masters) and "viewer", who may only get and list tekton.dev objects, ResolutionRequests
and ConfigMaps. The ResolutionRequest CRD (resolution.tekton.dev/v1beta1, status subresource) is applied too, and
Tekton Triggers' CRDs (triggers.tekton.dev: EventListener, Trigger, TriggerBinding, ClusterTriggerBinding,
TriggerTemplate, Interceptor, ClusterInterceptor).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client

__all__ = [
    "RESOLUTION_CRDS",
    "RESOLUTION_GROUP",
    "TEKTON_CRDS",
    "TRIGGERS_CRDS",
    "TRIGGERS_GROUP",
    "KubeCluster",
    "kube_cluster",
    "kube_namespace",
    "kube_viewer_kubeconfig",
]

BUILD_SCRIPT = "scripts/build-kube-apiserver"
ETCD_BIN = Path(os.environ.get("TASKHUB_TEST_ETCD_BIN", "/usr/bin/etcd"))
START_TIMEOUT_SECONDS = 60
ADMIN_TOKEN = "taskhub-admin-token"
VIEWER_TOKEN = "taskhub-viewer-token"

# kind -> (plural, the versions served; the last one is stored), as Tekton Pipelines serves them
# (tektoncd/pipeline: config/300-crds/300-task.yaml, 300-stepaction.yaml, ...). StepAction has no tekton.dev/v1.
# Tekton converts between versions with its webhook; here the apiserver's `None` conversion only rewrites
# apiVersion, so an object written as v1beta1 reads back as v1 unconverted. taskhub writes and reads the preferred
# version (the stored one), which both treat alike.
CrdVersions = dict[str, tuple[str, tuple[str, ...]]]
TEKTON_CRDS: CrdVersions = {
    "Task": ("tasks", ("v1beta1", "v1")),
    "Pipeline": ("pipelines", ("v1beta1", "v1")),
    "StepAction": ("stepactions", ("v1alpha1", "v1beta1")),
    "TaskRun": ("taskruns", ("v1beta1", "v1")),
    "PipelineRun": ("pipelineruns", ("v1beta1", "v1")),
}
# Remote resolution's one kind: v1beta1 is its storage version upstream (tektoncd/pipeline:
# config/300-crds/300-resolutionrequest.yaml).
RESOLUTION_GROUP = "resolution.tekton.dev"
RESOLUTION_CRDS: CrdVersions = {"ResolutionRequest": ("resolutionrequests", ("v1beta1",))}
# Tekton Triggers' kinds (tektoncd/triggers: config/300-*.yaml): v1beta1 stored, v1alpha1 served too; the
# interceptors only in v1alpha1; two kinds cluster-scoped. Minimal structural schemas, as for Tekton's kinds.
TRIGGERS_GROUP = "triggers.tekton.dev"
TRIGGERS_CRDS: CrdVersions = {
    "EventListener": ("eventlisteners", ("v1alpha1", "v1beta1")),
    "Trigger": ("triggers", ("v1alpha1", "v1beta1")),
    "TriggerBinding": ("triggerbindings", ("v1alpha1", "v1beta1")),
    "ClusterTriggerBinding": ("clustertriggerbindings", ("v1alpha1", "v1beta1")),
    "TriggerTemplate": ("triggertemplates", ("v1alpha1", "v1beta1")),
    "Interceptor": ("interceptors", ("v1alpha1",)),
    "ClusterInterceptor": ("clusterinterceptors", ("v1alpha1",)),
}
CLUSTER_SCOPED = frozenset({"ClusterTriggerBinding", "ClusterInterceptor"})
AUDIT_POLICY = "apiVersion: audit.k8s.io/v1\nkind: Policy\nomitStages: [RequestReceived]\nrules:\n- level: Metadata\n"


def kube_apiserver_bin() -> Path:
    """Where scripts/build-kube-apiserver puts the binary (or KUBE_APISERVER_BIN)."""
    if explicit := os.environ.get("KUBE_APISERVER_BIN"):
        return Path(explicit)
    cache = os.environ.get("TASKHUB_KUBE_CACHE") or str(Path.home() / ".cache" / "taskhub" / "kube-1.20.2")
    return Path(cache) / "kube-apiserver"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def tekton_crd(kind: str, plural: str, versions: tuple[str, ...], group: str = "tekton.dev") -> dict[str, Any]:
    """A CRD for a Tekton kind (tekton.dev unless `group`) served in `versions`, the last one stored: any fields
    kept, status as a subresource."""
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.{group}"},
        "spec": {
            "group": group,
            "scope": "Cluster" if kind in CLUSTER_SCOPED else "Namespaced",
            "names": {"kind": kind, "plural": plural, "singular": kind.lower(), "listKind": f"{kind}List"},
            "versions": [
                {
                    "name": version,
                    "served": True,
                    "storage": version == versions[-1],
                    "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}},
                    "subresources": {"status": {}},
                }
                for version in versions
            ],
        },
    }


class KubeCluster:
    """etcd + kube-apiserver under `base`; `url`, `ca_cert`, `kubeconfig` (admin) and client factories.

    `crds` maps each Tekton kind to (plural, the versions served, the last one stored); TEKTON_CRDS by default.
    With `audit`, the apiserver writes an audit log (level Metadata, one JSON line per request) to `audit_log`.
    """

    def __init__(self, base: Path, crds: CrdVersions | None = None, *, audit: bool = False) -> None:
        binary = kube_apiserver_bin()
        if not binary.exists():
            pytest.fail(
                f"kube-apiserver not found at {binary}: run {BUILD_SCRIPT} (it builds it from Debian's kubernetes "
                "source package, about 4-7 minutes once) or set KUBE_APISERVER_BIN"
            )
        if not ETCD_BIN.exists():
            pytest.fail(
                f"{ETCD_BIN} not found: run {BUILD_SCRIPT} (it installs etcd-server) or apt-get install etcd-server"
            )
        self.binary, self.base = binary, base
        self.crds = crds if crds is not None else TEKTON_CRDS
        self.port = _free_port()
        self.url = f"https://127.0.0.1:{self.port}"
        self.ca_cert = base / "certs" / "apiserver.crt"
        self.kubeconfig = base / "admin.kubeconfig"
        self.audit_log: Path | None = base / "audit.log" if audit else None
        self._processes: list[subprocess.Popen[bytes]] = []
        self._apiserver_argv: list[str] = []

    # -- lifecycle ------------------------------------------------------------------------------------------

    def start(self) -> None:
        """Start etcd and the apiserver, wait for /readyz, apply the Tekton CRDs and the viewer's RBAC."""
        base = self.base
        (base / "certs").mkdir(parents=True, exist_ok=True)
        subprocess.run(["openssl", "genrsa", "-out", str(base / "sa.key"), "2048"], check=True, capture_output=True)
        (base / "tokens.csv").write_text(
            f"{ADMIN_TOKEN},admin,admin,system:masters\n{VIEWER_TOKEN},viewer,viewer,taskhub-viewers\n"
        )
        client_port, peer_port = _free_port(), _free_port()
        etcd_url, peer_url = f"http://127.0.0.1:{client_port}", f"http://127.0.0.1:{peer_port}"
        self._spawn("etcd", [
            str(ETCD_BIN), "--name", "t", "--data-dir", str(base / "etcd"),
            "--listen-client-urls", etcd_url, "--advertise-client-urls", etcd_url,
            "--listen-peer-urls", peer_url, "--initial-advertise-peer-urls", peer_url,
            "--initial-cluster", f"t={peer_url}", "--unsafe-no-fsync",
        ])  # fmt: skip
        audit: list[str] = []
        if self.audit_log is not None:
            (base / "audit-policy.yaml").write_text(AUDIT_POLICY)
            audit = [f"--audit-policy-file={base / 'audit-policy.yaml'}", f"--audit-log-path={self.audit_log}"]
        self._apiserver_argv = [
            str(self.binary), f"--etcd-servers={etcd_url}", "--bind-address=127.0.0.1",
            "--advertise-address=127.0.0.1", f"--secure-port={self.port}", f"--cert-dir={base / 'certs'}",
            f"--token-auth-file={base / 'tokens.csv'}", "--authorization-mode=RBAC",
            "--service-account-issuer=https://kubernetes.default.svc", f"--service-account-key-file={base / 'sa.key'}",
            f"--service-account-signing-key-file={base / 'sa.key'}", "--service-cluster-ip-range=10.0.0.0/24",
            # No controller-manager creates default ServiceAccounts, so Pods could not be created with it on.
            "--disable-admission-plugins=ServiceAccount", *audit,
        ]  # fmt: skip
        self._spawn("kube-apiserver", self._apiserver_argv)
        self._wait_ready()
        self.write_kubeconfig(self.kubeconfig, token=ADMIN_TOKEN)
        api = self.api_client()
        self.apply_crds(api, self.crds)
        self.apply_crds(api, RESOLUTION_CRDS, RESOLUTION_GROUP)
        self.apply_crds(api, TRIGGERS_CRDS, TRIGGERS_GROUP)
        self._grant_viewer(api)

    def stop(self) -> None:
        """Stop the apiserver, then etcd."""
        for process in reversed(self._processes):
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
        self._processes.clear()

    def stop_apiserver(self) -> None:
        """Kill the apiserver only (etcd keeps the data), as a crash; start_apiserver() brings it back."""
        process = self._processes.pop()
        process.kill()  # SIGTERM would wait for open watches to end
        process.wait(timeout=15)

    def start_apiserver(self) -> None:
        """Start the apiserver again on the same port, certificates and etcd; return once it is ready."""
        self._spawn("kube-apiserver", self._apiserver_argv)
        self._wait_ready()

    def _spawn(self, name: str, argv: list[str]) -> None:
        log = open(self.base / f"{name}.log", "wb")  # noqa: SIM115 - handed to the child for its whole life
        self._processes.append(subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, cwd=self.base))

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        request = urllib.request.Request(f"{self.url}/readyz", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
        while time.monotonic() < deadline:
            for process, name in zip(self._processes, ("etcd", "kube-apiserver"), strict=True):
                if process.poll() is not None:
                    log = (self.base / f"{name}.log").read_text(errors="replace")[-3000:]
                    pytest.fail(f"{name} exited with {process.returncode} during start-up:\n{log}")
            if self.ca_cert.exists():
                try:
                    context = ssl.create_default_context(cafile=str(self.ca_cert))
                    with urllib.request.urlopen(request, context=context, timeout=2) as response:
                        if response.status == 200:
                            return
                except OSError:
                    pass
            time.sleep(0.2)
        self.stop()
        pytest.fail(f"kube-apiserver not ready after {START_TIMEOUT_SECONDS} s; see {self.base}/kube-apiserver.log")

    # -- clients and configuration ---------------------------------------------------------------------------

    def configuration(self, token: str = ADMIN_TOKEN) -> client.Configuration:
        """A client Configuration for this server with a bearer token (admin by default)."""
        cfg = client.Configuration()
        cfg.host = self.url
        cfg.api_key = {"authorization": token}
        cfg.api_key_prefix = {"authorization": "Bearer"}
        cfg.ssl_ca_cert = str(self.ca_cert)
        return cfg

    def api_client(self, token: str = ADMIN_TOKEN) -> client.ApiClient:
        """A new ApiClient for this server (admin by default); close it when done."""
        return client.ApiClient(self.configuration(token))

    def write_kubeconfig(
        self, path: Path, *, token: str = ADMIN_TOKEN, namespace: str | None = None, context: str = "taskhub-test"
    ) -> Path:
        """Write a kubeconfig whose current context is `context`, using `token` and, if given, `namespace`."""
        ctx: dict[str, str] = {"cluster": "taskhub-test", "user": f"user-{context}"}
        if namespace:
            ctx["namespace"] = namespace
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {"name": "taskhub-test", "cluster": {"server": self.url, "certificate-authority": str(self.ca_cert)}}
            ],
            "users": [{"name": f"user-{context}", "user": {"token": token}}],
            "contexts": [{"name": context, "context": ctx}],
            "current-context": context,
        }
        path.write_text(yaml.safe_dump(config))
        return path

    @staticmethod
    def apply_crds(api: client.ApiClient, crds: CrdVersions, group: str = "tekton.dev") -> None:
        """Create one CRD per kind of `group` and wait until each is Established."""
        extensions = client.ApiextensionsV1Api(api)
        for kind, (plural, versions) in crds.items():
            extensions.create_custom_resource_definition(tekton_crd(kind, plural, versions, group))
        deadline = time.monotonic() + 30
        for plural, _ in crds.values():
            while True:
                crd = extensions.read_custom_resource_definition(f"{plural}.{group}")
                conditions = (crd.status.conditions if crd.status else None) or []
                if any(c.type == "Established" and c.status == "True" for c in conditions):
                    break
                if time.monotonic() > deadline:
                    pytest.fail(f"CRD {plural}.{group} not established after 30 s")
                time.sleep(0.1)

    @staticmethod
    def _grant_viewer(api: client.ApiClient) -> None:
        rbac = client.RbacAuthorizationV1Api(api)
        rbac.create_cluster_role(
            {
                "metadata": {"name": "taskhub-viewer"},
                "rules": [
                    {"apiGroups": ["tekton.dev"], "resources": ["*"], "verbs": ["get", "list", "watch"]},
                    # Reads ResolutionRequests but may not answer them (no patch on resolutionrequests/status).
                    {"apiGroups": [RESOLUTION_GROUP], "resources": ["*"], "verbs": ["get", "list", "watch"]},
                    {"apiGroups": [""], "resources": ["configmaps", "namespaces"], "verbs": ["get", "list"]},
                ],
            }
        )
        rbac.create_cluster_role_binding(
            {
                "metadata": {"name": "taskhub-viewer"},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "taskhub-viewer"},
                "subjects": [{"kind": "Group", "name": "taskhub-viewers", "apiGroup": "rbac.authorization.k8s.io"}],
            }
        )

    def create_namespace(self, name: str | None = None) -> str:
        """Create a namespace (a fresh random name by default) and return its name."""
        name = name or f"test-{uuid.uuid4().hex[:10]}"
        with self.api_client() as api:
            client.CoreV1Api(api).create_namespace({"metadata": {"name": name}})
        return name

    def ensure_namespace(self, name: str) -> str:
        """Create the namespace unless it exists; for fixed names such as tekton-pipelines."""
        with self.api_client() as api:
            try:
                client.CoreV1Api(api).create_namespace({"metadata": {"name": name}})
            except client.ApiException as exc:
                if exc.status != 409:
                    raise
        return name

    def delete_namespace(self, name: str) -> None:
        """Delete a namespace's Tekton objects and the namespace. Without a controller-manager the namespace
        stays Terminating for good, so fixed names should be kept (ensure_namespace) rather than deleted."""
        with self.api_client() as api:
            objects = client.CustomObjectsApi(api)
            for plural, versions in self.crds.values():
                objects.delete_collection_namespaced_custom_object("tekton.dev", versions[-1], name, plural)
            # Without a controller-manager the namespace's objects would outlive it and show up in
            # all-namespaces watches of later tests.
            for plural, versions in RESOLUTION_CRDS.values():
                objects.delete_collection_namespaced_custom_object(RESOLUTION_GROUP, versions[-1], name, plural)
            for kind, (plural, versions) in TRIGGERS_CRDS.items():
                if kind not in CLUSTER_SCOPED:
                    objects.delete_collection_namespaced_custom_object(TRIGGERS_GROUP, versions[-1], name, plural)
            client.CoreV1Api(api).delete_namespace(name)


@contextmanager
def running_cluster(prefix: str = "taskhub-kube-", **options: Any) -> Iterator[KubeCluster]:
    """etcd and kube-apiserver (KubeCluster options) in a temporary directory, stopped and removed at the end."""
    base = Path(tempfile.mkdtemp(prefix=prefix))
    cluster = KubeCluster(base, **options)
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="session")
def kube_cluster() -> Iterator[KubeCluster]:
    """One real kube-apiserver (with etcd) for the whole session; Tekton CRDs applied, admin kubeconfig written."""
    with running_cluster() as cluster:
        yield cluster


@pytest.fixture
def kube_namespace(kube_cluster: KubeCluster) -> Iterator[str]:
    """A fresh namespace for one test, deleted afterwards."""
    name = kube_cluster.create_namespace()
    yield name
    kube_cluster.delete_namespace(name)


@pytest.fixture
def kube_viewer_kubeconfig(kube_cluster: KubeCluster, kube_namespace: str, tmp_path: Path) -> Path:
    """A kubeconfig for the "viewer" user in `kube_namespace`: may read tekton.dev objects and ConfigMaps only."""
    return kube_cluster.write_kubeconfig(tmp_path / "viewer.kubeconfig", token=VIEWER_TOKEN, namespace=kube_namespace)
