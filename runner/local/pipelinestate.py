"""The state of each PipelineTask during a PipelineRun, and what it adds up to: counts, condition, variables."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from runner.local.dag import task_result_refs
from runner.local.pipelinetasks import ResolvedTask
from runner.local.status import (
    PR_CANCELLED,
    PR_COMPLETED,
    PR_FAILED,
    PR_SUCCEEDED,
    PR_VALIDATION_FAILED,
    SKIP_WHEN,
    TIMEOUT_SKIPS,
    TR_FAILURE_IGNORED,
    condition_of,
)
from runner.local.substitution import (
    ParamValue,
    Replacements,
    references,
    result_refs,
    result_replacements,
    substitute_param_value,
)

SUCCEEDED, FAILED, CANCELLED, IGNORED = "Succeeded", "Failed", "Cancelled", "IgnoredFailed"


@dataclass
class TaskState:
    """One PipelineTask: where it is (pending, running, done, skipped, invalid) and what it produced."""

    name: str
    task: dict[str, Any]
    final: bool
    parents: set[str]
    resolved: ResolvedTask
    phase: str = "pending"
    skip_reason: str | None = None
    when: list[dict[str, Any]] | None = None
    children: list[dict[str, Any]] = field(default_factory=list)
    expected_children: int = 0
    outcome: str | None = None
    results: dict[str, ParamValue] = field(default_factory=dict)
    validation_error: str | None = None
    cancelled_by_user: bool = False
    matrix_length: int | None = None

    @property
    def settled(self) -> bool:
        """Done, skipped or failed validation: nothing more will happen to it."""
        return self.phase in ("done", "skipped", "invalid")


def outcome_of(state: TaskState) -> str:
    """A finished task's outcome from its child runs (a matrix task counts once)."""
    conditions = [condition_of(child) for child in state.children]
    if conditions and all(c.get("status") == "True" for c in conditions):
        return SUCCEEDED
    failing = [c for c in conditions if c.get("status") != "True"]
    if failing and all(c.get("reason") == TR_FAILURE_IGNORED for c in failing):
        return IGNORED
    if state.cancelled_by_user:
        return CANCELLED
    return FAILED


def task_reason(state: TaskState) -> str:
    """`$(tasks.<t>.reason)`: the first non-successful child's reason, else the first child's."""
    conditions = [condition_of(child) for child in state.children]
    for cond in conditions:
        if cond.get("status") != "True":
            return str(cond.get("reason", ""))
    return str(conditions[0].get("reason", "")) if conditions else ""


def status_replacements(states: dict[str, TaskState]) -> Replacements:
    """The finally-only variables `$(tasks.<t>.status)`, `$(tasks.<t>.reason)` and `$(tasks.status)`."""
    reps = Replacements()
    any_failed = any_skipped = False
    for state in states.values():
        if state.final:
            continue
        if state.phase == "done":
            failed = state.outcome != SUCCEEDED
            reps.strings[f"tasks.{state.name}.status"] = FAILED if failed else SUCCEEDED
            reps.strings[f"tasks.{state.name}.reason"] = task_reason(state)
            any_failed = any_failed or failed
        else:
            reps.strings[f"tasks.{state.name}.status"] = "None"
            reps.strings[f"tasks.{state.name}.reason"] = ""
            any_skipped = any_skipped or state.phase == "skipped"
            any_failed = any_failed or state.phase == "invalid"
    reps.strings["tasks.status"] = FAILED if any_failed else "Completed" if any_skipped else SUCCEEDED
    return reps


def results_replacements(states: dict[str, TaskState], *, finally_too: bool = False) -> Replacements:
    """`$(tasks.<t>.results.<r>)` of every task that produced results (and `$(finally.<f>...)` if asked)."""
    reps = Replacements()
    for state in states.values():
        if state.final and not finally_too:
            continue
        prefix = "finally" if state.final else "tasks"
        if state.phase == "done" and state.results:
            reps.update(result_replacements(prefix, state.name, state.results))
        if state.matrix_length is not None:
            reps.strings[f"tasks.{state.name}.matrix.length"] = str(state.matrix_length)
            for result, value in state.results.items():
                if isinstance(value, list):
                    reps.strings[f"tasks.{state.name}.matrix.{result}.length"] = str(len(value))
    return reps


@dataclass
class Counts:
    """Per-task tallies of §5.1 (a matrix task counts once)."""

    succeeded: int = 0
    failed: int = 0
    cancelled: int = 0
    ignored: int = 0
    invalid: int = 0
    skipped: int = 0
    timeout_skipped: int = 0
    incomplete: int = 0
    errors: list[str] = field(default_factory=list)

    @property
    def completed(self) -> int:
        """Tasks that ran to an end."""
        return self.succeeded + self.failed + self.cancelled + self.ignored


