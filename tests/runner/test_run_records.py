"""Run records through the launcher, on real databases: local runs that succeed, fail, are cancelled or cannot be
resolved, and a run on the real kube-apiserver with the fake controller and kubelet of test_kube_backend."""

from __future__ import annotations

import shutil
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine

from hub.config import Settings
from hub.registries import Resolvers
from runner.backends import KubernetesBackend, LocalBackend
from runner.launch import RunLauncher
from runner.local_store import InstalledStore
from runner.pinning import CatalogReferenceResolver
from runner.records import RunRecords
from runner.run_details import logs_as_text
from tests.kube_fixture import KubeCluster
from tests.runner.test_kube_backend import PIPELINE_RUN, FakeTekton, fake_node, tekton  # noqa: F401

PIPELINE = {
    "apiVersion": "tekton.dev/v1",
    "kind": "PipelineRun",
    "metadata": {"name": "greetings"},
    "spec": {
        "params": [{"name": "who", "value": "world"}],
        "pipelineSpec": {
            "params": [{"name": "who"}],
            "tasks": [
                {"name": "greet", "params": [{"name": "who", "value": "$(params.who)"}],
                 "taskSpec": {"params": [{"name": "who"}],
                              "steps": [{"name": "hello", "image": "alpine",
                                         "script": "echo hello $(params.who)\necho second line"}]}},
                {"name": "check", "runAfter": ["greet"],
                 "taskSpec": {"steps": [{"name": "exit", "image": "alpine", "script": "echo checking; exit $CODE",
                                         "env": [{"name": "CODE", "value": "0"}]}]}},
                {"name": "report", "runAfter": ["check"],
                 "taskSpec": {"steps": [{"name": "done", "image": "alpine", "script": "echo all good"}]}},
            ],
        },
    },
}  # fmt: skip


def pipeline(code: int = 0, sleep: int = 0) -> dict[str, Any]:
    run: dict[str, Any] = _copy(PIPELINE)
    step = run["spec"]["pipelineSpec"]["tasks"][1]["taskSpec"]["steps"][0]
    step["env"][0]["value"] = str(code)
    if sleep:
        step["script"] = f"echo checking; sleep {sleep}; exit $CODE"
    return run


def _copy(obj: Any) -> Any:
    import copy

    return copy.deepcopy(obj)


@pytest.fixture
def records(engine: Engine) -> RunRecords:
    return RunRecords(engine)


@pytest.fixture
def launcher(records: RunRecords, settings: Settings, engine: Engine, tmp_path: Path) -> RunLauncher:
    store = InstalledStore(engine, "default")
    resolvers = Resolvers(settings, engine)
    resolve_ref = CatalogReferenceResolver(engine, resolvers.bundles, resolvers.hub, store, "http://hub.test/")
    return RunLauncher(records, resolve_ref, LocalBackend(tmp_path / "work", store.objects))


def test_a_local_pipeline_run_is_recorded_with_its_tasks_and_logs_and_outlives_its_work_directory(
    launcher: RunLauncher, records: RunRecords, tmp_path: Path
) -> None:
    seen: list[tuple[str, str, str]] = []
    result = launcher.launch(pipeline(), created_by="alice", log=lambda *line: seen.append(line))
    assert result.succeeded and result.object is not None
    assert ("greetings-greet", "step-hello", "hello world\n") in seen  # the caller's sink got the lines too

    shutil.rmtree(tmp_path / "work")
    detail = records.get(result.run_id)
    assert detail is not None
    assert (detail.status, detail.kind, detail.name, detail.backend, detail.created_by) == (
        "Succeeded", "PipelineRun", "greetings", "local", "alice",
    )  # fmt: skip
    assert detail.params == [{"name": "who", "value": "world"}]
    assert detail.started_at and detail.completed_at and detail.completed_at >= detail.started_at
    assert [(t.task, t.task_run, t.status) for t in detail.tasks] == [
        ("greet", "greetings-greet", "Succeeded"),
        ("check", "greetings-check", "Succeeded"),
        ("report", "greetings-report", "Succeeded"),
    ]
    assert all(t.started_at is not None for t in detail.tasks)
    assert "taskhub.dev/lock" in detail.object["metadata"]["annotations"]
    text = logs_as_text(detail, records.logs(result.run_id))
    assert "[greet : hello] hello world\n[greet : hello] second line\n" in text
    assert "[report : done] all good" in text
    only = records.logs(result.run_id, detail.task_run_named("check"))
    assert [(log.container, log.text) for log in only] == [("step-exit", "checking\n")]


