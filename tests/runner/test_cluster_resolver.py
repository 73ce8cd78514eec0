"""taskhub as a cluster's resolver, against a real kube-apiserver with the ResolutionRequest CRD. No Tekton controller
runs there: the tests create the requests (as Pipelines would) and set any prior status themselves."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from kubernetes import client
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from catalog.blobcache import BlobCache, CachedRegistry
from catalog.db import make_engine
from catalog.errors import InvalidRequest, NotFound
from catalog.publish import publish_catalog
from catalog.registry import OciRegistry
from catalog.resolver import Resolved
from catalog.sync import add_catalog, get_catalog
from hub.cli import main
from hub.cli.cluster_resolver import IndexResolvers
from hub.config import Settings
from runner.cluster_resolver.answers import Answer, answer_request, is_pending
from runner.cluster_resolver.requests import GROUP, PLURAL, VERSION, ResolutionRequestWatcher
from runner.kube import ClusterError
from tests.conftest import free_port
from tests.kube_fixture import VIEWER_TOKEN, KubeCluster
from tests.registry_fixture import RegistryProcess

HUB = "http://127.0.0.1:8000"  # the refSource base when TASKHUB_PUBLIC_URL is unset, as for `taskhub resolve`


# -- fixtures -------------------------------------------------------------------------------------------------


@pytest.fixture
def settings(sqlite_templates: dict[str, Path], tmp_path: Path) -> Settings:
    """A hub holding the indexed test catalog ("tekton") that may resolve bundles from any registry."""
    shutil.copy(sqlite_templates["indexed"], tmp_path / "taskhub.db")
    return Settings(data_dir=tmp_path, database_url=f"sqlite:///{tmp_path / 'taskhub.db'}", resolve_registries="*")


@pytest.fixture
def engine(settings: Settings) -> Iterator[Engine]:
    engine = make_engine(settings.database_url)
    yield engine
    engine.dispose()


@pytest.fixture
def objects(kube_cluster: KubeCluster) -> Iterator[client.CustomObjectsApi]:
    with kube_cluster.api_client() as api:
        yield client.CustomObjectsApi(api)


class Running:
    """A watcher answering on a thread; what it answered and any error it ended with."""

    def __init__(self, watcher: ResolutionRequestWatcher) -> None:
        self.watcher, self.answers, self.retries = watcher, list[Answer](), list[str]()
        watcher.on_answer, watcher.on_retry = self.answers.append, self.retries.append
        self.error: BaseException | None = None
        self.ready = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        try:
            self.watcher.run(self.ready.set)
        except BaseException as exc:
            self.error = exc
            self.ready.set()

    def start(self) -> Running:
        self.thread.start()
        assert self.ready.wait(20), "the watcher did not list within 20 s"
        assert self.error is None, self.error
        return self

    def stop(self) -> None:
        self.watcher.stop()
        self.thread.join(timeout=20)
        assert not self.thread.is_alive(), "the watcher did not stop within 20 s"


@pytest.fixture
def start_watcher(
    kube_cluster: KubeCluster, kube_namespace: str, settings: Settings, engine: Engine
) -> Iterator[Callable[..., Running]]:
    """Start a watcher on the test's namespace (or `namespace=None`: all) over this hub's resolvers."""
    started: list[tuple[Running, client.ApiClient]] = []

    def start(namespace: str | None = kube_namespace, cluster: KubeCluster = kube_cluster) -> Running:
        api = cluster.api_client()
        running = Running(ResolutionRequestWatcher(api, IndexResolvers(settings, engine), namespace))
        started.append((running, api))
        return running.start()

    yield start
    for running, api in started:
        running.stop()
        api.close()


def create_request(
    objects: client.CustomObjectsApi, namespace: str, params: dict[str, Any], resolver_type: str | None = "taskhub"
) -> str:
    """Create a ResolutionRequest as Pipelines does (its params as Tekton's list); returns its name."""
    labels = {"resolution.tekton.dev/type": resolver_type} if resolver_type else {}
    body = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "ResolutionRequest",
        "metadata": {"generateName": f"{resolver_type or 'none'}-", "labels": labels},
        "spec": {"params": [{"name": k, "value": v} for k, v in params.items()]},
    }
    created: Any = objects.create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, body)
    return str(created["metadata"]["name"])


