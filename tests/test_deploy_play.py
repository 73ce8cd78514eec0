"""deploy/production run for real with `podman kube play`: the migration Job's pod, then the hub and the worker
Deployments with the settings ConfigMap, as rendered, on taskhub's image, beside a PostgreSQL pod; then used over
HTTP as a platform team would: sync a catalog, resolve, start a run, read /metrics. The worker starts the run on
the tests' kube-apiserver as the manifests' taskhub-worker ServiceAccount, with the RBAC they grant it.

What the test changes in the manifests, and why:
- every pod on the host's network (the kube-apiserver listens on the host's loopback), so each server gets a
  free port and the hub one replica;
- Secret references become values: podman 4.3 reads secretKeyRef from its own secret store, not from a Secret;
- probes are left out: podman turns them into commands run inside the container with curl, which the image has
  not (the kubelet probes from outside); the test asks /livez and /readyz itself;
- names get a suffix of the test's: podman makes an emptyDir or a claim a named volume, shared by every pod
  naming it alike;
- the worker gets a kubeconfig with its ServiceAccount's token, and the test catalog as a git repository.
"""

from __future__ import annotations

import base64
import json
import os
import re
import secrets
import shutil
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from runner.podman import Podman
from tests.conftest import free_port
from tests.container_fixture import IMAGE_UID, image_user_repository
from tests.deploy_fixture import NAMESPACE, RUNS_NAMESPACE, rendered, service_account_token
from tests.kube_fixture import KubeCluster
from tests.runner.test_kube_backend import FakeTekton

START_TIMEOUT_SECONDS = 120
Obj = dict[str, Any]


class Played:
    """What the test played: pods by YAML file, taken down at the end with the volumes whose names end with
    `suffix`, which the test gives every name it plays."""

    def __init__(self, podman: Podman, directory: Path) -> None:
        self.podman, self.directory, self.files = podman, directory, list[Path]()
        self.suffix = f"-{uuid.uuid4().hex[:8]}"

    def play(self, name: str, objects: list[Obj]) -> None:
        path = self.directory / f"{name}.yaml"
        path.write_text(yaml.safe_dump_all(objects))
        self.files.append(path)
        self.podman.run("kube", "play", "--quiet", str(path), timeout=START_TIMEOUT_SECONDS)

    def down(self) -> None:
        for path in reversed(self.files):
            self.podman.run("kube", "down", str(path), check=False)
        volumes = self.podman.run("volume", "ls", "--quiet", check=False).stdout.split()
        ours = [name for name in volumes if name.endswith(self.suffix)]
        if ours:  # `kube down` leaves claims' volumes
            self.podman.run("volume", "rm", "--force", *ours, check=False)

    def logs(self, container: str) -> str:
        done = self.podman.run("logs", container, check=False)
        return done.stdout + done.stderr

    def running(self, container: str) -> bool:
        state = self.podman.run("inspect", "--format", "{{.State.Running}}", container, check=False)
        return state.stdout.strip() == "true"


def for_podman(pod: Obj, suffix: str, image: str, secret: dict[str, str], ports: dict[str, str]) -> None:
    """A pod spec (a Deployment's template, a Job's) changed in place as the module's docstring says."""
    pod["hostNetwork"] = True
    for volume in pod.get("volumes", []):
        volume["name"] += suffix
        if "persistentVolumeClaim" in volume:  # podman makes the claim a named volume too
            volume["persistentVolumeClaim"]["claimName"] += suffix
    for container in pod["containers"] + pod.get("initContainers", []):
        container["image"] = image
        container["args"] = [ports.get(arg, arg) for arg in container["args"]]
        container.pop("ports", None)  # on the host's network a port is the process's own: podman maps none
        container.pop("livenessProbe", None)
        container.pop("readinessProbe", None)
        for mount in container.get("volumeMounts", []):
            mount["name"] += suffix
        for variable in container.get("env", []):
            reference = variable.pop("valueFrom", {}).get("secretKeyRef")
            if reference:
                variable["value"] = secret[reference["key"]]


def host_path(name: str, path: Path, mount_path: str) -> tuple[Obj, Obj]:
    """A volume of a host directory, and its read-only mount."""
    return {"name": name, "hostPath": {"path": str(path), "type": "Directory"}}, {
        "name": name,
        "mountPath": mount_path,
        "readOnly": True,
    }


