"""One attempt of a TaskRun, as its pod would run it: the /tekton layout, volumes, and the steps in order."""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from runner.local.durations import parse_duration
from runner.local.errors import RunFailure
from runner.local.hostpaths import Mount, PathMap
from runner.local.params import ParamError, given_values, resolve_params
from runner.local.process import Interrupt, run_process
from runner.local.results import read_result_files, status_results, typed_results
from runner.local.status import (
    STEP_COMPLETED,
    STEP_CONTINUED,
    STEP_ERROR,
    STEP_SKIPPED,
    STEP_TIMEOUT,
    TR_STEP_FAILED,
    TR_VALIDATION_FAILED,
    timestamp,
)
from runner.local.stepenv import step_environment
from runner.local.steps import (
    host_argv,
    merge_step_action,
    merge_step_template,
    resolve_when,
    step_name,
    when_passes,
    working_directory,
)
from runner.local.substitution import ParamValue, Replacements, add_value, substitute, substitute_param_value
from runner.local.workspaces import (
    Lookup,
    VolumeMaker,
    join_sub_path,
    make_writable,
)

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
    logs: list[StepLog] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def record_log(self, log: StepLog) -> None:
        """Remembers a step log (pods run in parallel threads)."""
        with self.lock:
            self.logs.append(log)


@dataclass
class WorkspaceMount:
    """A workspace declared by the Task, with its binding (None when an optional one is unbound)."""

    name: str
    mount_path: str
    binding: dict[str, Any] | None
    read_only: bool


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


