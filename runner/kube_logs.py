"""A step container's log read through the API server's pods/log, as `kubectl logs -f` reads it, or one line saying
why it cannot be: the API server could not reach the node's kubelet (a 5xx whose message is the dial error), the
pod was never scheduled to a node (the API server answers 204 No Content with no body: kubernetes:
pkg/registry/core/pod/strategy.go LogLocation returns no location for a pod without spec.nodeName), or the
container never started (400 from the kubelet). That line takes the place of the log, in the output and in the
run's record.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from runner.kube import REQUEST_TIMEOUT, api_error_line

# A step may print nothing for long (runner.kube's 30 s read timeout is for requests); the follower ends reads anyway.
LOG_SILENCE_SECONDS = 3600


@dataclass(frozen=True)
class LogLine:
    """One line of a step container's log, without its newline; `unavailable`: the line says why there is none."""

    pod: str
    task_run: str
    step: str
    text: str
    unavailable: bool = False


def step_containers(pod: dict[str, Any]) -> list[str]:
    """The names of the pod's step containers (Tekton names them `step-<step>`), in order."""
    names = [str(c.get("name")) for c in (pod.get("spec") or {}).get("containers") or []]
    return [name for name in names if name.startswith("step-")]


def stream_log(
    core: client.CoreV1Api,
    pod: dict[str, Any],
    container: str,
    on_line: Callable[[LogLine], None],
    reading: Callable[[Any], AbstractContextManager[None]],
) -> None:
    """Follow `container` of `pod` to its end, a LogLine per line; a log that cannot be read is one unavailable
    LogLine. `reading(response)` registers the open response while it is read, so that it can be ended."""
    meta = pod["metadata"]
    name, namespace = str(meta["name"]), str(meta["namespace"])
    task_run = str((meta.get("labels") or {}).get("tekton.dev/taskRun") or "")
    step = container.removeprefix("step-")

    def unavailable(why: str) -> None:
        on_line(LogLine(name, task_run, step, f"[taskhub: logs unavailable: {why}]", unavailable=True))

    try:
        response: Any = core.read_namespaced_pod_log(
            name, namespace, container=container, follow=True, _preload_content=False,
            _request_timeout=(REQUEST_TIMEOUT[0], LOG_SILENCE_SECONDS),
        )  # fmt: skip
    except ApiException as exc:
        unavailable(_failure(exc, str((pod.get("spec") or {}).get("nodeName") or "")))
        return
    with reading(response):
        if response.status == 204:
            unavailable(f"pod {name} was never scheduled to a node")
            return
        pending = b""
        for chunk in response.stream(amt=None, decode_content=False):
            *lines, pending = (pending + chunk).split(b"\n")
            for line in lines:
                on_line(LogLine(name, task_run, step, line.decode(errors="replace")))
        if pending:
            on_line(LogLine(name, task_run, step, pending.decode(errors="replace")))


def _failure(exc: ApiException, node: str) -> str:
    if exc.status is not None and exc.status >= 500:
        where = f"the kubelet of node {node}" if node else "the node's kubelet"
        return f"the API server could not get them from {where}: {api_error_line(exc)}"
    return api_error_line(exc)
