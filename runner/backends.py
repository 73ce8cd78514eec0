"""Where a pinned run runs: the embedded executor on this host, or real PipelineRun and TaskRun objects on a cluster
with Tekton Pipelines. Both take the same call and give back the run as it ended, with its child TaskRuns."""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from catalog.errors import BackendUnavailable, InvalidRequest, TaskhubError
from runner.local import LocalExecutor, SandboxUnavailable
from runner.local.images import parse_image_map
from runner.local.podman_pod import ContainerMode, Credentials
from runner.local.sandbox import unavailable_reason as sandbox_unavailable_reason
from runner.local_store import InstalledStore, NamespaceObjects
from runner.objects import ObjectStore
from runner.pinning import InstalledObjects, LockEntry, step_action_resolver
from runner.podman import Podman, PodmanUnavailable, detect_podman

# (task_run, container, text): a line of a step's output; container is "step-<name>".
LogSink = Callable[[str, str, str], None]
Progress = Callable[[list[dict[str, Any]]], None]
# The run as its backend created it: the name it was given (generateName resolved), its namespace and uid.
Created = Callable[[dict[str, Any]], None]


@dataclass
class BackendRun:
    """What a backend left: the run as it ended, its child TaskRuns, and what the caller should be told."""

    object: dict[str, Any]
    children: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


class RunBackend(Protocol):
    """Where a pinned run runs.

    `run` runs `pinned` (a self-contained tekton.dev/v1 run; `lock` holds the content of its StepAction refs) to
    its end and returns it with Tekton's status. Each line a step prints goes to `log`; `on_event` hears the run's
    and its TaskRuns' progress as a short line, `progress` the child TaskRuns as they stand (running ones with an
    Unknown condition) whenever one starts or ends, `on_created` the run as the backend created it (a cluster's
    answer to the create: name, namespace, uid); once `cancel` is set the backend cancels the run and returns it as
    it ended. Runs that cannot be started raise a TaskhubError (or InvalidRunObject) saying why.

    `namespace_for` is the namespace a run goes to, chosen as kubectl chooses it (see `run_namespace`), so that it
    is recorded from the start; `installed_objects` is where the plain-name references of a run in a namespace are
    read: the local store, or the cluster the run is created on.
    """

    name: str

    def unavailable_reason(self) -> str | None:
        """None if runs can go to this backend from here, else why not, in one line."""
        ...

    def namespace_for(self, obj: dict[str, Any]) -> str: ...

    def installed_objects(self, namespace: str) -> InstalledObjects: ...

    def run(
        self,
        pinned: dict[str, Any],
        lock: list[LockEntry],
        *,
        log: LogSink,
        cancel: threading.Event,
        on_event: Callable[[str], None] | None = None,
        progress: Progress | None = None,
        on_created: Created | None = None,
    ) -> BackendRun: ...


def run_namespace(obj: dict[str, Any], chosen: str | None, fallback: Callable[[], str]) -> str:
    """The namespace of a run as kubectl picks it: the one chosen (-n, TASKHUB_RUN_NAMESPACE), else the run's own
    metadata.namespace, else `fallback()` (the kubeconfig context's, or "default"). A run naming another namespace
    than the one chosen is refused, as kubectl refuses it, rather than created elsewhere than it says."""
    own = (obj.get("metadata") or {}).get("namespace")
    if chosen and own and own != chosen:
        raise InvalidRequest(
            f'the namespace from the provided object "{own}" does not match the namespace "{chosen}" runs go to: '
            f"remove metadata.namespace or choose {own}",
            reason="invalid-run",
        )
    return str(chosen or own or fallback())


def local_containers(
    choice: str, config_dir: Path, image_map: str, credentials: Credentials, insecure: frozenset[str]
) -> tuple[ContainerMode | None, str]:
    """How the local backend runs containers, as `choice` (TASKHUB_LOCAL_CONTAINERS) asks: "host" (None),
    "podman" (BackendUnavailable where podman cannot start a container) or "auto" (podman where it can, else
    None); and one line saying which and what podman needs here, or why not ("" when host processes were asked
    for)."""
    try:
        mapping = parse_image_map(image_map)
    except ValueError as exc:
        raise InvalidRequest(f"setting TASKHUB_IMAGE_MAP={image_map!r}: {exc}") from None
    if choice == "host":
        return None, ""
    try:
        podman = _detected_podman(config_dir)
    except PodmanUnavailable as exc:
        if choice == "podman":
            raise BackendUnavailable(f"local containers (TASKHUB_LOCAL_CONTAINERS=podman): {exc}") from None
        return None, f"local steps run as sandboxed host processes: {exc}"
    return ContainerMode(podman, mapping, credentials, insecure), f"local steps run in containers: {podman.describe()}"


