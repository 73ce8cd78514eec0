"""The task graph of a run record, as its page draws it: nodes with status and timing, edges, a layered layout.

A PipelineRun gives one node per pipeline task and finally task; its edges come from `runAfter`, from result
references (`$(tasks.<name>.results...)`) in params, `when` and `matrix`, and from the last DAG tasks to every
finally task. A TaskRun gives one node per step, in order. Levels are the longest path from a root.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from itertools import pairwise
from typing import Any

from runner.models import CANCELLED, FAILED, PENDING, RUNNING, SUCCEEDED
from runner.run_details import ContainerLog, parse_time, status_of

SKIPPED = "Skipped"
NOT_RUN = "not run: the run ended first"
# Pipeline task names are DNS labels; a reference may be $(tasks.a.results.r), $(tasks.a.results.r[*]) or
# $(tasks.a.results['r']).
_RESULT_REFERENCE = re.compile(r"\$\(\s*tasks\.([a-z0-9]([-a-z0-9]*[a-z0-9])?)\.results[.\[]")

Json = dict[str, Any]


@dataclass(frozen=True)
class GraphNode:
    """A pipeline task (or a step of a TaskRun) with what its runs say about it."""

    name: str
    status: str  # Succeeded, Failed, Cancelled, Running, Pending or Skipped
    reason: str = ""
    task_runs: tuple[str, ...] = ()  # several for a matrix
    container: str = ""  # a step's container; empty for a pipeline task (all its containers are its own)
    started_at: datetime | None = None
    completed_at: datetime | None = None
    retries: int = 0
    final: bool = False
    level: int = 0
    order: int = 0

    @property
    def duration(self) -> float | None:
        """Seconds from start to completion; None unless both are known."""
        if self.started_at is None or self.completed_at is None:
            return None
        return (self.completed_at - self.started_at).total_seconds()


@dataclass(frozen=True)
class GraphEdge:
    source: str
    target: str
    kind: str  # "runAfter", "result", "finally" or "step"


@dataclass(frozen=True)
class RunGraph:
    nodes: tuple[GraphNode, ...]
    edges: tuple[GraphEdge, ...]

    def node(self, name: str) -> GraphNode | None:
        return next((n for n in self.nodes if n.name == name), None)

    @property
    def levels(self) -> list[list[GraphNode]]:
        """The nodes by level, each level in its drawing order."""
        out: list[list[GraphNode]] = [[] for _ in range(max((n.level for n in self.nodes), default=-1) + 1)]
        for node in sorted(self.nodes, key=lambda n: (n.level, n.order)):
            out[node.level].append(node)
        return out


def run_graph(obj: Json, children: Sequence[Any] = (), *, ended: bool = False) -> RunGraph:
    """The graph of a run object (a PipelineRun or TaskRun) and its child TaskRuns; `ended` says the run is over,
    so that tasks that never started read as not run rather than waiting."""
    ended = ended or status_of(obj)[0] != RUNNING
    if obj.get("kind") == "TaskRun":
        return _taskrun_graph(obj, ended)
    return _pipeline_graph(obj, [c for c in children if isinstance(c, dict)], ended)


# -- PipelineRun ------------------------------------------------------------------------------------------


def _pipeline_graph(obj: Json, children: list[Json], ended: bool) -> RunGraph:
    status = _dict(obj.get("status"))
    spec = _dict(status.get("pipelineSpec")) or _dict(_dict(obj.get("spec")).get("pipelineSpec"))
    tasks = _named(spec.get("tasks"))
    finally_tasks = _named(spec.get("finally"))
    child_names = _child_names(status, children)
    if not tasks and not finally_tasks:  # not resolved yet: show whatever ran, unconnected
        tasks = [{"name": name} for name in child_names]
    by_name = {str(_dict(c.get("metadata")).get("name")): c for c in children}
    skipped = {str(s.get("name")): str(s.get("reason") or "") for s in _named(status.get("skippedTasks"))}

    nodes: list[GraphNode] = []
    for task, final in [*((t, False) for t in tasks), *((t, True) for t in finally_tasks)]:
        name = str(task["name"])
        if name in skipped:
            nodes.append(GraphNode(name, SKIPPED, skipped[name], final=final))
        else:
            runs = child_names.get(name, [])
            nodes.append(_task_node(name, runs, [by_name[r] for r in runs if r in by_name], final, ended))

    dag_names = [str(t["name"]) for t in tasks]
    edges = _dag_edges(tasks, set(dag_names))
    leaves = [n for n in dag_names if not any(e.source == n for e in edges)]
    for task in finally_tasks:
        sources = [*leaves, *(s for s in _referenced(task) if s in dag_names and s not in leaves)]
        edges.extend(GraphEdge(source, str(task["name"]), "finally") for source in sources)
    return _laid_out(nodes, edges)


def _child_names(status: Json, children: list[Json]) -> dict[str, list[str]]:
    """Pipeline task name → names of its child runs, from childReferences, then the children's own labels."""
    out: dict[str, list[str]] = {}
    for ref in _dicts(status.get("childReferences")):
        if ref.get("pipelineTaskName") and ref.get("name"):
            out.setdefault(str(ref["pipelineTaskName"]), []).append(str(ref["name"]))
    for child in children:
        meta = _dict(child.get("metadata"))
        task, name = _dict(meta.get("labels")).get("tekton.dev/pipelineTask"), meta.get("name")
        if task and name and str(name) not in out.get(str(task), []):
            out.setdefault(str(task), []).append(str(name))
    return out


