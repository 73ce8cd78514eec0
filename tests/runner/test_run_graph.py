"""The task graph of a run record: nodes, statuses, edges and the layered layout a run page draws."""

from __future__ import annotations

from typing import Any

from runner.run_details import ContainerLog
from runner.run_graph import SKIPPED, GraphEdge, RunGraph, draw, logs_by_node, run_graph

T0, T1, T2 = "2026-11-22T07:00:00Z", "2026-11-22T07:00:04Z", "2026-11-22T07:00:10Z"


def task(name: str, **fields: Any) -> dict[str, Any]:
    return {"name": name, "taskSpec": {"steps": [{"image": "alpine", "script": "true"}]}, **fields}


def taskrun(name: str, task_name: str, condition: str, reason: str, **status: Any) -> dict[str, Any]:
    return {
        "apiVersion": "tekton.dev/v1",
        "kind": "TaskRun",
        "metadata": {"name": name, "labels": {"tekton.dev/pipelineTask": task_name}},
        "status": {
            "conditions": [{"type": "Succeeded", "status": condition, "reason": reason}],
            "startTime": T0,
            **({"completionTime": T1} if condition != "Unknown" else {}),
            **status,
        },
    }


def pipelinerun(tasks: list[dict[str, Any]], finally_: list[dict[str, Any]] | None = None, **status: Any) -> dict:
    spec: dict[str, Any] = {"tasks": tasks, **({"finally": finally_} if finally_ else {})}
    return {
        "apiVersion": "tekton.dev/v1",
        "kind": "PipelineRun",
        "metadata": {"name": "pr"},
        "spec": {"pipelineSpec": spec},
        **({"status": status} if status else {}),
    }


def edges(graph: RunGraph) -> set[tuple[str, str, str]]:
    return {(e.source, e.target, e.kind) for e in graph.edges}


def placement(graph: RunGraph) -> dict[str, tuple[int, int]]:
    return {n.name: (n.level, n.order) for n in graph.nodes}


def test_diamond_dag_is_laid_out_in_three_levels() -> None:
    graph = run_graph(
        pipelinerun(
            [
                task("fetch"),
                task("lint", runAfter=["fetch"]),
                task("build", runAfter=["fetch"]),
                task("deploy", runAfter=["build", "lint"]),
            ]
        )
    )
    assert edges(graph) == {
        ("fetch", "lint", "runAfter"),
        ("fetch", "build", "runAfter"),
        ("build", "deploy", "runAfter"),
        ("lint", "deploy", "runAfter"),
    }
    assert placement(graph) == {"fetch": (0, 0), "lint": (1, 0), "build": (1, 1), "deploy": (2, 0)}
    assert [[n.name for n in level] for level in graph.levels] == [["fetch"], ["lint", "build"], ["deploy"]]
    assert {n.status for n in graph.nodes} == {"Pending"}, "nothing has run yet"
    assert all(n.reason == "" for n in graph.nodes)


def test_level_is_the_longest_path_from_a_root() -> None:
    graph = run_graph(
        pipelinerun([task("a"), task("b", runAfter=["a"]), task("c", runAfter=["b"]), task("d", runAfter=["a", "c"])])
    )
    assert placement(graph)["d"] == (3, 0)


def test_result_references_in_params_when_and_matrix_are_edges() -> None:
    graph = run_graph(
        pipelinerun(
            [
                task("sum"),
                task("product"),
                task("files"),
                task(
                    "combine",
                    runAfter=["sum"],
                    params=[{"name": "a", "value": "$(tasks.sum.results.sum)-$(tasks.product.results['product'])"}],
                ),
                task("gate", when=[{"input": "$(tasks.combine.results.out)", "operator": "in", "values": ["x"]}]),
                task("each", matrix={"params": [{"name": "f", "value": "$(tasks.files.results.names[*])"}]}),
                task("plain", params=[{"name": "p", "value": "$(params.tasks.sum.results.x) $(tasks.nope.results.y)"}]),
            ]
        )
    )
    assert edges(graph) == {
        ("sum", "combine", "runAfter"),  # runAfter and a result reference: one edge
        ("product", "combine", "result"),
        ("combine", "gate", "result"),
        ("files", "each", "result"),
    }
    assert placement(graph)["gate"] == (2, 0)
    assert placement(graph)["plain"] == (0, 3), "a reference to no task is no edge"


