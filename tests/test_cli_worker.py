"""`taskhub worker` as an operator runs it, and the command line's own work recorded as jobs: real processes on
SQLite and PostgreSQL."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from cryptography.fernet import Fernet
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from catalog.db import make_engine
from hub.config import Settings
from hub.models import RegistryCredential
from hub.services import Services
from jobs import CATALOG_SYNC, PUBLISH, REGISTRY_SYNC, JobQueue
from runner.records import RunRecords
from tests.conftest import free_port
from tests.jobs.processes import wait_until
from tests.runner.test_local_sandbox import ESCAPE
from tests.test_cli import TASKHUB, run, serving  # noqa: F401 (the fixture)


@pytest.fixture
def engine(run) -> Iterator[Engine]:  # noqa: F811
    run("db", "upgrade")
    engine = make_engine(run.env["TASKHUB_DATABASE_URL"])
    yield engine
    engine.dispose()


def start_worker(run, log: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:  # noqa: F811
    env = {**run.env, "TASKHUB_JOB_POLL_SECONDS": "0.1", **(env or {})}
    with log.open("wb") as out:
        return subprocess.Popen([TASKHUB, "worker", *args], env=env, stdout=out, stderr=out)


def test_a_worker_does_queued_syncs_and_stops_on_sigterm(run, engine, fixture_catalog, tmp_path):  # noqa: F811
    run("catalog", "add", "tekton", str(fixture_catalog))
    queue = JobQueue(engine)
    job = queue.enqueue(CATALOG_SYNC, "tekton", created_by="ci").id
    log = tmp_path / "worker.log"
    probes = f"127.0.0.1:{free_port()}"
    worker = start_worker(run, log, "--concurrency", "2", "--metrics-address", probes)
    try:
        wait_until(lambda: queue.get(job).state not in ("queued", "running"), "the sync job to end")
        assert queue.get(job).state == "succeeded", log.read_text()
        assert queue.get(job).result[0].startswith("tekton: 19 resources, 47 versions")
        listed = run("catalog", "list").stdout
        assert "tekton\tcommunity" in listed and "never synced" not in listed
        assert "taking catalog-sync, publish, registry-sync, run, trigger-event, 2 at a time" in log.read_text()
        with urllib.request.urlopen(f"http://{probes}/livez", timeout=10) as live:  # the kubelet's probe
            assert live.status == 200
        with urllib.request.urlopen(f"http://{probes}/metrics", timeout=10) as scraped:  # Prometheus'
            metrics = scraped.read().decode()
        assert 'taskhub_catalog_syncs_total{catalog="tekton",kind="catalog",outcome="success"} 1.0' in metrics
        assert 'taskhub_jobs_finished_total{kind="catalog-sync",outcome="succeeded"} 1.0' in metrics
    finally:
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(timeout=60) == 0, log.read_text()
    assert "SIGTERM: stopping" in log.read_text()


def test_a_worker_takes_only_the_kinds_it_is_given(run, engine, tmp_path):  # noqa: F811
    refused = run("worker", "--kinds", "catalog-sync,nope", check=False)
    assert refused.returncode == 2 and "unknown kind nope; the kinds are catalog-sync" in refused.stderr
    log = tmp_path / "worker.log"
    worker = start_worker(run, log, "--kinds", "run")
    try:
        wait_until(lambda: "taking run, 4 at a time" in log.read_text(), "the worker to start")
    finally:
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(timeout=60) == 0, log.read_text()


def test_the_command_lines_own_sync_and_publish_are_recorded_as_jobs(run, engine, fixture_catalog):  # noqa: F811
    run("catalog", "add", "tekton", str(fixture_catalog))
    run("catalog", "sync", "tekton")
    jobs, total = JobQueue(engine).list(kind="catalog-sync")
    assert total == 1 and jobs[0].state == "succeeded" and jobs[0].target == "tekton"
    assert jobs[0].result[0].startswith("tekton: 19 resources, 47 versions") and jobs[0].worker
    assert jobs[0].progress_message.startswith("read 47 versions")

    unreachable = run("catalog", "publish", "tekton", "--registry", "127.0.0.1:9/catalog", check=False)
    assert unreachable.returncode == 1
    (publish,), _ = JobQueue(engine).list(kind="publish")
    assert publish.state == "failed" and publish.payload == {"registry": "127.0.0.1:9/catalog"}
    assert publish.attempts == 1 and publish.error and publish.idempotent  # a worker may push it again
    login = ("--username", "me", "--password-stdin")
    assert run("catalog", "publish", "tekton", "--registry", "127.0.0.1:9/catalog", *login, stdin="pw\n",
               check=False).returncode == 1  # fmt: skip
    mine = JobQueue(engine).list(kind="publish", limit=1)[0][0]
    assert mine.state == "failed" and not mine.idempotent  # the caller's credentials: never pushed again elsewhere
    missing = run("catalog", "publish", "nope", "--registry", "127.0.0.1:9/catalog", check=False)
    assert "catalog 'nope' not found" in missing.stderr or "'nope'" in missing.stderr
    assert JobQueue(engine).list(kind="publish")[1] == 2  # a typo records no job


def _ended(queue: JobQueue, job: int) -> bool:
    return queue.get(job).state not in ("queued", "running")


def test_a_login_made_by_one_process_is_used_by_a_worker_with_another_data_dir(  # the production variant's pods
    run,  # noqa: F811
    engine,
    fixture_catalog,
    auth_registry,
    tmp_path,
):
    run.env["TASKHUB_SECRETS_KEY"] = Fernet.generate_key().decode()  # as the Secret `taskhub` gives every pod
    username, password = str(auth_registry.username), str(auth_registry.password)
    target = f"{auth_registry.host}/catalog"
    run("catalog", "add", "tekton", str(fixture_catalog))
    run("catalog", "sync", "tekton")
    added = run("registry", "add", "private", target, "--username", username, "--password-stdin", stdin=password)
    assert password not in added.stdout + added.stderr
    hub_data = Path(run.env["TASKHUB_DATA_DIR"])
    assert not (hub_data / "registry-credentials.json").exists() and not (hub_data / "secrets.key").exists()
    (row,) = Session(engine).scalars(select(RegistryCredential)).all()
    assert row.host == auth_registry.host
    assert password.encode() not in row.sealed and username.encode() not in row.sealed

    queue = JobQueue(engine)
    publish = queue.enqueue(PUBLISH, "tekton", {"registry": target}, created_by="ci").id
    log = tmp_path / "worker.log"
    worker = start_worker(run, log, env={"TASKHUB_DATA_DIR": str(tmp_path / "worker-data")})
    try:
        wait_until(lambda: _ended(queue, publish), "the publish to end")
        assert queue.get(publish).state == "succeeded", queue.get(publish).error
        assert "47 pushed, 0 already there, 0 failed" in " ".join(queue.get(publish).result)
        synced = queue.enqueue(REGISTRY_SYNC, "private", created_by="ci").id
        wait_until(lambda: _ended(queue, synced), "the registry sync to end")
        assert queue.get(synced).state == "succeeded", queue.get(synced).error
        assert queue.get(synced).result[0].startswith("private: 19 resources, 47 versions")
    finally:
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(timeout=60) == 0, log.read_text()
    assert password not in log.read_text()

    assert password not in run("registry", "list").stdout
    key = run.env["TASKHUB_SECRETS_KEY"]
    run.env["TASKHUB_SECRETS_KEY"] = Fernet.generate_key().decode()
    refused = run("registry", "sync", "private", check=False)
    assert refused.returncode == 1 and "Traceback" not in refused.stderr
    assert f"the registry credentials of {auth_registry.host} were sealed with another key" in refused.stderr

    run.env["TASKHUB_SECRETS_KEY"] = key
    assert run("registry", "logout", auth_registry.host).stdout == f"forgot the login for {auth_registry.host}\n"
    anonymous = run("registry", "sync", "private", "--full", check=False)
    assert anonymous.returncode == 1 and "no credentials were given" in anonymous.stderr
    login = ("registry", "login", auth_registry.host, "--username", username, "--password-stdin")
    assert run(*login, stdin=password).stdout == f"stored the login of {username} for {auth_registry.host}\n"
    assert run("registry", "sync", "private", "--full").returncode == 0


def worker_children(pid: int) -> list[int]:
    """The `taskhub worker` processes that process `pid` started."""
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        for child in (task / "children").read_text().split():
            with contextlib.suppress(OSError):  # it ended meanwhile
                if b"hub.cli\0worker" in Path(f"/proc/{child}/cmdline").read_bytes():
                    found.append(int(child))
    return found


def test_serve_runs_one_embedded_worker_unless_told_not_to(run, engine, fixture_catalog):  # noqa: F811
    run("catalog", "add", "tekton", str(fixture_catalog))
    token = run("token", "create", "ci", "--scope", "catalog:refresh").stdout.strip()
    with serving(run, "--workers", "1", "--no-worker") as (_, server, _, _):
        assert worker_children(server.pid) == []
    with serving(run, "--workers", "1") as (base, server, _, _):
        (worker,) = worker_children(server.pid)
        headers = {"Authorization": f"Bearer {token}"}
        refresh = requests.post(f"{base}/v1/catalog/tekton/refresh", headers=headers, timeout=10)
        assert refresh.status_code == 202
        location = base + refresh.headers["Location"]

        def ended() -> dict | None:
            job = requests.get(location, headers=headers, timeout=10).json()["data"]
            return job if job["state"] not in ("queued", "running") else None

        job = wait_until(ended, "the refresh to end")
        assert job["state"] == "succeeded" and job["result"][0].startswith("tekton: 19 resources, 47 versions")
    assert server.returncode == 0 and not Path(f"/proc/{worker}").exists()  # stopped with serve


def test_serve_starts_another_worker_when_its_worker_dies(run, engine, fixture_catalog):  # noqa: F811
    run("catalog", "add", "tekton", str(fixture_catalog))
    token = run("token", "create", "ci", "--scope", "catalog:refresh").stdout.strip()
    with serving(run, "--workers", "1") as (base, server, _, errors):
        (first,) = wait_until(lambda: worker_children(server.pid), "the embedded worker to start")
        os.kill(first, signal.SIGKILL)
        said = f"the job worker (pid {first}) was killed by SIGKILL; starting another in 1 s"
        wait_until(lambda: any(said in line for line in errors), "serve to say its worker died")
        (second,) = wait_until(lambda: [p for p in worker_children(server.pid) if p != first], "another worker")
        headers = {"Authorization": f"Bearer {token}"}
        refresh = requests.post(f"{base}/v1/catalog/tekton/refresh", headers=headers, timeout=10)
        location = base + refresh.headers["Location"]

        def ended() -> dict | None:
            job = requests.get(location, headers=headers, timeout=10).json()["data"]
            return job if job["state"] not in ("queued", "running") else None

        job = wait_until(ended, "the new worker to do the refresh")
        assert job["state"] == "succeeded" and f":{second}:" in job["worker"], job
    assert server.returncode == 0 and not Path(f"/proc/{second}").exists()  # stopped with serve, none started after


def test_jobs_list_show_and_cancel(run, engine, fixture_catalog):  # noqa: F811
    run("catalog", "add", "tekton", str(fixture_catalog))
    run("catalog", "sync", "tekton")
    queued = JobQueue(engine).enqueue(CATALOG_SYNC, "tekton", created_by="ci").id
    listed = run("jobs", "list").stdout.splitlines()
    assert listed[0].split() == ["ID", "KIND", "TARGET", "STATE", "ATTEMPTS", "PROGRESS", "CREATED", "ERROR"]
    assert [line.split()[:4] for line in listed[1:]] == [
        [str(queued), "catalog-sync", "tekton", "queued"], [str(queued - 1), "catalog-sync", "tekton", "succeeded"],
    ]  # fmt: skip
    assert len(run("jobs", "list", "--state", "queued").stdout.splitlines()) == 2
    shown = run("jobs", "show", str(queued - 1)).stdout
    assert "State:      succeeded" in shown and "Result:\n  tekton: 19 resources, 47 versions" in shown
    assert "cancelled" in run("jobs", "cancel", str(queued)).stdout
    again = run("jobs", "cancel", str(queued), check=False)
    assert again.returncode == 1 and f"job {queued} already ended: cancelled" in again.stderr
    assert run("jobs", "show", "4242", check=False).stderr.strip() == "Error: job 4242 not found"
    data = json.loads(run("jobs", "list", "-o", "json", "--state", "cancelled").stdout)
    assert data["total"] == 1 and data["data"][0]["id"] == queued and data["data"][0]["createdBy"] == "ci"


def test_a_run_whose_worker_is_killed_is_abandoned_from_its_lease_and_leaves_no_process(run, engine, tmp_path):  # noqa: F811
    data = Path(run.env["TASKHUB_DATA_DIR"])
    claim_dir = data / "local-runs" / "claims" / "default" / "killed"
    claim = {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "killed"}, "spec": {}}
    (tmp_path / "claim.yaml").write_text(json.dumps(claim))
    run("apply", "-f", str(tmp_path / "claim.yaml"))
    task_run = {
        "apiVersion": "tekton.dev/v1", "kind": "TaskRun", "metadata": {"name": "killed"},
        "spec": {"workspaces": [{"name": "w", "persistentVolumeClaim": {"claimName": "killed"}}],
                 "taskSpec": {"workspaces": [{"name": "w"}],
                              "steps": [{"image": "alpine", "script": ESCAPE + "sleep 60\n"}]}},
    }  # fmt: skip
    settings = Settings.from_env({**run.env, "TASKHUB_JOB_LEASE_SECONDS": "2"})
    run_id, job_id = Services(settings, engine).runs.submit(task_run, created_by="ci")
    log, short_lease = tmp_path / "worker.log", {"TASKHUB_JOB_LEASE_SECONDS": "2"}
    worker = start_worker(run, log, env=short_lease)
    try:
        # The event: the step and the child it escaped with `setsid` are running.
        wait_until(lambda: (claim_dir / "ready").exists() or worker.poll() is not None, "the step to start")
        assert worker.poll() is None, log.read_text()
    finally:
        worker.kill()
        worker.wait()
    # Blocks until the lock's holder is gone; -w only bounds a failure, the pass comes as soon as it dies.
    assert subprocess.run(["flock", "-w", "60", str(claim_dir / "lock"), "true"], check=False).returncode == 0
    records = RunRecords(engine)

    def abandoned() -> bool:
        detail = records.get(run_id)
        return detail is not None and (detail.status, detail.reason) == ("Failed", "Abandoned")

    wait_until(abandoned, "the run to be abandoned from its job's lease")
    detail = records.get(run_id)
    assert detail is not None and "stopped renewing the lease of its job before the run ended" in detail.message
    other = start_worker(run, tmp_path / "other.log", "--kinds", "catalog-sync", env=short_lease)
    try:  # any worker takes the job back, whatever kinds it does: abandoned, never run again
        queue = JobQueue(engine)
        wait_until(lambda: queue.get(job_id).state == "abandoned", "another worker to take the job back")
    finally:
        other.send_signal(signal.SIGTERM)
        assert other.wait(timeout=60) == 0


def test_sigterm_gives_a_running_run_the_grace_period_then_cancels_it(run, engine, tmp_path):  # noqa: F811
    task_run = {
        "apiVersion": "tekton.dev/v1", "kind": "TaskRun", "metadata": {"name": "long"},
        "spec": {"taskSpec": {"steps": [{"image": "alpine", "script": "echo started\nsleep 60\necho late"}]}},
    }  # fmt: skip
    run_id, job_id = Services(Settings.from_env(run.env), engine).runs.submit(task_run, created_by="ci")
    log, records = tmp_path / "worker.log", RunRecords(engine)
    worker = start_worker(run, log, env={"TASKHUB_SHUTDOWN_GRACE_SECONDS": "1"})
    try:
        wait_until(lambda: any("started" in c.text for c in records.logs(run_id)), "the step to start")
    finally:
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(timeout=60) == 0, log.read_text()
    detail = records.get(run_id)
    assert detail is not None and detail.status == "Cancelled"
    assert "late" not in "".join(c.text for c in records.logs(run_id))
    job = JobQueue(engine).get(job_id)
    assert job is not None and job.state == "cancelled"
    assert "waiting up to 1 s for 1 running jobs" in log.read_text()