def _task_node(name: str, runs: list[str], objs: list[Json], final: bool, ended: bool) -> GraphNode:
    if not runs:
        return GraphNode(name, PENDING, NOT_RUN if ended else "", final=final)
    states = [_run_state(o) for o in objs]
    if len(objs) < len(runs):  # a child was created but its object is not stored yet
        states.append((PENDING if ended else RUNNING, ""))
    failed = next((s for s in states if s[0] in (FAILED, CANCELLED)), None)
    unfinished = next((s for s in states if s[0] in (RUNNING, PENDING)), None)
    status, reason = failed or unfinished or (SUCCEEDED, states[0][1])
    starts = [t for t in (parse_time(_dict(o.get("status")).get("startTime")) for o in objs) if t]
    ends = [parse_time(_dict(o.get("status")).get("completionTime")) for o in objs]
    done = len(ends) == len(runs) and all(ends)
    return GraphNode(
        name,
        status,
        reason,
        task_runs=tuple(runs),
        started_at=min(starts) if starts else None,
        completed_at=max(t for t in ends if t) if done else None,
        retries=sum(len(_dicts(_dict(o.get("status")).get("retriesStatus"))) for o in objs),
        final=final,
    )


def _run_state(obj: Json) -> tuple[str, str]:
    status, reason, _ = status_of(obj)
    if status == RUNNING and not obj.get("status"):
        return PENDING, reason
    return status, reason


def _dag_edges(tasks: list[Json], names: set[str]) -> list[GraphEdge]:
    edges: list[GraphEdge] = []
    seen: set[tuple[str, str]] = set()
    for task in tasks:
        target = str(task["name"])
        after = [("runAfter", str(s)) for s in task.get("runAfter") or [] if isinstance(s, str)]
        for kind, source in [*after, *(("result", s) for s in _referenced(task))]:
            if source in names and source != target and (source, target) not in seen:
                seen.add((source, target))
                edges.append(GraphEdge(source, target, kind))
    return edges


def _referenced(task: Json) -> list[str]:
    """The tasks whose results a task's params, `when` or `matrix` use, in the order they appear."""
    text = json.dumps([task.get("params"), task.get("when"), task.get("matrix")])
    return list(dict.fromkeys(m.group(1) for m in _RESULT_REFERENCE.finditer(text)))


# -- TaskRun ----------------------------------------------------------------------------------------------


def _taskrun_graph(obj: Json, ended: bool) -> RunGraph:
    status = _dict(obj.get("status"))
    task_spec = _dict(status.get("taskSpec")) or _dict(_dict(obj.get("spec")).get("taskSpec"))
    name = str(_dict(obj.get("metadata")).get("name") or "")
    # A step without a name is `unnamed-<index>` in Tekton's status, as the local executor names it too.
    declared = [str(s.get("name") or f"unnamed-{i}") for i, s in enumerate(_dicts(task_spec.get("steps")))]
    states = {str(s.get("name")): s for s in _dicts(status.get("steps"))}
    nodes = [_step_node(step, states.get(step), name, ended) for step in dict.fromkeys([*declared, *states])]
    edges = [GraphEdge(a.name, b.name, "step") for a, b in pairwise(nodes)]
    return _laid_out(nodes, edges)


def _step_node(step: str, state: Json | None, task_run: str, ended: bool) -> GraphNode:
    container = str((state or {}).get("container") or f"step-{step}")
    if state is None:
        return GraphNode(step, PENDING, NOT_RUN if ended else "", (task_run,), container)
    if terminated := _dict(state.get("terminated")):
        code = terminated.get("exitCode")
        reason = str(state.get("terminationReason") or terminated.get("reason") or "")
        if reason == "Skipped":
            status = SKIPPED
        elif code == 0:
            status = SUCCEEDED
        else:
            status, reason = FAILED, f"{reason} (exit code {code})" if reason else f"exit code {code}"
        started, finished = parse_time(terminated.get("startedAt")), parse_time(terminated.get("finishedAt"))
        return GraphNode(step, status, reason, (task_run,), container, started, finished)
    if running := _dict(state.get("running")):
        return GraphNode(step, RUNNING, "", (task_run,), container, parse_time(running.get("startedAt")))
    waiting = _dict(state.get("waiting"))
    return GraphNode(step, PENDING, str(waiting.get("reason") or ""), (task_run,), container)


# -- layout -----------------------------------------------------------------------------------------------