def test_a_failing_run_is_recorded_failed_with_the_failing_step_and_the_skipped_task(
    launcher: RunLauncher, records: RunRecords
) -> None:
    result = launcher.launch(pipeline(code=3))
    assert not result.succeeded and result.status == "Failed"
    detail = records.get(result.run_id)
    assert detail is not None and detail.status == "Failed" and detail.reason == "Failed"
    rows = {t.task: t for t in detail.tasks}
    assert (rows["check"].status, rows["check"].reason) == ("Failed", "StepFailed")
    assert "exited with code 3" in rows["check"].message
    assert rows["report"].status == "Skipped" and rows["report"].task_run == ""
    summaries, total = records.recent(status="Failed")
    assert total == 1 and summaries[0].id == result.run_id


def test_a_reference_that_cannot_be_resolved_is_recorded_failed_with_the_message(
    launcher: RunLauncher, records: RunRecords
) -> None:
    run = pipeline()
    run["spec"]["pipelineSpec"]["tasks"][0] = {
        "name": "greet",
        "taskRef": {"resolver": "hub", "params": [{"name": "name", "value": "no-such-task"}]},
    }
    result = launcher.launch(run)
    assert result.object is None and result.reason == "ResolutionFailed"
    assert result.message.startswith("spec.pipelineSpec.tasks[greet].taskRef:")
    detail = records.get(result.run_id)
    assert detail is not None
    assert (detail.status, detail.reason, detail.message) == ("Failed", "ResolutionFailed", result.message)
    assert detail.started_at is None and detail.completed_at is not None


def test_a_running_run_shows_its_tasks_as_they_stand_and_a_cancel_on_the_record_ends_it_cancelled(
    launcher: RunLauncher, records: RunRecords
) -> None:
    started = threading.Event()
    run_id = launcher.create(pipeline(sleep=60))
    with ThreadPoolExecutor(1) as pool:
        running = pool.submit(launcher.execute, run_id, pipeline(sleep=60), on_started=lambda *_: started.set())
        assert started.wait(10)
        deadline = time.monotonic() + 10
        while not records.logs(run_id, "greetings-check"):  # stored within a second, while the run goes
            assert time.monotonic() < deadline, "the check step's output was not stored while it ran"
            time.sleep(0.1)
        while (live := records.get(run_id)) is not None and len(live.tasks) < 2:  # the tasks, as they stand
            assert time.monotonic() < deadline, "the running task was not stored while it ran"
            time.sleep(0.1)
        assert live is not None and live.status == "Running"
        assert [(t.task, t.status) for t in live.tasks][:2] == [("greet", "Succeeded"), ("check", "Running")]
        assert {t.task: t for t in live.tasks}["check"].started_at is not None
        began = time.monotonic()
        assert records.request_cancel(run_id) == "Running"  # as `POST /v1/runs/ID/cancel` in any process does
        result = running.result(timeout=30)
    assert time.monotonic() - began < 10
    assert result.status == "Cancelled"
    detail = records.get(run_id)
    assert detail is not None and detail.status == "Cancelled" and detail.cancel_requested
    assert {t.task: t.status for t in detail.tasks}["check"] == "Cancelled"
    assert records.request_cancel(run_id) == "Cancelled"  # ended: left as it is


def test_recent_pages_newest_first_and_counts_all(launcher: RunLauncher, records: RunRecords) -> None:
    ids = [launcher.create(pipeline()) for _ in range(5)]
    page, total = records.recent(limit=2, offset=1)
    assert total == 5 and [s.id for s in page] == [ids[3], ids[2]]
    assert all(s.status == "Pending" and s.duration is None for s in page)
    assert records.get(max(ids) + 1) is None and records.request_cancel(max(ids) + 1) is None