def get_request(objects: client.CustomObjectsApi, namespace: str, name: str) -> dict[str, Any]:
    found: Any = objects.get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name)
    return dict(found)


def wait_answered(objects: client.CustomObjectsApi, namespace: str, name: str, timeout: float = 20) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        found = get_request(objects, namespace, name)
        if not is_pending(found):
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"ResolutionRequest {namespace}/{name} not answered after {timeout} s: {found}")
        time.sleep(0.05)


def succeeded(request: dict[str, Any]) -> dict[str, Any]:
    (condition,) = [c for c in request["status"]["conditions"] if c["type"] == "Succeeded"]
    return dict(condition)


def data_of(request: dict[str, Any]) -> bytes:
    return base64.b64decode(request["status"]["data"], validate=True)


# -- answers --------------------------------------------------------------------------------------------------


def test_hub_request_is_answered_with_the_indexed_bytes_pinned_by_digest(
    objects, kube_namespace, start_watcher, fixture_catalog
):
    start_watcher()
    name = create_request(objects, kube_namespace, {"name": "git-clone", "version": "0.9"})
    answered = wait_answered(objects, kube_namespace, name)
    on_disk = (fixture_catalog / "task/git-clone/0.9/git-clone.yaml").read_bytes()
    assert data_of(answered) == on_disk
    source = {
        "uri": f"{HUB}/v1/resource/tekton/task/git-clone/0.9/yaml",
        "digest": {"sha256": hashlib.sha256(on_disk).hexdigest()},
    }
    assert answered["status"]["refSource"] == source
    assert answered["status"]["source"] == source  # the deprecated copy, written identically
    assert "annotations" not in answered["status"]  # Tekton's hub resolver sets none
    assert succeeded(answered)["status"] == "True"


def test_a_version_constraint_picks_the_greatest_match(objects, kube_namespace, start_watcher, fixture_catalog):
    start_watcher()
    wanted = {">=0.7, <0.10": "0.9", "~>0.9": "0.10", "!=0.10": "0.9"}
    names = {create_request(objects, kube_namespace, {"name": "git-clone", "version": v}): v for v in wanted}
    for name, constraint in names.items():
        data = data_of(wait_answered(objects, kube_namespace, name))
        version = wanted[constraint]
        assert data == (fixture_catalog / f"task/git-clone/{version}/git-clone.yaml").read_bytes(), constraint


def test_artifact_type_and_pipeline_kind(objects, kube_namespace, start_watcher, fixture_catalog):
    start_watcher()
    name = create_request(objects, kube_namespace,
                          {"type": "artifact", "kind": "pipeline", "name": "buildpacks", "version": "0.2"})  # fmt: skip
    answered = wait_answered(objects, kube_namespace, name)
    assert data_of(answered) == (fixture_catalog / "pipeline/buildpacks/0.2/buildpacks.yaml").read_bytes()
    # No catalog: Tekton's default tekton-catalog-pipelines, which stands for this hub's default catalog.
    assert answered["status"]["refSource"]["uri"] == f"{HUB}/api/v1/packages/tekton-pipeline/tekton/buildpacks/0.2.0"


@pytest.fixture
def bundles(engine: Engine, settings: Settings, registry: RegistryProcess) -> CachedRegistry:
    """The test catalog published as Tekton bundles to a real registry, added to the hub: "*" alone reaches no
    loopback registry."""
    reg = CachedRegistry(OciRegistry(registry.host), BlobCache(settings.data_dir / "publish-blobs"))
    with Session(engine) as s, s.begin():
        publish_catalog(s, get_catalog(s, "tekton"), reg, f"{registry.host}/catalog")
        add_catalog(s, "bundles", f"{registry.host}/catalog", repositories=[])
    return reg


