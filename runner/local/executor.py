"""The embedded local executor: runs a TaskRun or PipelineRun on this host and returns it with Tekton's status."""

from __future__ import annotations

import contextlib
import copy
import re
import secrets
import string
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from runner.local.pipelinerun import cancel_message, run_pipelinerun
from runner.local.pod import LogSink, Services, StepLog
from runner.local.podman_pod import ContainerMode
from runner.local.process import Interrupt
from runner.local.runenv import ClaimSource, ProgressSink, Resolver, RunEnv
from runner.local.sandbox import Sandbox, SandboxUnavailable, unavailable_reason
from runner.local.status import TR_CANCELLED, condition_of
from runner.local.taskrun import run_taskrun

_NAME_CHARS = string.ascii_lowercase + string.digits
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$")
_CANCEL_POLL = 0.05  # seconds between looks at the caller's cancel event


class InvalidRunObject(ValueError):
    """The object given to `LocalExecutor.run` is not a runnable tekton.dev/v1 TaskRun or PipelineRun."""


@dataclass
class LocalRun:
    """What a run left: the run object with its status, its child runs, its step logs and its directory."""

    object: dict[str, Any]
    children: list[dict[str, Any]] = field(default_factory=list)
    logs: list[StepLog] = field(default_factory=list)
    directory: Path = Path()

    @property
    def condition(self) -> dict[str, Any]:
        """The `Succeeded` condition of the run."""
        return condition_of(self.object)

    @property
    def succeeded(self) -> bool:
        """True when the run ended `Succeeded=True` (reason Succeeded or Completed)."""
        return self.condition.get("status") == "True"


class LocalExecutor:
    """Runs Tekton runs with steps as sandboxed host processes (runner/local/sandbox.py; `image` is recorded, never
    pulled or used) or, given `containers`, as podman containers of their images (runner/local/podman_pod.py).
    Steps never see `work_root` (but their own run's directory and claims) nor any `hidden` path."""

    def __init__(
        self,
        work_root: Path,
        resolve: Resolver | None = None,
        *,
        log_sink: LogSink | None = None,
        progress: ProgressSink | None = None,
        namespace: str = "default",
        default_timeout: float | None = 3600.0,
        max_result_size: int = 4096,
        hidden: tuple[Path, ...] = (),
        claims: ClaimSource | None = None,
        containers: ContainerMode | None = None,
    ) -> None:
        """`claims` gives the directory of a PersistentVolumeClaim by name (ResolutionError when there is none),
        inside `work_root/claims`; without it every claim name is a directory there, made when first bound."""
        self.work_root = Path(work_root)
        self.claims = claims
        self.hidden = (self.work_root, *hidden)
        self.resolve = resolve
        self.log_sink = log_sink
        self.progress = progress
        self.namespace = namespace
        self.default_timeout = default_timeout
        self.max_result_size = max_result_size
        self.containers = containers

    def run(self, obj: dict[str, Any], cancel: threading.Event | None = None) -> LocalRun:
        """Runs a TaskRun or PipelineRun to its end (or until `cancel` is set) and returns what it left;
        SandboxUnavailable if this host cannot sandbox steps (host processes only)."""
        run_obj = self._checked(obj)
        containers = self.containers.for_run() if self.containers is not None else None
        reason = unavailable_reason() if containers is None else None
        if reason is not None:
            raise SandboxUnavailable(reason)
        name = run_obj["metadata"]["name"]
        runs = self.work_root / "runs"
        runs.mkdir(parents=True, exist_ok=True)
        directory = Path(tempfile.mkdtemp(prefix=f"{name}.", dir=runs))
        sandbox = Sandbox(self.hidden, (directory, self.work_root / "claims"))
        env = RunEnv(
            root=directory,
            services=Services(
                None,
                lambda claim: claim_dir(claim),
                self.log_sink,
                self.max_result_size,
                sandbox,
                containers,
                directory.name,
            ),
            resolver=self.resolve,
            namespace=self.namespace,
            default_timeout=self.default_timeout,
            claims_root=self.work_root / "claims",
            progress=self.progress,
            claim_source=self.claims,
        )

        def claim_dir(claim: str) -> Path:
            return env.claim_dir(claim)

        env.services.lookup = env.lookup
        interrupt = Interrupt()
        done = threading.Event()
        kind = run_obj["kind"]
        if cancel is not None:
            message = cancel_message(name) if kind == "PipelineRun" else f'TaskRun "{name}" was cancelled.'
            reason = "Cancelled" if kind == "PipelineRun" else TR_CANCELLED
            watcher = threading.Thread(target=_watch, args=(cancel, done, interrupt, reason, message), daemon=True)
            watcher.start()
        reaping = containers.reaping(directory.name) if containers is not None else contextlib.nullcontext()
        try:
            with reaping:
                if kind == "TaskRun":
                    result = run_taskrun(run_obj, env, interrupt)
                else:
                    result = run_pipelinerun(run_obj, env, interrupt)
        finally:
            done.set()
        return LocalRun(result, list(env.children), list(env.services.logs), directory)

    def _checked(self, obj: Any) -> dict[str, Any]:
        if not isinstance(obj, dict):
            raise InvalidRunObject("a run must be a mapping (one YAML document)")
        kind, api = obj.get("kind"), obj.get("apiVersion")
        if kind not in ("TaskRun", "PipelineRun"):
            raise InvalidRunObject(f"cannot run a {kind or 'document without kind'}: only TaskRun and PipelineRun run")
        if api != "tekton.dev/v1":
            raise InvalidRunObject(f"{kind} has apiVersion {api!r}: the local executor runs tekton.dev/v1 objects")
        if not isinstance(obj.get("spec"), dict):
            raise InvalidRunObject(f"{kind} has no spec")
        run_obj = copy.deepcopy(obj)
        meta = run_obj.setdefault("metadata", {})
        if not isinstance(meta, dict):
            raise InvalidRunObject(f"{kind} metadata must be a mapping")
        if not meta.get("name"):
            prefix = meta.get("generateName")
            if not prefix:
                raise InvalidRunObject(f"{kind} needs metadata.name or metadata.generateName")
            meta["name"] = f"{prefix}{''.join(secrets.choice(_NAME_CHARS) for _ in range(5))}"
        if not isinstance(meta["name"], str) or not _DNS_SUBDOMAIN.match(meta["name"]):
            raise InvalidRunObject(f"{kind} name {meta['name']!r} is not a valid Kubernetes name")
        meta["namespace"] = self.namespace if not meta.get("namespace") else meta["namespace"]
        return run_obj


def _watch(cancel: threading.Event, done: threading.Event, interrupt: Interrupt, reason: str, message: str) -> None:
    # The caller's Event cannot be waited on together with the run's end, so look at it often.
    while not done.is_set():
        if cancel.wait(_CANCEL_POLL):
            interrupt.trigger(reason, message)
            return