@dataclass
class PodOutcome:
    """How an attempt ended: step states, typed results, and the failure (reason, message) if any."""

    steps: list[dict[str, Any]]
    results: list[dict[str, Any]]
    failure: tuple[str, str] | None


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

    def run(self) -> PodOutcome:
        """Lays out the pod, runs its steps in order, collects results; never raises for step failures."""
        failure: tuple[str, str] | None = None
        try:
            self._lay_out()
            mounts = self._base_mounts()
            failure = self._run_steps(mounts)
        except RunFailure as exc:
            failure = (exc.reason, exc.message)
        finally:
            make_writable(self.tekton / "run")
            self.volumes.release()
        results: list[dict[str, Any]] = []
        if failure is None or failure[0] == TR_STEP_FAILED:
            try:
                raw = self._task_result_text()
                results = status_results(typed_results(raw, self.plan.results, self.services.max_result_size))
            except RunFailure as exc:
                failure = failure or (exc.reason, exc.message)
        return PodOutcome(self.states, results, failure)

    def _lay_out(self) -> None:
        for sub in ("results", "steps", "scripts", "home", "bin", "creds", "downward", "run"):
            (self.tekton / sub).mkdir(parents=True, exist_ok=True)
        (self.dir / "workspace").mkdir(exist_ok=True)
        (self.dir / "containers").mkdir(exist_ok=True)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        # Steps may not create run directories of others; the executor opens each one as its step starts.
        os.chmod(self.tekton / "run", 0o555)

    def _open_step_dir(self, index: int, with_results: bool) -> Path:
        run_dir = self.tekton / "run" / str(index)
        os.chmod(self.tekton / "run", 0o755)
        try:
            (run_dir / "status").mkdir(parents=True, exist_ok=True)
            if with_results:
                (run_dir / "status" / "results").mkdir(exist_ok=True)
        finally:
            os.chmod(self.tekton / "run", 0o555)
        return run_dir

    def _base_mounts(self) -> list[Mount]:
        mounts = [
            Mount("/tekton", self.tekton, protected=True),
            Mount("/workspace", self.dir / "workspace"),
        ]
        # /tekton/steps/<i> and /tekton/steps/step-<name> are the status directories under /tekton/run/<i>.
        for index, step in enumerate(self.plan.steps):
            status_dir = self.tekton / "run" / str(index) / "status"
            for alias in (str(index), f"step-{step_name(step, index)}"):
                mounts.append(Mount(f"/tekton/steps/{alias}", status_dir, protected=True))
        for ws in self.plan.workspaces:
            if ws.binding is None:
                continue
            base, read_only = self.volumes.make("workspace", ws.name, ws.binding)
            host = join_sub_path(base, ws.binding.get("subPath"))
            mounts.append(Mount(ws.mount_path, host, protected=read_only or ws.read_only))
        return mounts

    def _volume_mounts(self, step: dict[str, Any], made: dict[str, tuple[Path, bool]]) -> list[Mount]:
        declared = {str(v.get("name")): v for v in self.plan.volumes}
        mounts = []
        for vm in step.get("volumeMounts") or []:
            name = str(vm.get("name"))
            if name not in made:
                if name not in declared:
                    raise RunFailure(TR_VALIDATION_FAILED, f'volumeMount "{name}" names no volume of the task')
                made[name] = self.volumes.make("volume", name, declared[name])
            base, read_only = made[name]
            host = join_sub_path(base, vm.get("subPath")) if vm.get("subPath") else base
            mounts.append(Mount(str(vm.get("mountPath")), host, protected=read_only or bool(vm.get("readOnly"))))
        return mounts

    def _run_steps(self, mounts: list[Mount]) -> tuple[str, str] | None:
        made: dict[str, tuple[Path, bool]] = {}
        failure: tuple[str, str] | None = None
        for index, raw_step in enumerate(self.plan.steps):
            name = step_name(raw_step, index)
            if failure is not None or self.interrupt.triggered:
                self.states.append(self._not_run(raw_step, index, failure))
                continue
            step = self._prepare(raw_step, index)
            failure = self._run_one(step, index, name, mounts + self._volume_mounts(step, made))
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
        self, step: dict[str, Any], index: int, code: int, container_reason: str, reason: str, start: str, end: str
    ) -> dict[str, Any]:
        name = step_name(step, index)
        return {
            "name": name,
            "container": f"step-{name}",
            "imageID": str(step.get("image") or ""),
            "terminated": {"exitCode": code, "reason": container_reason, "startedAt": start, "finishedAt": end},
            "terminationReason": reason,
        }

    def _prepare(self, step: dict[str, Any], index: int) -> dict[str, Any]:
        """The container a step runs: its StepAction applied, step results substituted, stepTemplate merged."""
        action = self.plan.actions.get(index)
        if action is not None:
            given = {
                k: substitute_param_value(v, self.step_results) for k, v in given_values(step.get("params")).items()
            }
            try:
                values = resolve_params(action.get("params"), given, propagate=False)
            except ParamError as exc:
                raise RunFailure(
                    TR_VALIDATION_FAILED,
                    f'invalid input params for StepAction of step "{step_name(step, index)}": {exc.message}',
                ) from exc
            reps = Replacements()
            for key, value in values.items():
                add_value(reps, "params", key, value)
            fields = substitute({k: v for k, v in action.items() if k != "params"}, reps)
            for later in self.plan.action_passes.get(index, []):
                fields = substitute(fields, later)
            step = merge_step_template(self.plan.step_template, merge_step_action(step, fields))
        # Step results reach only env, command and args (and `when`, resolved at run time).
        out = dict(step)
        for key in ("env", "command", "args"):
            if key in out:
                out[key] = substitute(out[key], self.step_results)
        return out

    def _run_one(self, step: dict[str, Any], index: int, name: str, mounts: list[Mount]) -> tuple[str, str] | None:
        run_dir = self._open_step_dir(index, bool(step.get("results")))
        status_dir = run_dir / "status"
        when = resolve_when(step.get("when"), self.step_results)
        if when and not when_passes(when):
            now = timestamp()
            self._finish_step(run_dir, 0)
            self.states.append(self._state(step, index, 0, STEP_COMPLETED, STEP_SKIPPED, now, now))
            return None
        # Under /tekton a step may write results, home and its own run directory, nothing of other steps.
        writable = (
            "/tekton/results",
            "/tekton/home",
            "/tekton/scripts",
            f"/tekton/run/{index}",
            f"/tekton/steps/{index}",
            f"/tekton/steps/step-{name}",
        )
        paths = PathMap(mounts, writable)
        container = f"step-{name}"
        private = self.dir / "containers" / container
        private.mkdir(parents=True, exist_ok=True)
        env = step_environment(step, paths, private, self.plan.pod, self.plan.namespace, self.services.lookup)
        argv = host_argv(step, index, paths, self.tekton / "scripts")
        cwd = working_directory(step, paths, private)
        log_path = self.log_dir / f"{container}.log"
        self.services.record_log(StepLog(self.plan.taskrun, self.plan.pod, name, container, log_path))
        if argv is None:
            log_path.write_text(
                f"taskhub local executor: the entrypoint of image {step.get('image')!r} is not known; "
                "give this step a command or a script\n"
            )
            outcome_code, timed_out, start, end = 127, False, timestamp(), timestamp()
        else:
            timeout = parse_duration(str(step["timeout"])) if step.get("timeout") else None
            sink = self.services.log_sink
            line_sink = (lambda line: sink(self.plan.taskrun, container, line)) if sink else None
            result = run_process(
                argv,
                cwd=cwd,
                env=env,
                log_path=log_path,
                interrupt=self.interrupt,
                timeout=timeout,
                sink=line_sink,
                drop_dac=paths.touched_protected,
            )
            outcome_code, timed_out, start, end = (
                result.exit_code,
                result.timed_out,
                result.started_at,
                result.finished_at,
            )
        self._finish_step(run_dir, outcome_code)
        step_results = self._collect_results(step, name, status_dir)

        def record(code: int, container_reason: str, reason: str) -> None:
            state = self._state(step, index, code, container_reason, reason, start, end)
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
        (run_dir / "status" / "exitCode").write_text(str(code))
        _lock_step_dir(run_dir)

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


def _lock_step_dir(run_dir: Path) -> None:
    # Only the running step may write its /tekton/run/<i> (what the entrypoint enforces in a pod).
    dir_mode, file_mode = 0o555, 0o444
    status = run_dir / "status"
    files: list[str] = []
    for directory in (run_dir, status, status / "results"):
        if directory.is_dir():
            os.chmod(directory, dir_mode)
    if (status / "results").is_dir():
        with os.scandir(status / "results") as entries:
            files = [entry.path for entry in entries if entry.is_file(follow_symlinks=False)]
    for path in [*files, str(status / "exitCode")]:
        if os.path.exists(path):
            os.chmod(path, file_mode)


def _as_json(value: ParamValue) -> str:
    return value if isinstance(value, str) else json.dumps(value)