def test_bundles_request_is_answered_from_the_registry(objects, kube_namespace, start_watcher, bundles, registry):
    start_watcher()
    ref = f"{registry.host}/catalog/task/git-clone:0.10"
    name = create_request(objects, kube_namespace, {"bundle": ref, "name": "git-clone", "kind": "task"})
    answered = wait_answered(objects, kube_namespace, name)
    resource = json.loads(data_of(answered))  # the layer as tkn writes it: compact JSON
    assert resource["metadata"]["name"] == "git-clone"
    assert resource["metadata"]["labels"]["app.kubernetes.io/version"] == "0.10"
    assert answered["status"]["refSource"] == {
        "uri": f"{registry.host}/catalog/task/git-clone",
        "digest": {"sha256": bundles.head_manifest(ref).split(":")[1]},
        "entryPoint": "git-clone",
    }
    assert answered["status"]["annotations"] == {
        "resolution.tekton.dev/dev.tekton.image.kind": "task",
        "resolution.tekton.dev/dev.tekton.image.name": "git-clone",
        "resolution.tekton.dev/dev.tekton.image.apiVersion": "v1",
    }
    missing = create_request(objects, kube_namespace, {"bundle": ref, "name": "git-clone", "kind": "pipeline"})
    condition = succeeded(wait_answered(objects, kube_namespace, missing))
    assert condition["message"] == (
        f'error getting "bundleresolver" "{kube_namespace}/{missing}": '
        "could not find object in image with kind: pipeline and name: git-clone"
    )


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"name": "nope", "version": "0.1"},
         "error getting \"Hub\" \"{key}\": requested resource '" + HUB
         + "/v1/resource/tekton/task/nope' not found on hub"),
        ({"name": "git-clone", "version": ">=5"}, 'error getting "Hub" "{key}": no version found for constraint >=5'),
        ({"name": "git-clone"},
         'invalid resource request "{key}": failed to validate params: missing required hub resolver params: '
         "name, version"),
        ({"name": "x", "version": "1", "kind": "tasks"},
         'invalid resource request "{key}": failed to validate params: kind param must be one of: task, pipeline, '
         "stepaction"),
        ({"name": "x", "version": "1", "type": "artifact", "kind": "stepaction"},
         'invalid resource request "{key}": failed to populate default params: failed to resolve catalog name with '
         "kind: stepaction"),
        ({"bundle": "127.0.0.1:5000/x:1"}, 'invalid resource request "{key}": parameter "name" required'),
    ],
)  # fmt: skip
def test_failures_get_tekton_reason_and_message(objects, kube_namespace, start_watcher, params, message):
    running = start_watcher()
    name = create_request(objects, kube_namespace, params)
    condition = succeeded(wait_answered(objects, kube_namespace, name))
    assert condition["status"] == "False"
    assert condition["reason"] == "ResolutionFailed"
    assert condition["message"] == message.format(key=f"{kube_namespace}/{name}")
    assert "data" not in get_request(objects, kube_namespace, name)["status"]
    assert [a.line() for a in running.answers] == [f"{kube_namespace}/{name}: failed: {condition['message']}"]


# -- which requests, and how often ----------------------------------------------------------------------------


def test_requests_of_other_resolvers_are_untouched(objects, kube_namespace, start_watcher):
    running = start_watcher()
    others = [
        create_request(objects, kube_namespace, {"name": "git-clone", "version": "0.9"}, resolver_type=None),
        create_request(objects, kube_namespace, {"name": "git-clone", "version": "0.9"}, resolver_type="hub"),
    ]
    before = {n: get_request(objects, kube_namespace, n)["metadata"]["resourceVersion"] for n in others}
    ours = create_request(objects, kube_namespace, {"name": "git-clone", "version": "0.9"})
    wait_answered(objects, kube_namespace, ours)
    time.sleep(0.3)
    for other in others:
        stored = get_request(objects, kube_namespace, other)
        assert stored["metadata"]["resourceVersion"] == before[other] and "status" not in stored
    assert running.watcher.counts.writes == 1


