"""One attempt of a TaskRun, as its pod would run it: the /tekton layout, volumes, and the steps in order."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from runner.local.celwhen import CELError
from runner.local.containers import prepare_launch
from runner.local.durations import parse_duration
from runner.local.errors import RunFailure
from runner.local.hostpaths import Mount
from runner.local.podman_pod import (
    TR_IMAGE_PULL_FAILED,
    ContainerMode,
    ImageUnavailable,
    PodNetwork,
    link_step_dirs,
    prepare_container,
)
from runner.local.podmounts import PodMounts, WorkspaceMount, isolated_workspaces
from runner.local.process import BackgroundProcess, Interrupt, Launch, run_process
from runner.local.results import read_result_files, status_results, typed_results
from runner.local.sandbox import Sandbox, shared_dir
from runner.local.sidecars import SidecarGroup, sidecar_name
from runner.local.status import (
    STEP_COMPLETED,
    STEP_CONTINUED,
    STEP_ERROR,
    STEP_SKIPPED,
    STEP_TIMEOUT,
    TR_SIDECAR_FAILED,
    TR_STEP_FAILED,
    timestamp,
)
from runner.local.steps import (
    apply_step_action,
    resolve_when,
    step_name,
    when_passes,
)
from runner.local.substitution import ParamValue, Replacements, add_value, substitute, substitute_param_value
from runner.local.workspaces import Lookup, VolumeMaker

LogSink = Callable[[str, str, str], None]


@dataclass(frozen=True)
class StepLog:
    """Where one step's output was written."""

    taskrun: str
    pod: str
    step: str
    container: str
    path: Path


@dataclass
class Services:
    """What every pod of a run shares: lookups, the claim directories, log destinations, limits."""

    lookup: Lookup | None
    claims: Callable[[str], Path]
    log_sink: LogSink | None
    max_result_size: int
    sandbox: Sandbox
    containers: ContainerMode | None = None  # None: containers are sandboxed host processes
    run_id: str = ""  # unique to the executor's run: its containers are labelled with it
    logs: list[StepLog] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def record_log(self, log: StepLog) -> None:
        """Remembers a step log (pods run in parallel threads)."""
        with self.lock:
            self.logs.append(log)


@dataclass
class PodPlan:
    """Everything one attempt needs, after validation and substitution."""

    taskrun: str
    pod: str
    namespace: str
    steps: list[dict[str, Any]]
    actions: dict[int, dict[str, Any]]
    step_template: dict[str, Any] | None
    results: list[dict[str, Any]]
    workspaces: list[WorkspaceMount]
    volumes: list[dict[str, Any]]
    action_passes: dict[int, list[Replacements]]
    sidecars: list[dict[str, Any]] = field(default_factory=list)
    security_context: Any = None  # the pod's: its TaskRun's podTemplate.securityContext


@dataclass
class PodOutcome:
    """How an attempt ended: step and sidecar states, typed results, and the failure (reason, message) if any."""

    steps: list[dict[str, Any]]
    results: list[dict[str, Any]]
    failure: tuple[str, str] | None
    sidecars: list[dict[str, Any]] = field(default_factory=list)