def request(method: str, url: str, token: str = "", body: Obj | None = None) -> tuple[int, bytes]:
    """One HTTP request; the status and the body, whatever the status."""
    headers = {"Content-Type": "application/json"} if body is not None else {}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    data = json.dumps(body).encode() if body is not None else None
    try:
        with urllib.request.urlopen(urllib.request.Request(url, data, headers, method=method), timeout=30) as answer:
            return answer.status, answer.read()
    except urllib.error.HTTPError as answer:
        return answer.code, answer.read()


def wait_until(what: str, check: Any, alive: Any, logs: Any = str, seconds: float = START_TIMEOUT_SECONDS) -> Any:
    """check()'s first true answer; fails at once when alive() says a container ended, else after `seconds`,
    with the containers' logs()."""
    give_up = time.monotonic() + seconds
    while True:
        try:
            found = check()
        except (urllib.error.URLError, ConnectionError):
            found = None
        if found:
            return found
        if not alive() or time.monotonic() > give_up:
            raise AssertionError(f"gave up waiting for {what}:\n{logs()}")
        time.sleep(0.1)


def worker_kubeconfig(cluster: KubeCluster, directory: Path) -> Path:
    """A directory the worker mounts at /etc/taskhub-kube: the API server's CA and a kubeconfig with the token of
    the taskhub-worker ServiceAccount, readable by the image's user."""
    directory.mkdir(mode=0o755)
    shutil.copy(cluster.ca_cert, directory / "ca.crt")
    token = service_account_token(cluster, NAMESPACE, "taskhub-worker")
    config = cluster.write_kubeconfig(directory / "config", token=token, namespace=NAMESPACE)
    config.write_text(config.read_text().replace(str(cluster.ca_cert), "/etc/taskhub-kube/ca.crt"))
    for path in (directory, directory / "ca.crt", config):
        path.chmod(0o755 if path.is_dir() else 0o644)
    return directory


GIT_CLONE = [{"name": "name", "value": "git-clone"}, {"name": "version", "value": "0.9"}]  # hub resolver params


def clone_run(prefix: str, url: str) -> Obj:
    """A TaskRun of the catalog's git-clone 0.9 through the hub resolver, named PREFIX..., cloning `url`."""
    return {
        "apiVersion": "tekton.dev/v1", "kind": "TaskRun", "metadata": {"generateName": prefix},
        "spec": {"taskRef": {"resolver": "hub", "params": GIT_CLONE}, "params": [{"name": "url", "value": url}],
                 "workspaces": [{"name": "output", "emptyDir": {}}]},
    }  # fmt: skip


def listener() -> Obj:
    """An EventListener whose one trigger makes a clone_run of the pushed repository."""
    run = clone_run("on-push-", "$(tt.params.url)")
    trigger = {
        "name": "clone", "bindings": [{"name": "url", "value": "$(body.repository.clone_url)"}],
        "template": {"spec": {"params": [{"name": "url"}], "resourcetemplates": [run]}},
    }  # fmt: skip
    return {"apiVersion": "triggers.tekton.dev/v1beta1", "kind": "EventListener",
            "metadata": {"name": "on-push", "namespace": RUNS_NAMESPACE}, "spec": {"triggers": [trigger]}}  # fmt: skip


def finish_taskrun(cluster: KubeCluster, prefix: str) -> Obj:
    """Play Tekton's controller for the TaskRun named PREFIX... in taskhub-runs: once it is there, pinned (the
    resolved Task inlined), it succeeds. Returns it as it was created."""
    controller = FakeTekton(cluster, RUNS_NAMESPACE, "no-node")
    try:
        created = controller.wait_for("taskruns", lambda run: run["metadata"]["name"].startswith(prefix))
        assert created["spec"]["taskSpec"]["steps"], created
        controller.set_condition("taskruns", created["metadata"]["name"], "True", "Succeeded")
    finally:
        controller.api.close()
    return created


@pytest.fixture
def played(podman: Podman, tmp_path: Path) -> Iterator[Played]:
    pods = Played(podman, tmp_path)
    try:
        yield pods
    finally:
        pods.down()