def test_finally_tasks_come_after_every_dag_task() -> None:
    graph = run_graph(
        pipelinerun(
            [task("a"), task("b", runAfter=["a"]), task("c")],
            [task("report", params=[{"name": "r", "value": "$(tasks.a.results.r)"}]), task("cleanup")],
        )
    )
    assert edges(graph) == {
        ("a", "b", "runAfter"),
        ("b", "report", "finally"),
        ("c", "report", "finally"),
        ("a", "report", "finally"),  # its result is used, so it is drawn although b follows it
        ("b", "cleanup", "finally"),
        ("c", "cleanup", "finally"),
    }
    assert placement(graph)["report"] == (2, 0) and placement(graph)["cleanup"] == (2, 1)
    assert [n.final for n in graph.nodes] == [False, False, False, True, True]


def test_statuses_timing_and_retries_come_from_the_children() -> None:
    obj = pipelinerun(
        [task("ok"), task("broken"), task("gated", when=[{"input": "a", "operator": "in", "values": ["b"]}])],
        [task("always"), task("later")],
        conditions=[{"type": "Succeeded", "status": "False", "reason": "Failed"}],
        childReferences=[
            {"kind": "TaskRun", "name": "pr-ok", "pipelineTaskName": "ok"},
            {"kind": "TaskRun", "name": "pr-broken", "pipelineTaskName": "broken"},
            {"kind": "TaskRun", "name": "pr-always", "pipelineTaskName": "always"},
        ],
        skippedTasks=[{"name": "gated", "reason": "When Expressions evaluated to false"}],
    )
    retried = {"conditions": [{"type": "Succeeded", "status": "False", "reason": "Failed"}]}
    children = [
        taskrun("pr-ok", "ok", "True", "Succeeded"),
        taskrun("pr-broken", "broken", "False", "Failed", retriesStatus=[retried, retried], completionTime=T2),
        taskrun("pr-always", "always", "Unknown", "Running"),
    ]
    graph = run_graph(obj, children)
    ok, broken, gated, always, later = graph.nodes
    assert (ok.status, ok.reason, ok.task_runs, ok.duration, ok.retries) == ("Succeeded", "Succeeded", ("pr-ok",), 4, 0)
    assert (broken.status, broken.reason, broken.duration, broken.retries) == ("Failed", "Failed", 10, 2)
    assert (gated.status, gated.reason, gated.task_runs) == (SKIPPED, "When Expressions evaluated to false", ())
    assert (always.status, always.started_at is not None, always.duration) == ("Running", True, None)
    assert (later.status, later.reason) == ("Pending", "not run: the run ended first")


def test_matrix_task_gathers_its_taskruns_and_fails_when_one_fails() -> None:
    refs = [{"name": f"pr-m-{i}", "pipelineTaskName": "m"} for i in range(3)]
    children = [
        taskrun("pr-m-0", "m", "True", "Succeeded"),
        taskrun("pr-m-1", "m", "False", "Failed", completionTime=T2),
        taskrun("pr-m-2", "m", "True", "Succeeded"),
    ]
    (node,) = run_graph(pipelinerun([task("m")], childReferences=refs), children).nodes
    assert (node.status, node.task_runs, node.duration) == ("Failed", ("pr-m-0", "pr-m-1", "pr-m-2"), 10)


def test_a_child_known_only_by_reference_is_running() -> None:
    obj = pipelinerun([task("a")], childReferences=[{"name": "pr-a", "pipelineTaskName": "a"}])
    (node,) = run_graph(obj, []).nodes
    assert (node.status, node.task_runs) == ("Running", ("pr-a",))


def test_an_unresolved_pipelinerun_shows_only_what_ran() -> None:
    obj = {"kind": "PipelineRun", "metadata": {"name": "pr"}, "spec": {"pipelineRef": {"name": "p"}}}
    assert run_graph(obj).nodes == ()
    assert [n.name for n in run_graph(obj, [taskrun("pr-x", "x", "True", "Succeeded")]).nodes] == ["x"]
    assert [n.reason for n in run_graph(pipelinerun([task("a")]), ended=True).nodes] == ["not run: the run ended first"]


def test_a_cycle_still_gets_a_layout() -> None:
    graph = run_graph(pipelinerun([task("a", runAfter=["b"]), task("b", runAfter=["a"]), task("c")]))
    assert sorted(n.name for n in graph.nodes) == ["a", "b", "c"]
    assert len({(n.level, n.order) for n in graph.nodes}) == 3, "no two boxes on top of each other"


