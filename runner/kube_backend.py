"""Run a PipelineRun or TaskRun on a cluster with Tekton Pipelines, as `tkn ... --showlog` does: one create call,
then watches (never polling) on the run, its child TaskRuns and their pods, streaming each step container's log.
Cancelling is one merge patch of `spec.status`. Every API write is counted, so a benchmark can hold us to one.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from runner.kube import (
    GROUP,
    Cluster,
    ClusterError,
    api_client_from_kubeconfig,
    api_error_line,
    shut_socket,
    watch_events,
)
from runner.kube_logs import LogLine, step_containers, stream_log

PLURALS = {"PipelineRun": "pipelineruns", "TaskRun": "taskruns"}
# The spec.status that cancels each kind (tektoncd/pipeline: docs/pipelineruns.md, docs/taskruns.md, "Cancelling").
CANCEL_STATUS = {"PipelineRun": "Cancelled", "TaskRun": "TaskRunCancelled"}
# Below runner.kube's 30 s read timeout: an idle watch is ended by the server and resumed, never timed out.
WATCH_SECONDS = 25
# How long logs may keep streaming after the run has finished (the kubelet ends each stream with its container).
LOG_DRAIN_SECONDS = 30
# Pods whose logs are read while the run goes; once it has ended, every pod's are, or why they cannot be.
LOG_PHASES = ("Running", "Succeeded", "Failed")


@dataclass(frozen=True)
class RunEvent:
    """The Succeeded condition of the run or of one of its TaskRuns changed (or the TaskRun appeared)."""

    kind: str
    name: str
    status: str
    reason: str
    message: str = ""


@dataclass
class KubeRunResult:
    """The finished run as the cluster stored it, the events seen and the API writes made (create + cancel)."""

    object: dict[str, Any]
    writes: int
    events: list[RunEvent] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def name(self) -> str:
        return str(self.object["metadata"]["name"])

    @property
    def succeeded(self) -> bool:
        return (succeeded_condition(self.object) or {}).get("status") == "True"

    @property
    def reason(self) -> str:
        return str((succeeded_condition(self.object) or {}).get("reason") or "")


def succeeded_condition(obj: dict[str, Any]) -> dict[str, Any] | None:
    """The `Succeeded` condition of a Tekton run, or None before the controller has set one."""
    for condition in (obj.get("status") or {}).get("conditions") or []:
        if condition.get("type") == "Succeeded":
            return dict(condition)
    return None


def run_on_kubernetes(
    obj: dict[str, Any],
    *,
    namespace: str | None = None,
    kubeconfig: str | Path | None = None,
    context: str | None = None,
    on_event: Callable[[RunEvent], None] | None = None,
    on_log: Callable[[LogLine], None] | None = None,
    on_created: Callable[[dict[str, Any]], None] | None = None,
    cancel: threading.Event | None = None,
) -> KubeRunResult:
    """Create `obj` (a tekton.dev/v1 PipelineRun or TaskRun), follow it to its end and return it; see the module.
    `on_created` gets the API server's answer to the create (the name it gave, the namespace, the uid)."""
    kind = str(obj.get("kind"))
    if kind not in PLURALS:
        raise ClusterError(f"cannot run a {kind} on Kubernetes: only PipelineRun and TaskRun are runs")
    api, context_namespace = api_client_from_kubeconfig(kubeconfig, context)
    cluster = Cluster(api, namespace or str((obj.get("metadata") or {}).get("namespace") or context_namespace))
    try:
        return _RunFollower(cluster, kind, on_event, on_log).run(obj, cancel, on_created)
    finally:
        cluster.close()


def cancel_run(
    name: str,
    *,
    kind: str = "PipelineRun",
    namespace: str | None = None,
    kubeconfig: str | Path | None = None,
    context: str | None = None,
) -> dict[str, Any]:
    """Cancel a PipelineRun (`spec.status: Cancelled`) or TaskRun (`TaskRunCancelled`); returns the patched object."""
    api, context_namespace = api_client_from_kubeconfig(kubeconfig, context)
    cluster = Cluster(api, namespace or context_namespace)
    try:
        return _patch_cancel(cluster, kind, name)
    finally:
        cluster.close()


def _patch_cancel(cluster: Cluster, kind: str, name: str) -> dict[str, Any]:
    patched = cluster.call(
        f"cancel {kind} {name} in {cluster.namespace} namespace",
        client.CustomObjectsApi(cluster.api).patch_namespaced_custom_object,
        GROUP,
        "v1",
        cluster.namespace,
        PLURALS[kind],
        name,
        {"spec": {"status": CANCEL_STATUS[kind]}},
    )
    return dict(patched) if isinstance(patched, dict) else {}


