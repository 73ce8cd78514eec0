"""A PipelineRun from start to end: the DAG scheduled in parallel, when, finally, timeouts, cancel (§3, §5)."""

from __future__ import annotations

import copy
import queue
import threading
import time
import uuid
from typing import Any

from runner.local.celwhen import CELError
from runner.local.durations import format_duration
from runner.local.errors import RunFailure
from runner.local.matrix import empty_matrix
from runner.local.pipelinesetup import (
    PreparedPipeline,
    cel_failure_message,
    pipeline_timeouts,
    prepare_pipeline,
    resolve_pipeline,
    substitute_task,
)
from runner.local.pipelinestate import (
    SUCCEEDED,
    TaskState,
    child_results,
    count,
    final_condition,
    missing_result,
    outcome_of,
    pipeline_results,
    results_replacements,
    skipped_entry,
    status_replacements,
    tasks_message,
    when_skipped,
)
from runner.local.pipelinetasks import ChildRun, plan_children
from runner.local.process import Interrupt
from runner.local.runenv import RunEnv
from runner.local.status import (
    PR_CANCELLED,
    PR_CEL_EVALUATION_FAILED,
    PR_COULDNT_GET_RESULT,
    PR_INVALID_MATRIX_TYPES,
    PR_RUNNING,
    PR_TIMEOUT,
    SKIP_EMPTY_MATRIX,
    SKIP_FINALLY_TIMEOUT,
    SKIP_MISSING_RESULTS,
    SKIP_PARENT,
    SKIP_PIPELINE_TIMEOUT,
    SKIP_STOPPING,
    SKIP_TASKS_TIMEOUT,
    SKIP_WHEN,
    TR_CANCELLED,
    succeeded_condition,
    timestamp,
)
from runner.local.steps import resolve_when, when_passes
from runner.local.substitution import Replacements
from runner.local.taskrun import run_taskrun

_IDLE_WAIT = 0.05  # seconds the scheduler waits for a child to end before looking at cancel and deadlines


def cancel_message(name: str) -> str:
    """The condition message of a cancelled PipelineRun."""
    return f'PipelineRun "{name}" was cancelled'


def run_pipelinerun(obj: dict[str, Any], env: RunEnv, interrupt: Interrupt) -> dict[str, Any]:
    """Runs a PipelineRun object to its end and returns it with its status."""
    pr = copy.deepcopy(obj)
    meta = pr.setdefault("metadata", {})
    meta.setdefault("namespace", env.namespace)
    meta.setdefault("uid", str(uuid.uuid4()))
    status: dict[str, Any] = {
        "conditions": [
            succeeded_condition("Unknown", PR_RUNNING, "Tasks Completed: 0 (Failed: 0, Cancelled 0), Skipped: 0")
        ],
        "startTime": timestamp(),
    }
    pr["status"] = status
    try:
        pipeline, pipeline_name = resolve_pipeline(pr, env)
        prepared = prepare_pipeline(pr, pipeline, pipeline_name, env)
        timeouts = pipeline_timeouts(pr, env.default_timeout)
    except RunFailure as failure:
        _finish(status, "False", failure.reason, failure.message)
        return pr
    status["pipelineSpec"] = prepared.spec
    if pr["spec"].get("status") in ("Cancelled", "CancelledRunFinally", "StoppedRunFinally"):
        _finish(status, "False", PR_CANCELLED, cancel_message(meta["name"]))
        return pr
    _Scheduler(pr, prepared, env, interrupt, timeouts).run()
    return pr


def _finish(status: dict[str, Any], state: str, reason: str, message: str) -> None:
    status["conditions"] = [succeeded_condition(state, reason, message)]
    status["completionTime"] = timestamp()