def test_the_production_manifests_play_and_serve(
    played: Played, taskhub_image: str, postgres_image: str, kube_cluster: KubeCluster,
    deployed_production: list[Obj], fixture_catalog: Path, tmp_path: Path,
):  # fmt: skip
    suffix = played.suffix
    db_port, hub_port, sink_port, metrics_port = free_port(), free_port(), free_port(), free_port()
    password = secrets.token_urlsafe(12)
    secret = {
        "database-url": f"postgresql+psycopg://taskhub:{password}@127.0.0.1:{db_port}/taskhub",
        "secrets-key": base64.urlsafe_b64encode(os.urandom(32)).decode(),  # as Fernet.generate_key() makes
    }
    ports = {"0.0.0.0": "127.0.0.1", "0.0.0.0:9000": f"127.0.0.1:{metrics_port}"}
    objects = {f"{obj['kind']}/{obj['metadata']['name']}": obj for obj in rendered("production")}

    postgres = f"taskhub-postgres{suffix}"
    environment = {"POSTGRES_USER": "taskhub", "POSTGRES_PASSWORD": password, "POSTGRES_DB": "taskhub",
                   "PGPORT": str(db_port), "LISTEN_ADDRESSES": "127.0.0.1"}  # fmt: skip
    played.play("postgres", [{
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": postgres},
        "spec": {"hostNetwork": True, "containers": [{
            "name": "postgres", "image": postgres_image,
            "env": [{"name": key, "value": value} for key, value in environment.items()],
        }]},
    }])  # fmt: skip
    container = f"{postgres}-postgres"
    wait_until(
        "PostgreSQL", lambda: "ready to accept connections" in played.logs(container), lambda: played.running(container)
    )

    # The migration Job's pod, run to its end.
    job = objects["Job/taskhub-db-upgrade"]
    upgrade = job["spec"]["template"]
    for_podman(upgrade["spec"], suffix, taskhub_image, secret, {})
    upgrade["spec"]["restartPolicy"] = "Never"
    name = f"taskhub-db-upgrade{suffix}"
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {**upgrade["metadata"], "name": name},
        "spec": upgrade["spec"],
    }
    played.play("db-upgrade", [objects["ConfigMap/taskhub"], pod])
    exit_code = played.podman.run("wait", f"{name}-db-upgrade", timeout=START_TIMEOUT_SECONDS).stdout.strip()
    assert exit_code == "0", played.logs(f"{name}-db-upgrade")

    # The hub, the Triggers sink and the worker, as the manifests run them.
    hub, sink = objects["Deployment/taskhub-hub"], objects["Deployment/taskhub-sink"]
    worker = objects["Deployment/taskhub-worker"]
    for deployment, port in ((hub, hub_port), (sink, sink_port), (worker, 0)):
        deployment["metadata"]["name"] += suffix
        deployment["spec"]["replicas"] = 1
        pod = deployment["spec"]["template"]["spec"]
        for_podman(pod, suffix, taskhub_image, secret, {**ports, "8000": str(port)})
    worker_pod = worker["spec"]["template"]["spec"]
    catalog = image_user_repository(fixture_catalog, tmp_path / "catalog")
    for volume, mount in (
        host_path(f"kube{suffix}", worker_kubeconfig(kube_cluster, tmp_path / "kube"), "/etc/taskhub-kube"),
        host_path(f"catalog{suffix}", catalog, "/catalog"),
    ):
        worker_pod["volumes"].append(volume)
        worker_pod["containers"][0]["volumeMounts"].append(mount)
    worker_pod["containers"][0]["env"].append({"name": "TASKHUB_KUBECONFIG", "value": "/etc/taskhub-kube/config"})
    played.play("taskhub", [objects["ConfigMap/taskhub"], hub, sink, worker])
    containers = {part: f"{d['metadata']['name']}-pod-0-{part}" for part, d in
                  (("hub", hub), ("sink", sink), ("worker", worker))}  # fmt: skip
    worker_container = containers["worker"]

    def alive() -> bool:
        return all(played.running(container) for container in containers.values())

    def logs() -> str:
        return "\n".join(f"{part}:\n{played.logs(container)[-3000:]}" for part, container in containers.items())

    base = f"http://127.0.0.1:{hub_port}"
    for server in (base, f"http://127.0.0.1:{sink_port}"):
        wait_until(f"{server}/readyz", lambda: request("GET", f"{server}/readyz")[0] == 200, alive, logs)  # noqa: B023
        assert request("GET", f"{server}/livez") == (200, b'{"status": "ok"}')

    # What an operator does once: a token, a catalog.
    def taskhub(*args: str) -> str:
        return played.podman.run("exec", worker_container, "taskhub", *args).stdout.strip()

    scopes = ("catalog:refresh", "runs:write", "objects:write")
    token = taskhub("token", "create", "platform", *(f"--scope={scope}" for scope in scopes))
    taskhub("catalog", "add", "tekton", "file:///catalog")

    # Sync: the hub queues it, the worker does it.
    status, body = request("POST", f"{base}/v1/catalog/tekton/refresh", token, {})
    assert status == 202, body
    version = f"{base}/v1/resource/tekton/task/git-clone/0.9"
    wait_until("the synced catalog", lambda: request("GET", version)[0] == 200, alive, logs)

    # Resolve, as Tekton's hub resolver asks.
    status, body = request("POST", f"{base}/v1/resolve", body={"resolver": "hub", "params": GIT_CLONE})
    assert status == 200, body
    assert "name: git-clone" in json.loads(body)["data"]

    # A run: the worker pins it and creates it in taskhub-runs; the test plays Tekton's controller.
    status, body = request("POST", f"{base}/v1/runs", token, clone_run("clone-", "https://example.com/repo.git"))
    assert status == 202, body
    location = base + json.loads(body)["data"]["links"]["self"]
    finish_taskrun(kube_cluster, "clone-")

    def ended() -> Obj | None:
        data = json.loads(request("GET", location, token)[1])["data"]
        return data if data["status"] not in ("Pending", "Running") else None

    assert wait_until("the run's end", ended, alive, logs)["status"] == "Succeeded"

    # A webhook to the sink: it records and queues the event; the worker runs the trigger, then its TaskRun.
    # Runs go to taskhub-runs (TASKHUB_RUN_NAMESPACE) and keep their listener's namespace: the listener lives there.
    status, body = request("POST", f"{base}/v1/objects", token, listener())
    assert status == 200, body
    event = {"repository": {"clone_url": "https://example.com/pushed.git"}}
    status, body = request("POST", f"http://127.0.0.1:{sink_port}/v1/listeners/{RUNS_NAMESPACE}/on-push", body=event)
    assert status == 202, body
    triggered = finish_taskrun(kube_cluster, "on-push-")
    assert triggered["spec"]["params"] == [{"name": "url", "value": "https://example.com/pushed.git"}]

    # Metrics: the hub's requests, the worker's sync and run.
    hub_metrics = request("GET", f"{base}/metrics")[1].decode()
    assert 'taskhub_http_requests_total{code="200",method="POST",route="/v1/resolve"} 1.0' in hub_metrics
    worker_metrics_url = f"http://127.0.0.1:{metrics_port}/metrics"
    worker_metrics = request("GET", worker_metrics_url)[1].decode()
    # The refresh's sync, and the scheduler's too when its tick finds the new catalog due before the refresh comes.
    synced = re.search(r'taskhub_catalog_syncs_total\{catalog="tekton",kind="catalog",outcome="success"\} (\d+)\.0',
                       worker_metrics)  # fmt: skip
    assert synced is not None and int(synced[1]) >= 1, worker_metrics
    trigger = 'taskhub_trigger_events_total{listener="taskhub-runs/on-push",outcome="done",source="listener"} 1.0'
    assert trigger in worker_metrics
    finished = 'taskhub_runs_finished_total{backend="kubernetes",outcome="succeeded"} 2.0'
    assert wait_until("the triggered run's end", lambda: finished in request("GET", worker_metrics_url)[1].decode(),
                      alive, logs)  # fmt: skip