_detected: dict[Path, Podman | PodmanUnavailable] = {}


def _detected_podman(config_dir: Path) -> Podman:
    """detect_podman once per process and directory (it starts a container); a failure is remembered too."""
    if config_dir not in _detected:
        try:
            _detected[config_dir] = detect_podman(config_dir)
        except PodmanUnavailable as exc:
            _detected[config_dir] = exc
    found = _detected[config_dir]
    if isinstance(found, PodmanUnavailable):
        raise found
    return found


class LocalBackend:
    """The embedded executor: steps run as sandboxed processes on this host, or with `containers` in their images
    with podman, in a directory under `work_root`; they never see the `hidden` paths (the hub's data dir). A run
    reads the objects of its namespace in the hub's object store: Tasks, Pipelines and StepActions it names,
    ConfigMaps and Secrets it mounts, and the PersistentVolumeClaims it binds, each a directory under
    `work_root/claims` that outlives the runs."""

    name = "local"

    def __init__(
        self,
        work_root: Path,
        objects: ObjectStore,
        namespace: str | None = None,
        hidden: tuple[Path, ...] = (),
        containers: Callable[[], ContainerMode | None] = lambda: None,
    ) -> None:
        """`containers` gives the container mode (None: host processes) when a run first needs it, as
        local_containers chooses it."""
        self.work_root, self.objects, self.chosen_namespace, self.hidden = Path(work_root), objects, namespace, hidden
        self._containers = containers

    @functools.cached_property
    def containers(self) -> ContainerMode | None:
        """How this backend runs containers: with podman, or (None) as sandboxed host processes."""
        return self._containers()

    def unavailable_reason(self) -> str | None:
        try:
            if self.containers is not None:
                return None
        except BackendUnavailable as exc:
            return str(exc)
        reason = sandbox_unavailable_reason()
        return None if reason is None else f"local runs cannot be isolated on this host: {reason}"

    def namespace_for(self, obj: dict[str, Any]) -> str:
        return run_namespace(obj, self.chosen_namespace, lambda: "default")

    def installed_objects(self, namespace: str) -> InstalledStore:
        return InstalledStore(self.objects, namespace)

    def run(
        self,
        pinned: dict[str, Any],
        lock: list[LockEntry],
        *,
        log: LogSink,
        cancel: threading.Event,
        on_event: Callable[[str], None] | None = None,
        progress: Progress | None = None,
        on_created: Created | None = None,
    ) -> BackendRun:
        namespace = self.namespace_for(pinned)
        objects = NamespaceObjects(self.objects, namespace, self.work_root / "claims")
        executor = LocalExecutor(
            self.work_root,
            step_action_resolver(lock, objects.lookup),
            log_sink=log,
            progress=progress,
            namespace=namespace,
            hidden=self.hidden,
            claims=objects.claim,
            containers=self.containers,
        )
        try:
            result = executor.run(pinned, cancel)
        except SandboxUnavailable as exc:
            raise BackendUnavailable(f"local runs cannot be isolated on this host: {exc}") from None
        return BackendRun(result.object, list(result.children))