class _Scheduler:
    """Starts every task whose parents are settled, in parallel threads, until all are settled."""

    def __init__(
        self,
        pr: dict[str, Any],
        prepared: PreparedPipeline,
        env: RunEnv,
        interrupt: Interrupt,
        timeouts: tuple[float | None, float | None, float | None],
    ) -> None:
        self.pr, self.prepared, self.env, self.interrupt = pr, prepared, env, interrupt
        self.name = str(pr["metadata"]["name"])
        self.status: dict[str, Any] = pr["status"]
        self.states: dict[str, TaskState] = {}
        for group, final in ((prepared.tasks, False), (prepared.finally_tasks, True)):
            for task in group:
                name = str(task["name"])
                self.states[name] = TaskState(
                    name, task, final, prepared.parents.get(name, set()), prepared.resolved[name]
                )
        self.events: queue.Queue[tuple[str, int, dict[str, Any]]] = queue.Queue()
        self.running: dict[tuple[str, int], tuple[str, Interrupt]] = {}
        self.child_refs: list[dict[str, Any]] = []
        self.started = time.monotonic()
        self.pipeline_timeout, self.tasks_timeout, self.finally_timeout = timeouts
        self.finally_started: float | None = None
        self.hard_stop: tuple[str, str] | None = None
        self.tasks_timed_out = False
        self.finally_timed_out = False

    # -- the loop -------------------------------------------------------------------------------------------

    def run(self) -> None:
        """Schedules until every task is settled (or a cancel or pipeline timeout stops the run)."""
        while True:
            self._check_stops()
            if self.hard_stop is None:
                self._schedule()
            if not self.running and (self.hard_stop or all(s.settled for s in self.states.values())):
                break
            try:
                event = self.events.get(timeout=self._wait_time())
            except queue.Empty:
                continue
            self._child_done(*event)
            while True:
                try:
                    self._child_done(*self.events.get_nowait())
                except queue.Empty:
                    break
        self._conclude()

    def _wait_time(self) -> float:
        deadlines = [d for d in self._deadlines() if d is not None]
        if not deadlines:
            return _IDLE_WAIT
        return max(0.0, min(_IDLE_WAIT, min(deadlines) - time.monotonic()))

    def _deadlines(self) -> list[float | None]:
        pipeline = self.started + self.pipeline_timeout if self.pipeline_timeout else None
        tasks = self.started + self.tasks_timeout if self.tasks_timeout and not self.tasks_timed_out else None
        final = None
        if self.finally_timeout and self.finally_started is not None and not self.finally_timed_out:
            final = self.finally_started + self.finally_timeout
        return [pipeline, tasks, final]

    def _check_stops(self) -> None:
        if self.hard_stop is not None:
            return
        now = time.monotonic()
        if self.interrupt.triggered:
            self.hard_stop = (PR_CANCELLED, cancel_message(self.name))
            self._cancel_children(lambda final: True, "has been cancelled", by_user=True)
            return
        if self.pipeline_timeout and now >= self.started + self.pipeline_timeout:
            self.hard_stop = (
                PR_TIMEOUT,
                f'PipelineRun "{self.name}" failed to finish within "{format_duration(self.pipeline_timeout)}"',
            )
            self._cancel_children(lambda final: True, "has timed out", by_user=False)
            return
        if self.tasks_timeout and not self.tasks_timed_out and now >= self.started + self.tasks_timeout:
            self.tasks_timed_out = True
            self._cancel_children(lambda final: not final, "has timed out", by_user=False)
        if (
            self.finally_timeout
            and self.finally_started is not None
            and not self.finally_timed_out
            and now >= self.finally_started + self.finally_timeout
        ):
            self.finally_timed_out = True
            self._cancel_children(lambda final: final, "has timed out", by_user=False)

    def _cancel_children(self, which: Any, why: str, *, by_user: bool) -> None:
        for (task, _index), (child, interrupt) in list(self.running.items()):
            state = self.states[task]
            if which(state.final):
                state.cancelled_by_user = state.cancelled_by_user or by_user
                interrupt.trigger(
                    TR_CANCELLED,
                    f'TaskRun "{child}" was cancelled. TaskRun cancelled as the PipelineRun it belongs to {why}.',
                )

    # -- scheduling -----------------------------------------------------------------------------------------

    def _schedule(self) -> None:
        changed = True
        while changed and self.hard_stop is None:
            changed = False
            dag = [s for s in self.states.values() if not s.final]
            if self.finally_started is None:
                for state in dag:
                    if self.hard_stop is not None:
                        return
                    if state.phase == "pending" and all(self.states[p].settled for p in state.parents):
                        self._decide(state)
                        changed = True
                if all(s.settled for s in dag):
                    self.finally_started = time.monotonic()
                    finals = [s for s in self.states.values() if s.final]
                    if finals:
                        self.status["finallyStartTime"] = timestamp()
                    for state in finals:
                        self._decide(state)
                    changed = bool(finals)

    def _stopping(self) -> bool:
        return any(
            not s.final
            and (s.phase == "invalid" or (s.phase == "done" and s.outcome not in (SUCCEEDED, "IgnoredFailed")))
            for s in self.states.values()
        )

    def _decide(self, state: TaskState) -> None:
        if self.hard_stop is not None:
            return None
        if not state.final:
            if self._stopping():
                return self._skip(state, SKIP_STOPPING)
            for parent in state.parents:
                if self.states[parent].phase == "skipped" and not when_skipped(self.states[parent]):
                    return self._skip(state, SKIP_PARENT)
        missing = missing_result(state, self.states)
        if missing is not None:
            producer, result = missing
            if state.final or state.task.get("onError") == "continue" or when_skipped(producer):
                return self._skip(state, SKIP_MISSING_RESULTS)
            done_ok = producer.phase == "done" and producer.outcome == SUCCEEDED
            how = "completed successfully but did not" if done_ok else "did not"
            state.phase = "invalid"
            state.validation_error = (
                f'task "{producer.name}" {how} emit the result "{result}", which is referenced by task "{state.name}"'
            )
            return None
        reps = results_replacements(self.states)
        if state.final:
            reps.update(status_replacements(self.states))
        reps.strings["context.pipelineTask.retries"] = str(state.task.get("retries") or 0)
        task = substitute_task(state.task, reps, inner=True)
        when = resolve_when(task.get("when"), Replacements())
        try:
            passes = not when or when_passes(when)
        except CELError as exc:
            # A CEL `when` that only a task result made unevaluable: the run ends as it would have at its start.
            self.hard_stop = (PR_CEL_EVALUATION_FAILED, cel_failure_message(self.name, exc))
            self._cancel_children(lambda final: True, "has been cancelled", by_user=False)
            return None
        if not passes:
            state.when = when
            return self._skip(state, SKIP_WHEN)
        if not state.final and self.tasks_timed_out:
            return self._skip(state, SKIP_TASKS_TIMEOUT)
        if state.final and self.finally_timed_out:
            return self._skip(state, SKIP_FINALLY_TIMEOUT)
        if task.get("matrix"):
            if empty_matrix(task["matrix"]):
                return self._skip(state, SKIP_EMPTY_MATRIX)
            for param in task["matrix"].get("params") or []:
                if not isinstance(param.get("value"), list):
                    state.phase, state.validation_error = (
                        "invalid",
                        f'{PR_INVALID_MATRIX_TYPES}: matrix param "{param.get("name")}" of task "{state.name}" '
                        "is not an array",
                    )
                    return None
        state.when = when or None
        self._start(state, task)
        return None

    def _skip(self, state: TaskState, reason: str) -> None:
        state.phase, state.skip_reason = "skipped", reason

    def _start(self, state: TaskState, task: dict[str, Any]) -> None:
        try:
            children = plan_children(task, state.resolved, self.prepared.context, state.final)
        except RunFailure as failure:
            state.phase, state.validation_error = "invalid", failure.message
            return
        state.phase = "running"
        state.expected_children = len(children)
        state.children = []
        if task.get("matrix"):
            state.matrix_length = len(children)
        if not children:
            state.phase, state.outcome = "done", SUCCEEDED
            return
        for index, child in enumerate(children):
            ref = {
                "apiVersion": "tekton.dev/v1",
                "kind": child.obj["kind"],
                "name": child.obj["metadata"]["name"],
                "pipelineTaskName": state.name,
            }
            if child.display_name:
                ref["displayName"] = child.display_name
            if state.when:
                ref["whenExpressions"] = state.when
            self.child_refs.append(ref)
            interrupt = Interrupt()
            self.running[(state.name, index)] = (child.obj["metadata"]["name"], interrupt)
            thread = threading.Thread(target=self._run_child, args=(state.name, index, child, interrupt), daemon=True)
            thread.start()

    def _run_child(self, task: str, index: int, child: ChildRun, interrupt: Interrupt) -> None:
        self.env.child_started(child.obj, timestamp())
        try:
            if child.obj["kind"] == "TaskRun":
                result = run_taskrun(child.obj, self.env, interrupt, child.origin)
            else:
                result = run_pipelinerun(child.obj, self.env, interrupt)
        except Exception as exc:  # a bug here must end this child, not hang the whole PipelineRun
            result = copy.deepcopy(child.obj)
            result["status"] = {
                "conditions": [succeeded_condition("False", "Failed", f"local executor error: {exc!r}")]
            }
        self.env.add_child(result)
        self.events.put((task, index, result))

    def _child_done(self, task: str, index: int, result: dict[str, Any]) -> None:
        self.running.pop((task, index), None)
        state = self.states[task]
        state.children.append({**result, "_index": index})
        if len(state.children) < state.expected_children:
            return
        state.children = [
            {k: v for k, v in c.items() if k != "_index"} for c in sorted(state.children, key=lambda c: c["_index"])
        ]
        state.phase = "done"
        state.outcome = outcome_of(state)
        state.results = child_results(state)

    # -- the end --------------------------------------------------------------------------------------------

    def _conclude(self) -> None:
        for state in self.states.values():
            if state.phase == "pending":
                reason = SKIP_PIPELINE_TIMEOUT if self.hard_stop and self.hard_stop[0] == PR_TIMEOUT else SKIP_STOPPING
                self._skip(state, reason)
        if self.child_refs:
            self.status["childReferences"] = self.child_refs
        skipped = [skipped_entry(s) for s in self.states.values() if s.phase == "skipped"]
        if skipped:
            self.status["skippedTasks"] = skipped
        if self.hard_stop is not None:
            _finish(self.status, "False", *self.hard_stop)
            return
        counts = count(self.states)
        outcome, reason, message = final_condition(counts)
        if self.tasks_timed_out:
            outcome, reason = "False", PR_TIMEOUT
            limit = format_duration(self.tasks_timeout or 0)
            message = f'PipelineRun "{self.name}" failed due to tasks failed to finish within "{limit}"'
        results, error = pipeline_results(self.prepared.spec.get("results") or [], self.states)
        if results:
            self.status["results"] = results
        if error:
            outcome, reason = "False", PR_COULDNT_GET_RESULT
            message = (
                f"Failed to get PipelineResult from TaskRun Results for PipelineRun {self.name}: "
                f"invalid pipelineresults [{' '.join(error)}], the referenced results don't exist"
            )
        _finish(self.status, outcome, reason, message or tasks_message(counts))