def test_answered_requests_are_not_rewritten_and_in_progress_ones_are_answered(objects, kube_namespace, start_watcher):
    done = create_request(objects, kube_namespace, {"name": "git-clone", "version": "0.9"})
    objects.patch_namespaced_custom_object_status(GROUP, VERSION, kube_namespace, PLURAL, done, {"status": {
        "data": base64.b64encode(b"kind: Task\n").decode(),
        "conditions": [{"type": "Succeeded", "status": "True"}],
    }})  # fmt: skip
    failed = create_request(objects, kube_namespace, {"name": "git-clone", "version": "0.9"})
    objects.patch_namespaced_custom_object_status(GROUP, VERSION, kube_namespace, PLURAL, failed, {"status": {
        "conditions": [{"type": "Succeeded", "status": "False", "reason": "ResolutionTimedOut"}],
    }})  # fmt: skip
    # What Tekton's core controller writes first: Unknown, waiting for the resolver.
    waiting = create_request(objects, kube_namespace, {"name": "git-clone", "version": "0.9"})
    objects.patch_namespaced_custom_object_status(GROUP, VERSION, kube_namespace, PLURAL, waiting, {"status": {
        "conditions": [{"type": "Succeeded", "status": "Unknown", "reason": "ResolutionInProgress",
                        "message": "waiting for resolver"}],
    }})  # fmt: skip
    versions = {n: get_request(objects, kube_namespace, n)["metadata"]["resourceVersion"] for n in (done, failed)}
    running = start_watcher()
    assert succeeded(wait_answered(objects, kube_namespace, waiting))["status"] == "True"
    # An unrelated change makes the watch deliver the answered request again: still no write.
    objects.patch_namespaced_custom_object(GROUP, VERSION, kube_namespace, PLURAL, waiting,
                                           {"metadata": {"annotations": {"touched": "yes"}}})  # fmt: skip
    time.sleep(0.5)
    for name, version in versions.items():
        assert get_request(objects, kube_namespace, name)["metadata"]["resourceVersion"] == version
    assert running.watcher.counts.writes == 1 and len(running.answers) == 1


def test_requests_created_while_the_resolver_was_down_are_answered_when_it_starts(
    objects, kube_namespace, start_watcher
):
    names = [create_request(objects, kube_namespace, {"name": "yq", "version": v}) for v in ("0.3", "0.4")]
    running = start_watcher()
    for name in names:
        assert succeeded(wait_answered(objects, kube_namespace, name))["status"] == "True"
    assert running.watcher.counts.writes == 2


def test_two_resolvers_answer_each_request_once(objects, kube_namespace, start_watcher):
    first, second = start_watcher(), start_watcher()
    names = [create_request(objects, kube_namespace, {"name": "git-clone", "version": "~>0.9"}) for _ in range(6)]
    for name in names:
        wait_answered(objects, kube_namespace, name)
    time.sleep(0.3)
    assert first.watcher.counts.writes + second.watcher.counts.writes == len(names)
    assert len(first.answers) + len(second.answers) == len(names)


def test_all_namespaces(kube_cluster, objects, start_watcher):
    running = start_watcher(namespace=None)
    spaces = [kube_cluster.create_namespace() for _ in range(2)]
    try:
        names = [(ns, create_request(objects, ns, {"name": "yq", "version": "0.4"})) for ns in spaces]
        for ns, name in names:
            assert succeeded(wait_answered(objects, ns, name))["status"] == "True"
        assert {(a.namespace, a.name) for a in running.answers} >= set(names)
    finally:
        for ns in spaces:
            kube_cluster.delete_namespace(ns)


class ExpiringWatcher(ResolutionRequestWatcher):
    """Its first list claims a resourceVersion the server has long compacted: the watch answers 410 Gone."""

    lists = 0

    def _list(self, pool: Any) -> str:
        self.lists += 1
        real = super()._list(pool)
        return "1" if self.lists == 1 else real


def test_an_expired_watch_lists_again(kube_cluster, objects, kube_namespace, settings, engine):
    with kube_cluster.api_client() as api:
        running = Running(ExpiringWatcher(api, IndexResolvers(settings, engine), kube_namespace)).start()
        try:
            name = create_request(objects, kube_namespace, {"name": "yq", "version": "0.4"})
            assert succeeded(wait_answered(objects, kube_namespace, name))["status"] == "True"
            assert isinstance(running.watcher, ExpiringWatcher) and running.watcher.lists >= 2
        finally:
            running.stop()
    assert running.error is None