def _laid_out(nodes: list[GraphNode], edges: list[GraphEdge]) -> RunGraph:
    """Level = longest path from a root (Kahn's order); within a level, the order of the spec."""
    names = [n.name for n in nodes]
    incoming: dict[str, list[str]] = {n: [] for n in names}
    for edge in edges:
        incoming[edge.target].append(edge.source)
    level: dict[str, int] = {}
    remaining = list(names)
    while remaining:
        ready = [n for n in remaining if all(s in level for s in incoming[n])]
        if not ready:  # a cycle (an invalid pipeline): place the first of it after what is placed
            ready = remaining[:1]
        for name in ready:
            level[name] = max((level[s] + 1 for s in incoming[name] if s in level), default=0)
        remaining = [n for n in remaining if n not in level]
    seen_in_level: dict[int, int] = {}
    placed = []
    for node in nodes:
        lvl = level[node.name]
        placed.append(replace(node, level=lvl, order=seen_in_level.get(lvl, 0)))
        seen_in_level[lvl] = seen_in_level.get(lvl, 0) + 1
    return RunGraph(tuple(placed), tuple(edges))


@dataclass(frozen=True)
class PlacedNode:
    node: GraphNode
    x: float
    y: float
    width: float
    height: float


@dataclass(frozen=True)
class PlacedEdge:
    edge: GraphEdge
    path: str  # SVG path data, ending where the arrowhead goes


@dataclass(frozen=True)
class GraphDrawing:
    width: float
    height: float
    nodes: tuple[PlacedNode, ...]
    edges: tuple[PlacedEdge, ...]


def draw(
    graph: RunGraph,
    *,
    node_width: float = 200,
    node_height: float = 52,
    column_gap: float = 56,
    row_gap: float = 16,
    margin: float = 8,
) -> GraphDrawing:
    """Boxes in columns by level, left to right, and a curve per edge from its source's right side to its target's
    left side. An edge that spans several levels crosses each column between them in a free row below that
    column's boxes (one row per source), so it never runs behind a box and seems to end there."""

    def column_x(level: int) -> float:
        return margin + level * (node_width + column_gap)

    def row_y(row: int) -> float:
        return margin + row * (node_height + row_gap)

    nodes = {n.name: n for n in graph.nodes}
    boxes = tuple(PlacedNode(n, column_x(n.level), row_y(n.order), node_width, node_height) for n in graph.nodes)
    rows_used = [len(level) for level in graph.levels]
    lanes: dict[tuple[str, int], int] = {}
    paths = []
    for edge in graph.edges:
        source, target = nodes[edge.source], nodes[edge.target]
        points = [(column_x(source.level) + node_width, row_y(source.order) + node_height / 2)]
        for level in range(source.level + 1, target.level):
            if (edge.source, level) not in lanes:
                lanes[(edge.source, level)] = rows_used[level]
                rows_used[level] += 1
            y = row_y(lanes[(edge.source, level)]) + node_height / 2
            points += [(column_x(level), y), (column_x(level) + node_width, y)]
        points.append((column_x(target.level), row_y(target.order) + node_height / 2))
        path = f"M{points[0][0]:g},{points[0][1]:g}"
        for index, ((x1, y1), (x2, y2)) in enumerate(pairwise(points)):
            if index % 2:  # across a column, in its lane
                path += f" L{x2:g},{y2:g}"
            else:
                bend = max(abs(x2 - x1) / 2, column_gap / 2)
                path += f" C{x1 + bend:g},{y1:g} {x2 - bend:g},{y2:g} {x2:g},{y2:g}"
        paths.append(PlacedEdge(edge, path))
    return GraphDrawing(
        width=2 * margin + max(len(rows_used) * (node_width + column_gap) - column_gap, 0),
        height=2 * margin + max(max(rows_used, default=0) * (node_height + row_gap) - row_gap, 0),
        nodes=boxes,
        edges=tuple(paths),
    )


# -- logs -------------------------------------------------------------------------------------------------


def logs_by_node(
    graph: RunGraph, logs: Iterable[ContainerLog]
) -> tuple[dict[str, list[ContainerLog]], list[ContainerLog]]:
    """Each node's container logs (a step gets its own container's), and the logs of no node (sidecars, TaskRuns
    the stored object does not name yet)."""
    owners: dict[tuple[str, str], str] = {}
    for node in graph.nodes:
        for task_run in node.task_runs:
            owners[(task_run, node.container)] = node.name
    out: dict[str, list[ContainerLog]] = {n.name: [] for n in graph.nodes}
    others = []
    for log in logs:
        owner = owners.get((log.task_run, log.container)) or owners.get((log.task_run, ""))
        if owner is None:
            others.append(log)
        else:
            out[owner].append(log)
    return out, others


# -- reading Tekton objects -------------------------------------------------------------------------------


def _dict(value: Any) -> Json:
    return value if isinstance(value, dict) else {}


def _dicts(value: Any) -> list[Json]:
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


def _named(value: Any) -> list[Json]:
    return [v for v in _dicts(value) if v.get("name")]