class Pod:
    """Runs the steps of one attempt inside `pod_dir`, logs into `log_dir`."""

    def __init__(self, plan: PodPlan, pod_dir: Path, log_dir: Path, services: Services, interrupt: Interrupt) -> None:
        self.plan = plan
        self.dir = pod_dir
        self.log_dir = log_dir
        self.services = services
        self.interrupt = interrupt
        self.tekton = pod_dir / "tekton"
        self.volumes = VolumeMaker(pod_dir, services.claims, services.lookup)
        self.step_results: Replacements = Replacements()
        self.task_results: dict[str, str] = {}
        self.states: list[dict[str, Any]] = []
        self.network: PodNetwork | None = None

    def run(self) -> PodOutcome:
        """Lays out the pod, starts its sidecars, runs its steps in order, stops the sidecars, collects results;
        never raises for step failures."""
        failure: tuple[str, str] | None = None
        sidecars = SidecarGroup(self.interrupt)
        mounts: PodMounts | None = None
        try:
            self._lay_out()
            mounts = PodMounts(
                self.dir,
                self.tekton,
                self.volumes,
                self.plan.workspaces,
                self.plan.volumes,
                isolated_workspaces(self.plan.steps, self.plan.sidecars),
            )
            containers = self.services.containers
            if containers is not None:
                link_step_dirs(self.tekton, [step_name(step, i) for i, step in enumerate(self.plan.steps)])
                if self.plan.sidecars:
                    self.network = containers.network(self.plan.pod, self.dir, self.services.run_id)
            for index, spec in enumerate(self.plan.sidecars):
                self._start_sidecar(sidecars, mounts, spec, index)
            sidecars.wait_ready()
            failure = self._run_steps(mounts)
        except RunFailure as exc:
            failure = (exc.reason, exc.message)
        finally:
            sidecar_failure = sidecars.stop()
            if self.network is not None:
                self.network.remove()
        if sidecar_failure is not None and (failure is None or failure[0] == TR_STEP_FAILED):
            failure = sidecar_failure  # a failed sidecar outranks a failed step (status.go getFailureInfo)
        results: list[dict[str, Any]] = []
        if failure is None or failure[0] in (TR_STEP_FAILED, TR_SIDECAR_FAILED):
            try:
                raw = self._task_result_text()
                results = status_results(typed_results(raw, self.plan.results, self.services.max_result_size))
            except RunFailure as exc:
                failure = failure or (exc.reason, exc.message)
        return PodOutcome(self.states, results, failure, sidecars.states())

    def _lay_out(self) -> None:
        # Steps write results, home and /workspace; the rest of /tekton is the executor's (mounted read-only).
        for sub in ("steps", "scripts", "bin", "creds", "downward", "run"):
            (self.tekton / sub).mkdir(parents=True, exist_ok=True)
        for sub in ("results", "home"):
            shared_dir(self.tekton, sub)
        shared_dir(self.dir, "workspace")
        (self.dir / "containers").mkdir(exist_ok=True)
        self.log_dir.mkdir(parents=True, exist_ok=True)

    def _open_step_dir(self, index: int, with_results: bool) -> Path:
        run_dir = self.tekton / "run" / str(index)
        (run_dir / "status").mkdir(parents=True, exist_ok=True)
        if with_results:
            shared_dir(run_dir / "status", "results")
        return run_dir

    def _private(self, container: str) -> Path:
        return self.dir / "containers" / container

    def _launch(
        self,
        spec: dict[str, Any],
        name: str,
        container: str,
        script: str,
        mounts: list[Mount],
        writable: tuple[str, ...] = (),
    ) -> tuple[Launch, Path, Callable[[str], None] | None]:
        """How to start a container's process, the file its output goes to (recorded as its log), and where each
        line of that output goes as well."""
        launch: Launch
        if self.services.containers is None:
            launch = prepare_launch(
                spec,
                script,
                mounts,
                writable,
                self._private(container),
                self.tekton / "scripts",
                self.plan.pod,
                self.plan.namespace,
                self.services.lookup,
                self.services.sandbox,
            )
        else:
            try:
                launch = prepare_container(
                    self.services.containers, spec, name=container, script_name=script, mounts=mounts,
                    writable=writable, tekton=self.tekton, private=self._private(container), pod=self.plan.pod,
                    namespace=self.plan.namespace, lookup=self.services.lookup, network=self.network,
                    run=self.services.run_id, pod_security=self.plan.security_context,
                )  # fmt: skip
            except ImageUnavailable as exc:
                kind = "sidecar" if container.startswith("sidecar-") else "step"
                raise RunFailure(
                    TR_IMAGE_PULL_FAILED,
                    f'the {kind} "{name}" in TaskRun "{self.plan.taskrun}" failed to pull the image '
                    f'"{spec.get("image")}". The pod errored with the message: "{exc}."',
                ) from None
        log_path = self.log_dir / f"{container}.log"
        self.services.record_log(StepLog(self.plan.taskrun, self.plan.pod, name, container, log_path))
        sink = self.services.log_sink
        return launch, log_path, (lambda line: sink(self.plan.taskrun, container, line)) if sink else None

    def _start_sidecar(self, group: SidecarGroup, mounts: PodMounts, spec: dict[str, Any], index: int) -> None:
        name = sidecar_name(spec, index)
        container = f"sidecar-{name}"
        own_mounts = mounts.sidecar_mounts(spec, self._private(container))
        launch, log_path, sink = self._launch(spec, name, container, f"sidecar-script-{index}", own_mounts)
        process = BackgroundProcess(launch, log_path=log_path, sink=sink, not_started=_unknown_entrypoint(spec))
        group.start(name, spec, launch, process)

    def _run_steps(self, mounts: PodMounts) -> tuple[str, str] | None:
        failure: tuple[str, str] | None = None
        for index, raw_step in enumerate(self.plan.steps):
            name = step_name(raw_step, index)
            if failure is not None or self.interrupt.triggered:
                self.states.append(self._not_run(raw_step, index, failure))
                continue
            step = self._prepare(raw_step, index)
            failure = self._run_one(step, index, name, mounts)
        return failure if failure is not None else self._interrupted()

    def _interrupted(self) -> tuple[str, str] | None:
        if self.interrupt.triggered and self.interrupt.reason:
            return (self.interrupt.reason, self.interrupt.message or "")
        return None

    def _not_run(self, step: dict[str, Any], index: int, failure: tuple[str, str] | None) -> dict[str, Any]:
        now = timestamp()
        if self.interrupt.triggered and self.interrupt.reason:
            reason = self.interrupt.reason
            return self._state(step, index, 1, reason, reason, now, now)
        return self._state(step, index, 1, STEP_ERROR, STEP_SKIPPED, now, now)

    def _state(
        self,
        step: dict[str, Any],
        index: int,
        code: int,
        container_reason: str,
        reason: str,
        start: str,
        end: str,
        image_id: str | None = None,  # None: the step did not start, its image is the one it names
    ) -> dict[str, Any]:
        name = step_name(step, index)
        return {
            "name": name,
            "container": f"step-{name}",
            "imageID": str(step.get("image") or "") if image_id is None else image_id,
            "terminated": {"exitCode": code, "reason": container_reason, "startedAt": start, "finishedAt": end},
            "terminationReason": reason,
        }

    def _prepare(self, step: dict[str, Any], index: int) -> dict[str, Any]:
        """The container a step runs: its StepAction applied, step results substituted, stepTemplate merged."""
        action = self.plan.actions.get(index)
        if action is not None:
            passes = self.plan.action_passes.get(index, [])
            step = apply_step_action(step, index, action, self.step_results, self.plan.step_template, passes)
        # Step results reach only env, command and args (and `when`, resolved at run time).
        out = dict(step)
        for key in ("env", "command", "args"):
            if key in out:
                out[key] = substitute(out[key], self.step_results)
        return out

    def _run_one(self, step: dict[str, Any], index: int, name: str, mounts: PodMounts) -> tuple[str, str] | None:
        run_dir = self._open_step_dir(index, bool(step.get("results")))
        status_dir = run_dir / "status"
        when = resolve_when(step.get("when"), self.step_results)
        try:
            skip = bool(when) and not when_passes(when)
        except CELError as exc:
            message = f'"step-{name}" has a when expression that cannot be evaluated: {exc}'
            raise RunFailure(TR_STEP_FAILED, message) from exc
        if skip:
            now = timestamp()
            self._finish_step(run_dir, 0)
            self.states.append(self._state(step, index, 0, STEP_COMPLETED, STEP_SKIPPED, now, now))
            return None
        # Under /tekton a step may write results, home and its own run directory, nothing of other steps.
        writable = ("/tekton/results", "/tekton/home", f"/tekton/run/{index}")
        container = f"step-{name}"
        own_mounts = mounts.step_mounts(self.plan.steps, step)
        launch, log_path, line_sink = self._launch(step, name, container, f"script-{index}", own_mounts, writable)
        if launch.argv is None:
            log_path.write_text(_unknown_entrypoint(step))
            outcome_code, timed_out, start, end = 127, False, timestamp(), timestamp()
        else:
            timeout = parse_duration(str(step["timeout"])) if step.get("timeout") else None
            result = run_process(launch, log_path=log_path, interrupt=self.interrupt, timeout=timeout, sink=line_sink)
            outcome_code, timed_out, start, end = (
                result.exit_code,
                result.timed_out,
                result.started_at,
                result.finished_at,
            )
        self._finish_step(run_dir, outcome_code)
        step_results = self._collect_results(step, name, status_dir)

        def record(code: int, container_reason: str, reason: str) -> None:
            state = self._state(step, index, code, container_reason, reason, start, end, launch.image_id)
            if step_results:
                state["results"] = step_results
            self.states.append(state)

        if self.interrupt.triggered and self.interrupt.reason:
            record(1, self.interrupt.reason, self.interrupt.reason)
            return (self.interrupt.reason, self.interrupt.message or "")
        if timed_out:
            record(outcome_code, STEP_ERROR, STEP_TIMEOUT)
            return (TR_STEP_FAILED, f'"{container}" exited because the step exceeded the specified timeout limit')
        if outcome_code == 0:
            record(0, STEP_COMPLETED, STEP_COMPLETED)
            return None
        if step.get("onError") == "continue":
            record(outcome_code, STEP_COMPLETED, STEP_CONTINUED)
            return None
        record(outcome_code, STEP_ERROR, STEP_ERROR)
        return (TR_STEP_FAILED, f'"{container}" exited with code {outcome_code}: Error')

    def _finish_step(self, run_dir: Path, code: int) -> None:
        (run_dir / "status" / "exitCode").write_text(str(code))  # status/ is the executor's: no step wrote there

    def _collect_results(self, step: dict[str, Any], name: str, status_dir: Path) -> list[dict[str, Any]]:
        # The entrypoint reads result files after every step, failed and continued ones too.
        read_result_files(self.tekton / "results", self.plan.results, self.task_results)
        decls = [d for d in step.get("results") or [] if isinstance(d, dict)]
        if not decls:
            return []
        raw: dict[str, str] = {}
        read_result_files(status_dir / "results", decls, raw)
        values = typed_results(raw, decls, self.services.max_result_size)
        for key, value in values.items():
            add_value(self.step_results, f"steps.{name}.results", key, value)
        return status_results(values)

    def _task_result_text(self) -> dict[str, str]:
        raw = dict(self.task_results)
        for decl in self.plan.results:
            value = decl.get("value")
            if isinstance(value, str) and decl.get("name") not in raw:
                text = substitute(value, self.step_results)
                if "$(" not in text:
                    raw[str(decl["name"])] = text
            elif isinstance(value, (list, dict)) and decl.get("name") not in raw:
                raw[str(decl["name"])] = _as_json(substitute_param_value(value, self.step_results))
        return raw


def _unknown_entrypoint(container: dict[str, Any]) -> str:
    return (
        f"taskhub local executor: the entrypoint of image {container.get('image')!r} is not known; "
        "give this container a command or a script\n"
    )


def _as_json(value: ParamValue) -> str:
    return value if isinstance(value, str) else json.dumps(value)