def test_reconnects_after_the_api_server_went_away(objects, settings, engine):
    base = Path(tempfile.mkdtemp(prefix="taskhub-kube-outage-"))
    cluster = KubeCluster(base)
    cluster.start()
    try:
        namespace = cluster.create_namespace()
        with cluster.api_client() as api:
            own = client.CustomObjectsApi(api)
            running = Running(ResolutionRequestWatcher(api, IndexResolvers(settings, engine), namespace)).start()
            try:
                cluster.stop_apiserver()
                deadline = time.monotonic() + 20
                while not running.retries and time.monotonic() < deadline:
                    time.sleep(0.05)
                assert running.retries and "retrying in" in running.retries[0], running.retries
                cluster.start_apiserver()
                name = create_request(own, namespace, {"name": "yq", "version": "0.4"})
                assert succeeded(wait_answered(own, namespace, name, timeout=40))["status"] == "True"
            finally:
                running.stop()
        assert running.error is None
    finally:
        cluster.stop()
        shutil.rmtree(base, ignore_errors=True)


# -- the resolving part alone ---------------------------------------------------------------------------------


class ScriptedResolvers:
    def __init__(self, outcome: Resolved | Exception) -> None:
        self.outcome, self.calls = outcome, list[tuple[str, Any]]()

    def resolve(self, resolver: str, params: Any) -> Resolved:
        self.calls.append((resolver, params))
        if isinstance(self.outcome, Exception):
            raise self.outcome
        return self.outcome


def request(params: list[dict[str, Any]]) -> dict[str, Any]:
    return {"metadata": {"namespace": "ns", "name": "taskhub-1"}, "spec": {"params": params}}


def test_params_choose_the_resolver_and_errors_become_tekton_messages():
    resolved = Resolved("hub", "task", "t", b"\x00bytes", "https://hub/x", "ab" * 32, "1.0")
    fake = ScriptedResolvers(resolved)
    answer = answer_request(fake, request([{"name": "bundle", "value": "r/x:1"}, {"name": "name", "value": "t"}]))
    assert fake.calls[0][0] == "bundles" and answer.succeeded
    status = answer.status(datetime_at_noon())
    assert base64.b64decode(status["data"]) == b"\x00bytes" and status["annotations"] is None
    assert status["conditions"] == [
        {"type": "Succeeded", "status": "True", "lastTransitionTime": "2026-01-02T12:00:00Z"}
    ]
    answer_request(fake, request([{"name": "name", "value": "t"}]))
    assert fake.calls[1][0] == "hub"

    for error, message in [
        (NotFound("no version found for constraint 9"),
         'error getting "Hub" "ns/taskhub-1": no version found for constraint 9'),
        (InvalidRequest("type param must be artifact or tekton", reason="invalid-params"),
         'invalid resource request "ns/taskhub-1": failed to validate params: type param must be artifact or tekton'),
        (InvalidRequest("malformed constraint: '>>5'", reason="invalid-version"),
         "error getting \"Hub\" \"ns/taskhub-1\": malformed constraint: '>>5'"),
        (RuntimeError("boom"), 'error getting "Hub" "ns/taskhub-1": RuntimeError: boom'),
    ]:  # fmt: skip
        failed = answer_request(ScriptedResolvers(error), request([{"name": "name", "value": "t"}]))
        assert failed.message == message
        (condition,) = failed.status(datetime_at_noon())["conditions"]
        assert condition["reason"] == "ResolutionFailed" and condition["message"] == message


def datetime_at_noon() -> datetime:
    return datetime(2026, 1, 2, 12, 0, tzinfo=UTC)


# -- the command ----------------------------------------------------------------------------------------------


def cli_env(settings: Settings) -> dict[str, str]:
    return {"TASKHUB_DATA_DIR": str(settings.data_dir), "TASKHUB_DATABASE_URL": settings.database_url,
            "TASKHUB_RESOLVE_REGISTRIES": "*"}  # fmt: skip


def test_cli_unreachable_api_server_is_a_one_line_error(kube_cluster, settings, tmp_path):
    kubeconfig = kube_cluster.write_kubeconfig(tmp_path / "kubeconfig")
    with closed_port() as port:
        kubeconfig.write_text(kubeconfig.read_text().replace(kube_cluster.url, f"https://127.0.0.1:{port}"))
        result = CliRunner().invoke(main, ["resolver", "serve", "-k", str(kubeconfig)], env=cli_env(settings))
    assert result.exit_code == 1
    assert result.output.strip().splitlines()[-1] == (
        f"Error: cannot reach the Kubernetes API server at https://127.0.0.1:{port}: connection refused"
    )