def test_the_small_variant_migrates_its_volume_and_serves(played: Played, taskhub_image: str):
    suffix, port = played.suffix, free_port()
    objects = {f"{obj['kind']}/{obj['metadata']['name']}": obj for obj in rendered("small")}
    claim, hub = objects["PersistentVolumeClaim/taskhub-data"], objects["Deployment/taskhub-hub"]
    claim["metadata"]["name"] += suffix
    hub["metadata"]["name"] += suffix
    # podman 4.3 removes a "once" init container when it ends, and may find it still running (podman#18477).
    hub["metadata"]["annotations"] = {"io.podman.annotations.init.container.type": "always"}
    for_podman(hub["spec"]["template"]["spec"], suffix, taskhub_image, {}, {"8000": str(port), "0.0.0.0": "127.0.0.1"})
    played.play("small", [objects["ConfigMap/taskhub"], claim, hub])
    container = f"{hub['metadata']['name']}-pod-0-hub"

    base = f"http://127.0.0.1:{port}"
    ready = lambda: request("GET", f"{base}/readyz")[0] == 200  # noqa: E731
    wait_until("the hub's /readyz", ready, lambda: played.running(container))
    assert request("GET", f"{base}/v1/categories")[0] == 200
    # The init container migrated the SQLite database onto the claim, as the image's user.
    mounted = played.podman.run("volume", "inspect", "--format", "{{.Mountpoint}}", claim["metadata"]["name"])
    database = Path(mounted.stdout.strip()) / "taskhub.db"
    assert database.stat().st_uid == IMAGE_UID