def test_a_kubernetes_run_is_recorded_with_its_task_runs_and_logs(
    records: RunRecords,
    launcher: RunLauncher,
    kube_cluster: KubeCluster,
    kube_namespace: str,
    tekton: FakeTekton,  # noqa: F811
) -> None:
    backend = KubernetesBackend(kube_namespace, str(kube_cluster.kubeconfig))
    on_cluster = RunLauncher(records, launcher.resolve_ref, backend)
    events: list[str] = []
    with ThreadPoolExecutor(1) as pool:
        controller = pool.submit(tekton.run_pipeline)
        result = on_cluster.launch(_copy(PIPELINE_RUN), on_event=events.append)
        pr = controller.result()
    assert result.succeeded, result
    assert f"pipelinerun/{pr}: Succeeded" in events
    detail = records.get(result.run_id)
    assert detail is not None
    assert (detail.status, detail.backend, detail.name, detail.namespace) == (
        "Succeeded", "kubernetes", pr, kube_namespace,
    )  # fmt: skip
    assert [(t.task, t.task_run, t.status) for t in detail.tasks] == [("greet", f"{pr}-greet", "Succeeded")]
    text = logs_as_text(detail, records.logs(result.run_id))
    assert "[greet : hello] hello from the cluster" in text
    assert "[greet : count] one\n[greet : count] two\n[greet : count] three\n" in text


def test_a_run_whose_job_lease_lapsed_is_shown_abandoned_and_runs_under_a_live_lease_are_not(
    records: RunRecords, engine: Engine
) -> None:
    from sqlalchemy import update

    from jobs import RUN, JobQueue
    from jobs.models import Job

    queue = JobQueue(engine)
    lapsed, reclaimed, held, queued = (records.create(pipeline(), backend=b) for b in ("local", "kubernetes", "local",
                                                                                        "local"))  # fmt: skip
    for run_id in (lapsed, reclaimed, held, queued):
        queue.enqueue(RUN, str(run_id))
    claims = {int(c.target): c for c in queue.claim("host-a:1:x", limit=3)}  # the first three, oldest first
    for run_id in (lapsed, reclaimed, held):
        records.started(run_id, pipeline(), [])

    def expire(run_id: int) -> None:  # what a killed worker leaves once its lease runs out, on whatever host it was
        with engine.begin() as conn:
            conn.execute(update(Job).where(Job.id == claims[run_id].id).values(lease_expires_at=Job.started_at))

    expire(reclaimed)
    assert [(r.target, r.state) for r in queue.reclaim_expired()] == [(str(reclaimed), "abandoned")]
    expire(lapsed)  # not yet taken back by any worker: its lease alone decides

    summaries, _ = records.recent()
    statuses = {s.id: (s.status, s.reason) for s in summaries}
    assert statuses[lapsed] == statuses[reclaimed] == ("Failed", "Abandoned")
    assert statuses[held] == ("Running", "") and statuses[queued] == ("Pending", "")
    detail = records.get(lapsed)
    assert detail is not None and detail.message == (
        "its worker host-a:1:x stopped renewing the lease of its job before the run ended"
    )
    cluster = records.get(reclaimed)
    assert cluster is not None and "kubectl get pipelinerun greetings -n default" in cluster.message
    assert cluster.completed_at is not None


def test_a_step_printing_nul_bytes_keeps_its_logs_and_its_outcome(launcher: RunLauncher, records: RunRecords) -> None:
    run = _copy(PIPELINE)
    greet = run["spec"]["pipelineSpec"]["tasks"][0]["taskSpec"]["steps"][0]
    greet["script"] = "printf 'before\\000after\\n'\necho second line"
    result = launcher.launch(run, created_by="alice")
    detail = records.get(result.run_id)
    assert detail is not None and detail.status == "Succeeded", detail and detail.message
    text = logs_as_text(detail, records.logs(result.run_id))
    assert "[greet : hello] before\ufffdafter\n[greet : hello] second line\n" in text
    assert "[report : done] all good" in text