def test_cli_user_who_may_not_patch_status_gets_a_clear_error(kube_viewer_kubeconfig, kube_namespace, settings):
    result = CliRunner().invoke(main, ["resolver", "serve", "-k", str(kube_viewer_kubeconfig)], env=cli_env(settings))
    assert result.exit_code == 1
    assert result.output.strip() == (
        f"Error: not allowed to patch resolutionrequests/status in {kube_namespace} namespace: the resolver's "
        "account needs get, list, watch on resolutionrequests.resolution.tekton.dev and patch on "
        "resolutionrequests/status"
    )


def test_cli_serves_until_interrupted_and_sums_up(kube_cluster, objects, kube_namespace, settings):
    probes = f"127.0.0.1:{free_port()}"
    command = [str(Path(sys.executable).parent / "taskhub"), "resolver", "serve", "-k", str(kube_cluster.kubeconfig),
               "-n", kube_namespace, "--metrics-address", probes]  # fmt: skip
    env = {**os.environ, **cli_env(settings)}
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                               cwd=Path(__file__).resolve().parents[2])  # fmt: skip
    try:
        name = create_request(objects, kube_namespace, {"name": "git-clone", "version": "0.9"})
        bad = create_request(objects, kube_namespace, {"name": "nope", "version": "1"})
        answered = wait_answered(objects, kube_namespace, name, timeout=60)
        wait_answered(objects, kube_namespace, bad, timeout=20)
        with urllib.request.urlopen(f"http://{probes}/livez", timeout=10) as live:  # the kubelet's probe
            assert live.status == 200
        with urllib.request.urlopen(f"http://{probes}/metrics", timeout=10) as scraped:
            assert "# TYPE taskhub_jobs gauge" in scraped.read().decode()
    finally:
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=30)
    assert process.returncode == 0, err
    digest = answered["status"]["refSource"]["digest"]["sha256"]
    assert sorted(out.splitlines()) == sorted([
        f"resolved {kube_namespace}/{name}: hub task git-clone 0.9 from "
        f"{HUB}/v1/resource/tekton/task/git-clone/0.9/yaml sha256:{digest}",
        f"{kube_namespace}/{bad}: failed: error getting \"Hub\" \"{kube_namespace}/{bad}\": requested resource "
        f"'{HUB}/v1/resource/tekton/task/nope' not found on hub",
    ])  # fmt: skip
    assert f"answering resolution.tekton.dev/type=taskhub requests in {kube_namespace} namespace" in err
    assert "1 resolved, 1 failed, 2 status writes" in err.splitlines()[-1]


@contextmanager
def closed_port() -> Iterator[int]:
    """A loopback port nothing listens on, for as long as the block runs."""
    with socket.socket() as bound:
        bound.bind(("127.0.0.1", 0))  # bound, never listening: connections are refused
        yield int(bound.getsockname()[1])


class UncheckedWatcher(ResolutionRequestWatcher):
    """Skips the start-up access check, to see what a 403 on the patch itself does."""

    def check_access(self) -> None:
        pass


def test_a_forbidden_status_patch_stops_the_watcher_with_the_reason(kube_cluster, objects, kube_namespace, settings,
                                                                    engine):  # fmt: skip
    name = create_request(objects, kube_namespace, {"name": "yq", "version": "0.4"})
    with kube_cluster.api_client(VIEWER_TOKEN) as api:
        watcher = UncheckedWatcher(api, IndexResolvers(settings, engine), kube_namespace)
        with pytest.raises(ClusterError) as failed:
            watcher.run()
    assert str(failed.value).startswith(
        f"not allowed to patch ResolutionRequest {name} status in {kube_namespace} namespace (403 Forbidden): "
        f'resolutionrequests.resolution.tekton.dev "{name}" is forbidden: User "viewer" cannot patch resource '
        '"resolutionrequests/status"'
    )
    assert is_pending(get_request(objects, kube_namespace, name)) and watcher.counts.writes == 0