class KubernetesBackend:
    """Real PipelineRun and TaskRun objects on a cluster with Tekton Pipelines (runner.kube_backend)."""

    name = "kubernetes"

    def __init__(self, namespace: str | None = None, kubeconfig: str | None = None, context: str | None = None) -> None:
        self.namespace, self.kubeconfig, self.context = namespace or None, kubeconfig or None, context or None

    def unavailable_reason(self) -> str | None:
        return None  # the cluster answers for itself when a run is created

    def namespace_for(self, obj: dict[str, Any]) -> str:
        from runner.kube import ClusterError, context_namespace

        try:
            return run_namespace(obj, self.namespace, lambda: context_namespace(self.kubeconfig, self.context))
        except ClusterError as exc:
            raise BackendUnavailable(f"runs cannot go to the cluster: {exc}") from None

    def installed_objects(self, namespace: str) -> InstalledObjects:
        from runner.kube import ClusterObjects

        return ClusterObjects(self.kubeconfig, self.context, namespace)

    def run(
        self,
        pinned: dict[str, Any],
        lock: list[LockEntry],
        *,
        log: LogSink,
        cancel: threading.Event,
        on_event: Callable[[str], None] | None = None,
        progress: Progress | None = None,
        on_created: Created | None = None,
    ) -> BackendRun:
        from runner.kube_backend import RunEvent, run_on_kubernetes
        from runner.kube_logs import LogLine

        seen_events: list[RunEvent] = []

        def event(seen: RunEvent) -> None:
            if on_event is not None:
                on_event(f"{seen.kind.lower()}/{seen.name}: {seen.reason or seen.status}")
            if progress is not None and seen.kind == "TaskRun":
                seen_events.append(seen)
                progress(_children_of_events(seen_events))

        def line(seen: LogLine) -> None:
            log(seen.task_run, f"step-{seen.step}", seen.text)

        result = run_on_kubernetes(
            pinned, namespace=self.namespace_for(pinned), kubeconfig=self.kubeconfig, context=self.context,
            on_event=event, on_log=line, on_created=on_created, cancel=cancel,
        )  # fmt: skip
        children, warnings = [], list(result.warnings)
        if result.object.get("kind") == "PipelineRun":
            try:
                children = self._task_runs(result.object)
            except TaskhubError as exc:
                warnings.append(f"could not read the TaskRuns of {result.name}: {exc}")
                children = _children_of_events(result.events)
        return BackendRun(result.object, children, warnings)

    def _task_runs(self, run: dict[str, Any]) -> list[dict[str, Any]]:
        """The PipelineRun's TaskRuns as the cluster holds them now (one list call), oldest first."""
        from kubernetes import client

        from runner.kube import GROUP, Cluster

        meta = run["metadata"]
        cluster = Cluster.from_kubeconfig(self.kubeconfig, self.context, meta.get("namespace") or self.namespace)
        try:
            listing: Any = cluster.call(
                f"list the TaskRuns of PipelineRun {meta['name']}",
                client.CustomObjectsApi(cluster.api).list_namespaced_custom_object,
                GROUP, "v1", cluster.namespace, "taskruns", label_selector=f"tekton.dev/pipelineRun={meta['name']}",
            )  # fmt: skip
        finally:
            cluster.close()
        items = [item for item in (listing or {}).get("items") or [] if isinstance(item, dict)]
        return sorted(items, key=lambda item: str(item["metadata"].get("creationTimestamp") or ""))


def _children_of_events(events: list[Any]) -> list[dict[str, Any]]:
    """Child TaskRuns as far as the watch saw them: name and last condition, when they cannot be read again."""
    last: dict[str, Any] = {}
    for event in events:
        if event.kind == "TaskRun":
            last[event.name] = event
    return [
        {"apiVersion": "tekton.dev/v1", "kind": "TaskRun", "metadata": {"name": name},
         "status": {"conditions": [{"type": "Succeeded", "status": e.status, "reason": e.reason,
                                    "message": e.message}]}}
        for name, e in last.items()
    ]  # fmt: skip


def backend_named(
    name: str,
    data_dir: Path,
    namespace: str | None,
    *,
    objects: ObjectStore,
    kubeconfig: str | None = None,
    context: str | None = None,
    containers: Callable[[], ContainerMode | None] = lambda: None,
) -> RunBackend:
    """The backend called `name`, "local" or "kubernetes". `namespace` is the namespace chosen for runs (-n); None:
    each run's own metadata.namespace, else the kubeconfig context's on a cluster and "default" locally, whose
    objects are kept in `objects`; local containers run as `containers` says (local_containers)."""
    if name == "kubernetes":
        return KubernetesBackend(namespace, kubeconfig, context)
    return LocalBackend(data_dir / "local-runs", objects, namespace, hidden=(data_dir,), containers=containers)
