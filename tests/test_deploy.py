"""deploy/'s manifests: rendered as `kubectl apply -k` renders them, created on the tests' real kube-apiserver, and
each ServiceAccount's RBAC checked with SubjectAccessReviews, both what its component needs and what it must not
have. tests/test_deploy_play.py runs them with `podman kube play`."""

from __future__ import annotations

import shutil
import subprocess
import uuid
from typing import Any

import pytest
import requests
import yaml
from click.testing import CliRunner
from kubernetes import client

from catalog.db import make_engine
from catalog.manifests import load_documents
from hub.cli import main
from hub.cli.cluster_resolver import IndexResolvers
from hub.config import Settings
from runner.cluster_resolver.requests import ResolutionRequestWatcher
from tests.deploy_fixture import NAMESPACE, REPO, RUNS_NAMESPACE, create_all, rendered, service_account_token
from tests.jobs.processes import wait_until
from tests.kube_fixture import TRIGGERS_CRDS, TRIGGERS_GROUP, KubeCluster
from tests.runner.test_cluster_resolver import Running, create_request, succeeded, wait_answered
from tests.test_cli import TASKHUB, run  # noqa: F401 (the fixture)
from tests.triggers.support import github_signature
from tests.triggers.test_cluster_mode import PUSH, RESOURCES, SECRET, processed

VARIANTS = ("small", "production")
# The small variant goes to namespaces of its own here, so that its bindings do not grant production's accounts.
SMALL_NAMESPACES = {NAMESPACE: "taskhub-small", RUNS_NAMESPACE: "taskhub-small-runs"}
SHUTDOWN_GRACE_SECONDS = 30  # hub.config.Settings.shutdown_grace_seconds