class _RunFollower:
    """Follows one run: the run's watch on the calling thread, children, pods and logs on helper threads."""

    def __init__(
        self,
        cluster: Cluster,
        kind: str,
        on_event: Callable[[RunEvent], None] | None,
        on_log: Callable[[LogLine], None] | None,
    ) -> None:
        self.cluster, self.kind = cluster, kind
        self.on_event, self.on_log = on_event, on_log
        self.objects = client.CustomObjectsApi(cluster.api)
        self.core = client.CoreV1Api(cluster.api)
        self.writes = 0
        self.events: list[RunEvent] = []
        self.warnings: list[str] = []
        self._lock = threading.Lock()
        self._finished = threading.Event()  # the run has its final condition: stop watching
        self._open: set[Any] = set()  # responses being read, so stop() can end them
        self._conditions: dict[tuple[str, str], tuple[str, str]] = {}
        self._streamed: set[tuple[str, str]] = set()  # (pod, container) whose log is being read
        self._log_threads: list[threading.Thread] = []

    # -- the run ------------------------------------------------------------------------------------------

    def run(
        self,
        obj: dict[str, Any],
        cancel: threading.Event | None,
        on_created: Callable[[dict[str, Any]], None] | None = None,
    ) -> KubeRunResult:
        created = _as_dict(
            self.cluster.call(
                f"create {self.kind} in {self.cluster.namespace} namespace",
                self.objects.create_namespaced_custom_object,
                GROUP,
                "v1",
                self.cluster.namespace,
                PLURALS[self.kind],
                obj,
            )
        )
        self.writes += 1
        if on_created is not None:
            on_created(created)
        name = str(created["metadata"]["name"])
        # Tekton copies the run's labels to its TaskRuns' pods: tekton.dev/pipelineRun or tekton.dev/taskRun.
        selector = f"tekton.dev/{self.kind[0].lower()}{self.kind[1:]}={name}"
        helpers = [self._spawn(self._follow_pods, selector)]
        if self.kind == "PipelineRun":
            helpers.append(self._spawn(self._follow_task_runs, selector))
        if cancel is not None:
            helpers.append(self._spawn(self._cancel_when_set, cancel, name))
        try:
            final = self._follow_run(created)
            self._drain_logs(selector)
        finally:
            self._stop()
        for thread in helpers:
            thread.join(timeout=5)
        return KubeRunResult(final, self.writes, list(self.events), list(self.warnings))

    def _follow_run(self, created: dict[str, Any]) -> dict[str, Any]:
        name = str(created["metadata"]["name"])
        self._saw(self.kind, created)
        if _is_final(created):
            return created
        for kind, obj in self._watch(
            f"{self.kind} {name}",
            self.objects.list_namespaced_custom_object,
            (GROUP, "v1", self.cluster.namespace, PLURALS[self.kind]),
            str(created["metadata"]["resourceVersion"]),
            field_selector=f"metadata.name={name}",
        ):
            if kind == "DELETED":
                raise ClusterError(f"{self.kind} {name} was deleted before it finished")
            self._saw(self.kind, obj)
            if _is_final(obj):
                return obj
        raise ClusterError(f"stopped watching {self.kind} {name} before it finished")

    def _cancel_when_set(self, cancel: threading.Event, name: str) -> None:
        while not self._finished.is_set():
            if cancel.wait(0.1):
                _patch_cancel(self.cluster, self.kind, name)
                self.writes += 1
                return

    # -- children and logs --------------------------------------------------------------------------------

    def _follow_task_runs(self, selector: str) -> None:
        args = (GROUP, "v1", self.cluster.namespace, "taskruns")
        for kind, obj in self._watch("TaskRuns", self.objects.list_namespaced_custom_object, args, None, selector):
            if kind != "DELETED":
                self._saw("TaskRun", obj)

    def _follow_pods(self, selector: str) -> None:
        args = (self.cluster.namespace,)
        for kind, pod in self._watch("pods", self.core.list_namespaced_pod, args, None, selector):
            if kind != "DELETED":
                self._stream_logs_of(pod)

    def _stream_logs_of(self, pod: dict[str, Any], *, ended: bool = False) -> None:
        """Start reading the logs of the pod's step containers not read yet: once it runs or, when the run has
        `ended`, whatever its phase (a pod that never ran then says why it has no logs)."""
        if not ended and (pod.get("status") or {}).get("phase") not in LOG_PHASES:
            return
        pod.setdefault("metadata", {}).setdefault("namespace", self.cluster.namespace)
        for container in step_containers(pod):
            key = (str(pod["metadata"]["name"]), container)
            with self._lock:
                if key in self._streamed:
                    continue
                self._streamed.add(key)
            self._log_threads.append(self._spawn(stream_log, self.core, pod, container, self._log, self._reading))

    def _drain_logs(self, selector: str) -> None:
        """Start the logs the pod watch has not reached yet (a short step can end first, a pod may never have
        run), then let them finish."""
        pods: Any = self.cluster.call(
            "list pods", self.core.list_namespaced_pod, self.cluster.namespace, label_selector=selector,
            _preload_content=False,
        )  # fmt: skip
        for pod in json.loads(pods.data).get("items") or []:
            self._stream_logs_of(pod, ended=True)
        deadline = time.monotonic() + LOG_DRAIN_SECONDS
        for thread in list(self._log_threads):
            thread.join(timeout=max(0.0, deadline - time.monotonic()))
            if thread.is_alive():
                self.warnings.append(f"logs still streaming {LOG_DRAIN_SECONDS} s after the run finished: cut off")
                return

    # -- plumbing -----------------------------------------------------------------------------------------

    def _watch(
        self,
        what: str,
        list_fn: Callable[..., Any],
        args: tuple[str, ...],
        resource_version: str | None,
        label_selector: str | None = None,
        field_selector: str | None = None,
    ) -> Iterator[tuple[str, dict[str, Any]]]:
        """(event type, object) from a list (unless resuming at `resource_version`) and then a resumed watch."""
        selectors = {"label_selector": label_selector, "field_selector": field_selector}
        selectors = {k: v for k, v in selectors.items() if v}
        version = resource_version
        while not self._finished.is_set():
            if version is None:
                listing = self.cluster.call(f"list {what}", list_fn, *args, _preload_content=False, **selectors)
                body = json.loads(listing.data)
                for item in body.get("items") or []:
                    yield "ADDED", item
                version = str(body["metadata"]["resourceVersion"])
            response = self.cluster.call(
                f"watch {what}", list_fn, *args, watch=True, resource_version=version, timeout_seconds=WATCH_SECONDS,
                allow_watch_bookmarks=True, _preload_content=False, **selectors,
            )  # fmt: skip
            with self._reading(response):
                for kind, obj in watch_events(response):
                    if kind == "ERROR":
                        if obj.get("code") != 410:
                            raise ClusterError(f"watching {what} failed: {obj.get('message')}")
                        version = None  # history compacted: list again
                        break
                    version = str(obj["metadata"]["resourceVersion"])
                    if kind != "BOOKMARK":
                        yield kind, obj

    def _saw(self, kind: str, obj: dict[str, Any]) -> None:
        name = str(obj["metadata"]["name"])
        condition = succeeded_condition(obj)
        if condition is None and kind == self.kind:
            return  # the run itself: nothing to say until the controller has looked at it
        state = ("Unknown", "Pending") if condition is None else (condition["status"], condition.get("reason", ""))
        with self._lock:
            if self._conditions.get((kind, name)) == state:
                return
            self._conditions[(kind, name)] = state
            event = RunEvent(kind, name, state[0], state[1], str((condition or {}).get("message") or ""))
            self.events.append(event)
        if self.on_event:
            self.on_event(event)

    def _log(self, line: LogLine) -> None:
        if self.on_log:
            self.on_log(line)

    def _spawn(self, target: Callable[..., None], *args: Any) -> threading.Thread:
        thread = threading.Thread(target=self._guard, args=(target, *args), daemon=True)
        thread.start()
        return thread

    def _guard(self, target: Callable[..., None], *args: Any) -> None:
        """Run a helper; after the end its broken streams are expected, before it they become warnings."""
        try:
            target(*args)
        except Exception as exc:  # a helper thread must not die silently
            if not self._finished.is_set():
                what = api_error_line(exc) if isinstance(exc, ApiException) else " ".join(str(exc).split())
                self.warnings.append(f"{target.__name__.strip('_').replace('_', ' ')}: {what}")

    def _reading(self, response: Any) -> _Reading:
        return _Reading(self, response)

    def _stop(self) -> None:
        self._finished.set()
        with self._lock:
            responses = list(self._open)
        for response in responses:
            _shut(response)


class _Reading:
    """Registers a streaming response while it is read, so that _RunFollower._stop can end the read."""

    def __init__(self, follower: _RunFollower, response: Any) -> None:
        self.follower, self.response = follower, response

    def __enter__(self) -> None:
        with self.follower._lock:
            self.follower._open.add(self.response)
        if self.follower._finished.is_set():
            _shut(self.response)

    def __exit__(self, *exc: object) -> None:
        with self.follower._lock:
            self.follower._open.discard(self.response)
        self.response.release_conn()


def _shut(response: Any) -> None:
    """Wake a thread blocked reading `response` and close it."""
    shut_socket(response)
    response.close()


def _is_final(obj: dict[str, Any]) -> bool:
    return (succeeded_condition(obj) or {}).get("status") in ("True", "False")


def _as_dict(value: object) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ClusterError(f"the Kubernetes API server answered with a {type(value).__name__}, not an object")
    return value