def count(states: dict[str, TaskState]) -> Counts:
    """The §5.1 counts over DAG and finally tasks."""
    counts = Counts()
    for state in states.values():
        if state.phase == "done":
            if state.outcome == SUCCEEDED:
                counts.succeeded += 1
            elif state.outcome == IGNORED:
                counts.ignored += 1
            elif state.outcome == CANCELLED:
                counts.cancelled += 1
            else:
                counts.failed += 1
        elif state.phase == "skipped":
            counts.skipped += 1
            if state.skip_reason in TIMEOUT_SKIPS:
                counts.timeout_skipped += 1
        elif state.phase == "invalid":
            counts.invalid += 1
            counts.errors.append(state.validation_error or "")
        else:
            counts.incomplete += 1
    return counts


def tasks_message(counts: Counts) -> str:
    """`Tasks Completed: C (Failed: F, Cancelled X), Skipped: S` with ignored failures and validation failures."""
    failed = str(counts.failed)
    if counts.ignored:
        failed = f"{counts.failed + counts.ignored} (Ignored: {counts.ignored})"
    message = f"Tasks Completed: {counts.completed} (Failed: {failed}, Cancelled {counts.cancelled}), "
    if counts.incomplete:
        message += f"Incomplete: {counts.incomplete}, "
    message += f"Skipped: {counts.skipped}"
    if counts.invalid:
        message += f", Failed Validation: {counts.invalid} ({'; '.join(counts.errors)})"
    return message


def final_condition(counts: Counts) -> tuple[str, str, str]:
    """(status, reason, message) of a PipelineRun whose tasks are all settled."""
    message = tasks_message(counts)
    if counts.invalid:
        return "False", PR_VALIDATION_FAILED, message
    if counts.failed or counts.timeout_skipped:
        return "False", PR_FAILED, message
    if counts.cancelled:
        return "False", PR_CANCELLED, message
    if counts.skipped:
        return "True", PR_COMPLETED, message
    return "True", PR_SUCCEEDED, message


def skipped_entry(state: TaskState) -> dict[str, Any]:
    """A `status.skippedTasks[]` entry."""
    entry: dict[str, Any] = {"name": state.name, "reason": state.skip_reason}
    when = state.when if state.when is not None else state.task.get("when")
    if when:
        entry["whenExpressions"] = when
    return entry


def when_skipped(state: TaskState) -> bool:
    """True when the task was skipped because its `when` expressions were false."""
    return state.phase == "skipped" and state.skip_reason == SKIP_WHEN


def child_results(state: TaskState) -> dict[str, Any]:
    """A task's results: one child's, or for a matrix each string result gathered into an array in order."""
    per_child = []
    for child in state.children:
        results = child.get("status", {}).get("results") or []
        per_child.append({str(r.get("name")): r.get("value") for r in results if isinstance(r, dict)})
    if state.matrix_length is None:
        return per_child[0] if per_child else {}
    gathered: dict[str, Any] = {}
    for results in per_child:
        for name, value in results.items():
            if isinstance(value, str):
                gathered.setdefault(name, []).append(value)
    return gathered


def pipeline_results(
    decls: list[dict[str, Any]], states: dict[str, TaskState]
) -> tuple[list[dict[str, Any]], list[str]]:
    """`status.results` of a finished PipelineRun, and the names of results that referenced missing values."""
    reps = results_replacements(states, finally_too=True)
    out, errors = [], []
    for decl in decls:
        name, value = str(decl.get("name")), decl.get("value")
        refs = result_refs(value)
        if not refs and not list(references(value)):
            continue
        producers = [states.get(ref.owner) for ref in refs]
        if any(p is None or p.phase != "done" or p.outcome != SUCCEEDED for p in producers):
            continue  # a result whose task did not succeed is left out, without error
        resolved = substitute_param_value(value, reps)
        if "$(" in str(resolved):
            errors.append(name)
            continue
        out.append({"name": name, "value": resolved})
    return out, errors


def missing_result(state: TaskState, states: dict[str, TaskState]) -> tuple[TaskState, str] | None:
    """The first (producer, result) a task references that its producer did not (successfully) emit."""
    for ref in task_result_refs(state.task):
        producer = states.get(ref.owner)
        if producer is None:
            continue
        value = producer.results.get(ref.result) if producer.phase == "done" and producer.outcome == SUCCEEDED else None
        if value is None:
            return producer, ref.result
        if ref.index not in (None, "*") and (not isinstance(value, list) or int(ref.index) >= len(value)):
            return producer, ref.result
    return None
