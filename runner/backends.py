"""Where a pinned run runs: the embedded executor on this host, or real PipelineRun and TaskRun objects on a cluster
with Tekton Pipelines. Both take the same call and give back the run as it ended, with its child TaskRuns."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from catalog.errors import BackendUnavailable, TaskhubError
from runner.local import LocalExecutor, SandboxUnavailable
from runner.local.sandbox import unavailable_reason as sandbox_unavailable_reason
from runner.local_store import NamespaceObjects
from runner.objects import ObjectStore
from runner.pinning import LockEntry, step_action_resolver

# (task_run, container, text): a line of a step's output; container is "step-<name>".
LogSink = Callable[[str, str, str], None]
Progress = Callable[[list[dict[str, Any]]], None]


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
    Unknown condition) whenever one starts or ends; once `cancel` is set the backend cancels the run and returns it as
    it ended. Runs that cannot be started raise a TaskhubError (or InvalidRunObject) saying why.
    """

    name: str

    def unavailable_reason(self) -> str | None:
        """None if runs can go to this backend from here, else why not, in one line."""
        ...

    def run(
        self,
        pinned: dict[str, Any],
        lock: list[LockEntry],
        *,
        log: LogSink,
        cancel: threading.Event,
        on_event: Callable[[str], None] | None = None,
        progress: Progress | None = None,
    ) -> BackendRun: ...


class LocalBackend:
    """The embedded executor: steps run as sandboxed processes on this host, in a directory under `work_root`;
    they never see the `hidden` paths (the hub's data dir). A run reads the objects of its namespace in the
    hub's object store: Tasks, Pipelines and StepActions it names, ConfigMaps and Secrets it mounts, and the
    PersistentVolumeClaims it binds, each a directory under `work_root/claims` that outlives the runs."""

    name = "local"

    def __init__(
        self, work_root: Path, objects: ObjectStore, namespace: str = "default", hidden: tuple[Path, ...] = ()
    ) -> None:
        self.work_root, self.objects, self.namespace, self.hidden = Path(work_root), objects, namespace, hidden

    def unavailable_reason(self) -> str | None:
        reason = sandbox_unavailable_reason()
        return None if reason is None else f"local runs cannot be isolated on this host: {reason}"

    def run(
        self,
        pinned: dict[str, Any],
        lock: list[LockEntry],
        *,
        log: LogSink,
        cancel: threading.Event,
        on_event: Callable[[str], None] | None = None,
        progress: Progress | None = None,
    ) -> BackendRun:
        namespace = str((pinned.get("metadata") or {}).get("namespace") or self.namespace)
        objects = NamespaceObjects(self.objects, namespace, self.work_root / "claims")
        executor = LocalExecutor(
            self.work_root,
            step_action_resolver(lock, objects.lookup),
            log_sink=log,
            progress=progress,
            namespace=namespace,
            hidden=self.hidden,
            claims=objects.claim,
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

    def run(
        self,
        pinned: dict[str, Any],
        lock: list[LockEntry],
        *,
        log: LogSink,
        cancel: threading.Event,
        on_event: Callable[[str], None] | None = None,
        progress: Progress | None = None,
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
            pinned, namespace=self.namespace, kubeconfig=self.kubeconfig, context=self.context,
            on_event=event, on_log=line, cancel=cancel,
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
) -> RunBackend:
    """The backend called `name`, "local" or "kubernetes". `namespace` is, on a cluster, where runs are created
    (None: the kubeconfig context's) and, locally, that of runs naming none (None: default), whose objects are
    kept in `objects`."""
    if name == "kubernetes":
        return KubernetesBackend(namespace, kubeconfig, context)
    return LocalBackend(data_dir / "local-runs", objects, namespace or "default", hidden=(data_dir,))