def test_taskrun_has_one_node_per_step() -> None:
    obj = {
        "kind": "TaskRun",
        "metadata": {"name": "tr"},
        "spec": {"taskSpec": {"steps": [{"name": "clone"}, {"name": "test"}, {}, {"name": "skip-me"}, {"name": "w"}]}},
        "status": {
            "conditions": [{"type": "Succeeded", "status": "Unknown", "reason": "Running"}],
            "steps": [
                {
                    "name": "clone",
                    "container": "step-clone",
                    "terminated": {"exitCode": 0, "reason": "Completed", "startedAt": T0, "finishedAt": T1},
                },
                {
                    "name": "test",
                    "container": "step-test",
                    "terminated": {"exitCode": 2, "reason": "Error", "startedAt": T1, "finishedAt": T2},
                    "terminationReason": "Continued",
                },
                {"name": "unnamed-2", "container": "step-unnamed-2", "running": {"startedAt": T2}},
                {
                    "name": "skip-me",
                    "container": "step-skip-me",
                    "terminated": {"exitCode": 0, "reason": "Completed", "startedAt": T2, "finishedAt": T2},
                    "terminationReason": "Skipped",
                },
            ],
        },
    }
    graph = run_graph(obj)
    assert [(n.name, n.status, n.reason) for n in graph.nodes] == [
        ("clone", "Succeeded", "Completed"),
        ("test", "Failed", "Continued (exit code 2)"),
        ("unnamed-2", "Running", ""),
        ("skip-me", SKIPPED, "Skipped"),
        ("w", "Pending", ""),
    ]
    assert [n.duration for n in graph.nodes] == [4, 6, None, 0, None]
    assert graph.edges == (
        GraphEdge("clone", "test", "step"),
        GraphEdge("test", "unnamed-2", "step"),
        GraphEdge("unnamed-2", "skip-me", "step"),
        GraphEdge("skip-me", "w", "step"),
    )
    assert [(n.level, n.order) for n in graph.nodes] == [(0, 0), (1, 0), (2, 0), (3, 0), (4, 0)]
    assert {n.task_runs for n in graph.nodes} == {("tr",)}
    running = graph.node("unnamed-2")
    assert running is not None and running.container == "step-unnamed-2"


def test_drawing_places_boxes_in_columns_and_curves_between_them() -> None:
    graph = run_graph(pipelinerun([task("a"), task("b", runAfter=["a"]), task("c", runAfter=["a"])]))
    drawing = draw(graph, node_width=100, node_height=40, column_gap=50, row_gap=10, margin=5)
    boxes = {p.node.name: (p.x, p.y) for p in drawing.nodes}
    assert boxes == {"a": (5, 5), "b": (155, 5), "c": (155, 55)}
    assert (drawing.width, drawing.height) == (260, 100)
    assert [p.path for p in drawing.edges] == ["M105,25 C130,25 130,25 155,25", "M105,25 C130,25 130,75 155,75"]


def test_a_long_edge_crosses_the_columns_between_in_a_free_row() -> None:
    graph = run_graph(
        pipelinerun([task("a"), task("b", runAfter=["a"]), task("c", runAfter=["b"]), task("d", runAfter=["a", "c"])])
    )
    drawing = draw(graph, node_width=100, node_height=40, column_gap=50, row_gap=10, margin=5)
    long_edge = next(p.path for p in drawing.edges if (p.edge.source, p.edge.target) == ("a", "d"))
    assert long_edge == "M105,25 C130,25 130,75 155,75 L255,75 C280,75 280,75 305,75 L405,75 C430,75 430,25 455,25"
    assert (drawing.width, drawing.height) == (560, 100), "a second row holds the lane"


def test_logs_go_to_the_node_they_belong_to() -> None:
    pr = run_graph(pipelinerun([task("a")], childReferences=[{"name": "pr-a", "pipelineTaskName": "a"}]))
    logs = [
        ContainerLog("pr-a", "step-one", "1\n"),
        ContainerLog("pr-a", "step-two", "2\n"),
        ContainerLog("x", "s", ""),
    ]
    owned, others = logs_by_node(pr, logs)
    assert owned == {"a": logs[:2]} and others == logs[2:]

    tr = run_graph({"kind": "TaskRun", "metadata": {"name": "tr"}, "spec": {"taskSpec": {"steps": [{"name": "one"}]}}})
    owned, others = logs_by_node(tr, [ContainerLog("tr", "step-one", "1\n"), ContainerLog("tr", "sidecar-db", "db\n")])
    assert [log.text for log in owned["one"]] == ["1\n"] and [log.container for log in others] == ["sidecar-db"]