def pod_specs(objects: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The pod template of every Deployment and Job, by "Kind/name"."""
    return {
        f"{obj['kind']}/{obj['metadata']['name']}": obj["spec"]["template"]["spec"]
        for obj in objects
        if obj["kind"] in ("Deployment", "Job")
    }


@pytest.fixture(scope="module")
def small(kube_cluster: KubeCluster) -> list[dict[str, Any]]:
    """deploy/small created on the cluster in the namespaces SMALL_NAMESPACES names."""
    objects = rendered("small", SMALL_NAMESPACES)
    assert create_all(kube_cluster, objects) == []
    return objects


# -- rendering ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("variant", VARIANTS)
def test_the_tests_renderer_agrees_with_kubectl_kustomize(variant):
    if shutil.which("kubectl") is None:
        pytest.skip("kubectl is not installed: the manifests are rendered by tests/kustomize.py alone")
    done = subprocess.run(["kubectl", "kustomize", str(REPO / "deploy" / variant)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr

    def key(obj: dict[str, Any]) -> tuple[str, str, str]:
        return obj["kind"], obj["metadata"].get("namespace", ""), obj["metadata"]["name"]

    assert sorted(rendered(variant), key=key) == sorted(yaml.safe_load_all(done.stdout), key=key)


# -- what the manifests say ---------------------------------------------------------------------------------


@pytest.mark.parametrize("variant", VARIANTS)
def test_every_container_runs_as_a_user_without_privileges_on_a_read_only_root(variant):
    found = {}
    for where, pod in pod_specs(rendered(variant)).items():
        found[where] = pod["securityContext"]["runAsNonRoot"]
        for container in pod["containers"] + pod.get("initContainers", []):
            context = container["securityContext"]
            found[f"{where}/{container['name']}"] = (
                context["readOnlyRootFilesystem"],
                context["allowPrivilegeEscalation"],
                context["capabilities"]["drop"],
                sorted(container["resources"]["requests"]),
            )
    for where, value in found.items():
        assert value == (True if where.count("/") == 1 else (True, False, ["ALL"], ["cpu", "memory"])), where


@pytest.mark.parametrize("variant", VARIANTS)
def test_servers_are_probed_and_stopped_after_their_grace(variant):
    for where, pod in pod_specs(rendered(variant)).items():
        for container in pod["containers"]:
            ports = {port["name"] for port in container.get("ports", [])}
            if "http" in ports:  # taskhub serve: traffic only once the database is migrated
                assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}, where
                assert container["livenessProbe"]["httpGet"] == {"path": "/livez", "port": "http"}, where
            elif "metrics" in ports:  # --metrics-address: /livez and /metrics only (hub/wsgi/probes.py)
                assert container["livenessProbe"]["httpGet"] == {"path": "/livez", "port": "metrics"}, where
            elif "sink" in ports:  # taskhub triggers serve: the sinks only, whose .../live answers 200
                assert container["livenessProbe"]["httpGet"]["path"].endswith("/live"), where
            else:
                assert where.startswith("Job/"), f"{where}: a long-running container without a probe"
        if where.startswith("Deployment/"):
            assert pod["terminationGracePeriodSeconds"] > SHUTDOWN_GRACE_SECONDS, where


@pytest.mark.parametrize("variant", VARIANTS)
def test_every_command_is_one_taskhub_has(variant):
    for where, pod in pod_specs(rendered(variant)).items():
        for container in pod["containers"] + pod.get("initContainers", []):
            result = CliRunner().invoke(main, [*container["args"], "--help"])
            assert result.exit_code == 0, f"{where}: taskhub {' '.join(container['args'])}: {result.output}"


def test_production_runs_every_part_apart():
    pods = pod_specs(rendered("production"))
    commands = {where: pod["containers"][0]["args"] for where, pod in pods.items()}
    assert commands["Deployment/taskhub-hub"][0] == "serve" and "--no-worker" in commands["Deployment/taskhub-hub"]
    assert commands["Deployment/taskhub-sink"][0] == "serve" and "--no-worker" in commands["Deployment/taskhub-sink"]
    assert commands["Deployment/taskhub-worker"][0] == "worker"
    assert commands["Deployment/taskhub-resolver"][:2] == ["resolver", "serve"]
    assert commands["Deployment/taskhub-triggers"][:4] == ["triggers", "serve", "--namespace", RUNS_NAMESPACE]
    assert commands["Job/taskhub-db-upgrade"] == ["db", "upgrade"]
    deployments = {obj["metadata"]["name"]: obj for obj in rendered("production") if obj["kind"] == "Deployment"}
    assert deployments["taskhub-hub"]["spec"]["replicas"] > 1
    for where, pod in pods.items():
        env = {e["name"]: e.get("valueFrom", {}).get("secretKeyRef") for e in pod["containers"][0].get("env", [])}
        assert env["TASKHUB_DATABASE_URL"] == {"name": "taskhub", "key": "database-url"}, where
        if where != "Job/taskhub-db-upgrade":  # Secrets and registry logins sealed by one pod are opened by another
            assert env["TASKHUB_SECRETS_KEY"] == {"name": "taskhub", "key": "secrets-key"}, where


# -- on the API server --------------------------------------------------------------------------------------


def test_the_small_variant_is_accepted_by_the_api_server(kube_cluster, small):
    with kube_cluster.api_client() as api:
        stored = client.AppsV1Api(api).read_namespaced_deployment("taskhub-hub", SMALL_NAMESPACES[NAMESPACE])
    assert [c.args for c in stored.spec.template.spec.init_containers] == [["db", "upgrade"]]
    assert stored.spec.template.spec.volumes[0].persistent_volume_claim.claim_name == "taskhub-data"


def test_the_production_variant_is_accepted_by_the_api_server(kube_cluster, deployed_production):
    with kube_cluster.api_client() as api:
        listed = {
            f"{kind}/{item.metadata.name}"
            for kind, listing in [
                ("Deployment", client.AppsV1Api(api).list_namespaced_deployment(NAMESPACE)),
                ("Job", client.BatchV1Api(api).list_namespaced_job(NAMESPACE)),
                ("Ingress", client.NetworkingV1Api(api).list_namespaced_ingress(NAMESPACE)),
            ]
            for item in listing.items
        }
    assert listed == {
        "Deployment/taskhub-hub", "Deployment/taskhub-sink", "Deployment/taskhub-worker",
        "Deployment/taskhub-resolver", "Deployment/taskhub-triggers", "Job/taskhub-db-upgrade", "Ingress/taskhub",
    }  # fmt: skip


def test_kubectl_apply_k_applies_production_as_the_tests_created_it(kube_cluster, deployed_production):
    if shutil.which("kubectl") is None:
        pytest.skip("kubectl is not installed")
    production = str(REPO / "deploy" / "production")
    done = subprocess.run(["kubectl", "--kubeconfig", str(kube_cluster.kubeconfig), "apply", "-k", production],
                          capture_output=True, text=True)  # fmt: skip
    assert done.returncode == 0, done.stderr
    applied = set()
    for line in done.stdout.splitlines():  # "role.rbac.authorization.k8s.io/taskhub-runs configured"
        resource, name = line.split()[0].split("/")
        applied.add(f"{resource.split('.')[0]}/{name}")
    assert applied == {f"{obj['kind'].lower()}/{obj['metadata']['name']}" for obj in deployed_production}


def allowed(api: client.ApiClient, account: str, verb: str, resource: str, namespace: str = "") -> bool:
    """Whether the ServiceAccount "NAMESPACE/NAME" may `verb` the `resource` ("group/plural[/subresource]", the
    core group empty) in `namespace` ("" for every namespace), as the API server's authorizer answers."""
    sa_namespace, name = account.split("/")
    group, plural, *sub = resource.split("/")
    review = {
        "spec": {
            "user": f"system:serviceaccount:{sa_namespace}:{name}",
            "groups": ["system:serviceaccounts", f"system:serviceaccounts:{sa_namespace}", "system:authenticated"],
            "resourceAttributes": {
                "verb": verb, "group": group, "resource": plural, "subresource": sub[0] if sub else "",
                "namespace": namespace,
            },
        }
    }  # fmt: skip
    return bool(client.AuthorizationV1Api(api).create_subject_access_review(review).status.allowed)


RUNS = ("tekton.dev/pipelineruns", "tekton.dev/taskruns")
REQUESTS = "resolution.tekton.dev/resolutionrequests"
# (account, verb, resource, namespace, allowed): what each part does in the cluster (runner/kube_backend.py,
# runner/cluster_resolver/requests.py), then what it must not do.
PRODUCTION_ACCESS = [
    *[("taskhub/taskhub-worker", verb, runs, RUNS_NAMESPACE, True)
      for runs in RUNS for verb in ("create", "get", "list", "watch", "patch")],
    *[("taskhub/taskhub-worker", "get", f"tekton.dev/{kind}", RUNS_NAMESPACE, True)
      for kind in ("tasks", "pipelines", "stepactions")],
    ("taskhub/taskhub-worker", "watch", "/pods", RUNS_NAMESPACE, True),
    ("taskhub/taskhub-worker", "get", "/pods/log", RUNS_NAMESPACE, True),
    ("taskhub/taskhub-resolver", "watch", REQUESTS, "", True),
    ("taskhub/taskhub-resolver", "list", REQUESTS, "", True),
    ("taskhub/taskhub-resolver", "patch", f"{REQUESTS}/status", "team-a", True),
    *[("taskhub/taskhub-triggers", verb, f"triggers.tekton.dev/{kind}", RUNS_NAMESPACE, True)
      for kind in ("eventlisteners", "triggers", "triggerbindings", "triggertemplates", "interceptors")
      for verb in ("get", "list")],
    *[("taskhub/taskhub-triggers", "list", f"triggers.tekton.dev/{kind}", "", True)
      for kind in ("clustertriggerbindings", "clusterinterceptors")],
    ("taskhub/taskhub-triggers", "get", "/secrets", RUNS_NAMESPACE, True),  # the interceptors' (github's secretRef)
    *[("taskhub/taskhub-triggers", "create", runs, RUNS_NAMESPACE, True) for runs in RUNS],
    # Secrets: the database URL and the sealing key are in taskhub's; a run's may be anyone's.
    *[(f"taskhub/taskhub-{part}", "get", "/secrets", namespace, False)
      for part in ("hub", "sink", "worker", "resolver", "db-upgrade") for namespace in (NAMESPACE, RUNS_NAMESPACE)],
    *[(f"taskhub/taskhub-{part}", "list", "/secrets", "", False) for part in ("hub", "worker", "resolver", "triggers")],
    ("taskhub/taskhub-triggers", "get", "/secrets", NAMESPACE, False),
    ("taskhub/taskhub-triggers", "get", "/secrets", "default", False),
    ("taskhub/taskhub-triggers", "get", "triggers.tekton.dev/eventlisteners", "default", False),
    ("taskhub/taskhub-triggers", "create", "tekton.dev/pipelineruns", NAMESPACE, False),
    ("taskhub/taskhub-triggers", "create", "/pods", RUNS_NAMESPACE, False),
    ("taskhub/taskhub-triggers", "create", "triggers.tekton.dev/eventlisteners", RUNS_NAMESPACE, False),
    # Runs only in taskhub-runs, and only by the worker (and the cluster's triggers); nothing that runs code as the
    # worker could otherwise.
    ("taskhub/taskhub-worker", "create", "tekton.dev/pipelineruns", NAMESPACE, False),
    ("taskhub/taskhub-worker", "create", "tekton.dev/pipelineruns", "default", False),
    ("taskhub/taskhub-worker", "delete", "tekton.dev/pipelineruns", RUNS_NAMESPACE, False),
    ("taskhub/taskhub-worker", "create", "/pods", RUNS_NAMESPACE, False),
    ("taskhub/taskhub-worker", "create", "/pods/exec", RUNS_NAMESPACE, False),
    ("taskhub/taskhub-worker", "create", "tekton.dev/tasks", RUNS_NAMESPACE, False),
    *[(f"taskhub/taskhub-{part}", "create", "tekton.dev/pipelineruns", RUNS_NAMESPACE, False)
      for part in ("hub", "sink", "resolver", "db-upgrade")],
    # The resolver writes answers, never requests.
    ("taskhub/taskhub-resolver", "create", REQUESTS, "team-a", False),
    ("taskhub/taskhub-resolver", "delete", REQUESTS, "team-a", False),
    ("taskhub/taskhub-resolver", "patch", REQUESTS, "team-a", False),
    ("taskhub/taskhub-resolver", "get", "/configmaps", NAMESPACE, False),
    ("taskhub/taskhub-sink", "list", "/pods", NAMESPACE, False),
]  # fmt: skip


def test_each_production_account_may_do_what_its_part_does_and_nothing_more(kube_cluster, deployed_production):
    with kube_cluster.api_client() as api:
        wrong = [row for row in PRODUCTION_ACCESS if allowed(api, *row[:4]) != row[4]]
    assert wrong == []


def test_the_parts_that_reach_no_api_get_no_token():
    objects = rendered("production")
    accounts = {obj["metadata"]["name"]: obj for obj in objects if obj["kind"] == "ServiceAccount"}
    for where, pod in pod_specs(objects).items():
        account = accounts[pod["serviceAccountName"]]
        mounted = pod.get("automountServiceAccountToken", account.get("automountServiceAccountToken", True))
        reaches_the_api = ("Deployment/taskhub-worker", "Deployment/taskhub-resolver", "Deployment/taskhub-triggers")
        assert mounted == (where in reaches_the_api), where


def test_the_small_hub_runs_runs_in_its_runs_namespace_only(kube_cluster, small):
    hub, runs = f"{SMALL_NAMESPACES[NAMESPACE]}/taskhub-hub", SMALL_NAMESPACES[RUNS_NAMESPACE]
    with kube_cluster.api_client() as api:
        assert allowed(api, hub, "create", "tekton.dev/pipelineruns", runs)
        assert allowed(api, hub, "get", "/pods/log", runs)
        assert not allowed(api, hub, "create", "tekton.dev/pipelineruns", SMALL_NAMESPACES[NAMESPACE])
        assert not allowed(api, hub, "get", "/secrets", runs)
        assert not allowed(api, hub, "get", "/secrets", SMALL_NAMESPACES[NAMESPACE])


def test_the_resolver_answers_requests_of_any_namespace_as_its_service_account(
    kube_cluster, deployed_production, kube_namespace, sqlite_templates, tmp_path
):
    shutil.copy(sqlite_templates["indexed"], tmp_path / "taskhub.db")
    settings = Settings(data_dir=tmp_path, database_url=f"sqlite:///{tmp_path / 'taskhub.db'}")
    engine = make_engine(settings.database_url)
    token = service_account_token(kube_cluster, NAMESPACE, "taskhub-resolver")
    with kube_cluster.api_client(token) as api, kube_cluster.api_client() as admin:
        # As `resolver serve --all-namespaces` runs it; it checks its access to patch answers first.
        running = Running(ResolutionRequestWatcher(api, IndexResolvers(settings, engine), None)).start()
        try:
            objects = client.CustomObjectsApi(admin)
            name = create_request(objects, kube_namespace, {"name": "git-clone", "version": "0.9"})
            assert succeeded(wait_answered(objects, kube_namespace, name))["status"] == "True"
        finally:
            running.stop()
    engine.dispose()


def test_the_clusters_triggers_create_runs_as_their_service_account(
    run, kube_cluster, deployed_production, tmp_path  # noqa: F811
):  # fmt: skip
    run("db", "upgrade")
    suffix = uuid.uuid4().hex[:6]
    text = RESOURCES
    for name in ("github-listener", "github-push", "push-binding", "build-template", "github-secret"):
        text = text.replace(name, f"{name}-{suffix}")
    with kube_cluster.api_client() as api:  # as a team applies its Triggers YAML with kubectl
        secret: Any = {"metadata": {"name": f"github-secret-{suffix}"}, "stringData": {"secretToken": SECRET}}
        client.CoreV1Api(api).create_namespaced_secret(RUNS_NAMESPACE, secret)
        for doc in load_documents(text):
            if doc["kind"] == "TriggerTemplate":  # its ConfigMap is not a kind the manifests let it create
                doc["spec"]["resourcetemplates"] = [
                    r for r in doc["spec"]["resourcetemplates"] if r["kind"] != "ConfigMap"
                ]
            plural, versions = TRIGGERS_CRDS[doc["kind"]]
            client.CustomObjectsApi(api).create_namespaced_custom_object(
                TRIGGERS_GROUP, versions[-1], RUNS_NAMESPACE, plural, doc
            )
    token = service_account_token(kube_cluster, NAMESPACE, "taskhub-triggers")
    kubeconfig = kube_cluster.write_kubeconfig(tmp_path / "triggers.kubeconfig", token=token)
    args = ["triggers", "serve", "-k", str(kubeconfig), "--namespace", RUNS_NAMESPACE, "--port", "0"]
    log = tmp_path / "triggers.log"
    with log.open("w") as out:
        server = subprocess.Popen([TASKHUB, *args], env={**run.env, "TASKHUB_JOB_POLL_SECONDS": "0.1"},
                                  stdout=out, stderr=out, text=True)  # fmt: skip
    try:
        serving = wait_until(lambda: "serving the EventListeners" in log.read_text() or server.poll() is not None,
                             "taskhub triggers serve to start")  # fmt: skip
        assert serving and server.poll() is None, log.read_text()
        sinks = log.read_text().split(" at ")[-1].split("/v1/")[0]
        url = f"{sinks}/v1/listeners/{RUNS_NAMESPACE}/github-listener-{suffix}"
        headers = {"Content-Type": "application/json", "X-GitHub-Event": "push",
                   "X-Hub-Signature-256": github_signature(SECRET, PUSH)}  # fmt: skip
        answer = requests.post(url, data=PUSH, headers=headers, timeout=30)
        assert answer.status_code == 202, answer.text
        event = processed(run.env["TASKHUB_DATABASE_URL"], answer.json()["eventID"])
        assert [(o["status"], len(o["created"])) for o in event.outcomes] == [("created", 1)], event.reason
        (created,) = event.outcomes[0]["created"]
        with kube_cluster.api_client() as api:
            stored: Any = client.CustomObjectsApi(api).get_namespaced_custom_object(
                "tekton.dev", "v1", RUNS_NAMESPACE, "pipelineruns", created["name"]
            )
        assert stored["metadata"]["labels"]["triggers.tekton.dev/triggers-eventid"] == answer.json()["eventID"]
    finally:
        server.terminate()
        assert server.wait(timeout=60) == 0, log.read_text()
