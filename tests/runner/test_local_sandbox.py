"""Hostile steps on the local backend, each asserted to fail: they run sandboxed (runner/local/sandbox.py), as an
unprivileged user, without the hub's data dir, environment or processes, and nothing they start outlives them."""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import sqlite3
import threading
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy import create_engine

from runner.backends import BackendRun, backend_named
from runner.local.sandbox import STEP_UID
from runner.objects import ObjectStore
from tests.runner.killed_runs import kill_run_once_locked

SECRET = "registry-password-0451"


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A hub data dir as a hub leaves it: its database, registry credentials, blobs and another run's files."""
    data = tmp_path / "data"
    (data / "blobs").mkdir(parents=True)
    with sqlite3.connect(data / "taskhub.db") as db:
        db.execute("CREATE TABLE api_tokens (name TEXT, token_hash TEXT)")
        db.execute("INSERT INTO api_tokens VALUES ('admin', 'hash-of-the-admin-token')")
    (data / "registry-credentials.json").write_text(json.dumps({"127.0.0.1:5000": {"password": SECRET}}))
    other = data / "local-runs" / "runs" / "other-run.abc" / "pods"
    other.mkdir(parents=True)
    (other / "result").write_text("another run's result")
    monkeypatch.setenv("TASKHUB_TEST_HUB_SECRET", SECRET)  # in the environment of the process running the executor
    return data


@pytest.fixture
def objects(tmp_path: Path, sqlite_templates: dict[str, Path]) -> ObjectStore:
    """An object store holding the claim `escape`."""
    shutil.copy(sqlite_templates["migrated"], tmp_path / "objects.db")
    store = ObjectStore(create_engine(f"sqlite:///{tmp_path / 'objects.db'}"))
    store.apply({"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "escape"}, "spec": {}})
    return store


def run_task(
    data: Path, objects: ObjectStore, steps: list[dict[str, Any]], **spec: Any
) -> tuple[BackendRun, dict[str, str]]:
    """The TaskRun's end on the local backend of the hub whose data dir is `data`, and each container's output."""
    task_spec = {"steps": steps, **spec.pop("task", {})}
    task = {"apiVersion": "tekton.dev/v1", "kind": "TaskRun", "metadata": {"name": "hostile"},
            "spec": {**spec, "taskSpec": task_spec}}  # fmt: skip
    backend = backend_named("local", data, None, objects=objects)
    assert backend.unavailable_reason() is None
    output: dict[str, str] = {}

    def line(_task_run: str, container: str, text: str) -> None:
        output[container] = output.get(container, "") + text

    return backend.run(task, [], log=line, cancel=threading.Event()), output


def steps_of(result: BackendRun) -> dict[str, dict[str, Any]]:
    return {s["name"]: s["terminated"] for s in result.object["status"]["steps"]}


def test_a_step_reads_nothing_of_the_hub_data_dir_environment_or_processes(
    data_dir: Path, objects: ObjectStore
) -> None:
    hub = os.getpid()
    attempts = {
        "database": f"cat {data_dir}/taskhub.db",
        "credentials": f"cat {data_dir}/registry-credentials.json",
        "other-run": f"cat {data_dir}/local-runs/runs/other-run.abc/pods/result",
        "hub-environ": f"cat /proc/{hub}/environ",
        "hub-root": f"ls /proc/{hub}/root/",
    }
    steps = [{"name": name, "image": "alpine", "onError": "continue", "script": script}
             for name, script in attempts.items()]  # fmt: skip
    steps.append({"name": "listing", "image": "alpine", "script": f"ls -A {data_dir} {data_dir}/local-runs/runs"})
    steps.append({"name": "who", "image": "alpine", "script": "id -u; env; ls /proc"})
    result, output = run_task(data_dir, objects, steps)
    states = steps_of(result)
    for name in attempts:
        assert states[name]["exitCode"] != 0, (name, output[f"step-{name}"])
        assert "No such file or directory" in output.get(f"step-{name}", "")
    # Only the way to the run's own directory is there: no database, no credentials, no other run.
    [own] = [p.name for p in (data_dir / "local-runs" / "runs").iterdir() if p.name.startswith("hostile.")]
    runs = data_dir / "local-runs" / "runs"
    assert output["step-listing"].split() == [f"{data_dir}:", "local-runs", f"{runs}:", own]
    who = output["step-who"]
    assert who.splitlines()[0] == str(STEP_UID if os.geteuid() == 0 else os.geteuid())
    assert SECRET not in who and "TASKHUB" not in who
    assert str(hub) not in who.split()  # its own PID namespace: the hub's processes are not there
    assert SECRET not in "".join(output.values())
    assert "hash-of-the-admin-token" not in "".join(output.values())


def test_a_step_cannot_write_into_the_data_dir_nor_mount_it(data_dir: Path, objects: ObjectStore) -> None:
    result, output = run_task(
        data_dir,
        objects,
        [{"name": "write", "image": "alpine", "onError": "continue",
          "script": f"echo owned > {data_dir}/owned; sqlite3 {data_dir}/taskhub.db 'DELETE FROM api_tokens'"},
         {"name": "mount", "image": "alpine", "script": "cat /data/registry-credentials.json",
          "volumeMounts": [{"name": "data", "mountPath": "/data"}]}],
        task={"volumes": [{"name": "data", "hostPath": {"path": str(data_dir)}}]},
    )  # fmt: skip
    assert not (data_dir / "owned").exists()
    with sqlite3.connect(data_dir / "taskhub.db") as db:
        assert db.execute("SELECT name FROM api_tokens").fetchall() == [("admin",)]
    assert steps_of(result)["write"]["exitCode"] != 0
    condition = result.object["status"]["conditions"][0]
    assert condition["status"] == "False"
    assert "the hub's data is not visible to steps" in condition["message"]
    assert SECRET not in "".join(output.values())


ESCAPE = """
setsid sh -c 'exec 9>$(workspaces.w.path)/lock; flock 9; echo ready > $(workspaces.w.path)/ready; sleep 8; echo late' \
  </dev/null >/dev/null 2>&1 &
until [ -f $(workspaces.w.path)/ready ]; do sleep 0.05; done
"""


def lock_is_free(path: Path) -> bool:
    """True when no process holds the lock the escaped child took (a dead process holds none)."""
    with open(path, "w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True


@pytest.mark.parametrize("ending", ["timeout", "exit"])
def test_a_setsid_child_ends_with_its_step(data_dir: Path, objects: ObjectStore, ending: str) -> None:
    step = {"name": "escape", "image": "alpine", "script": ESCAPE + ("sleep 60\n" if ending == "timeout" else "")}
    if ending == "timeout":
        step["timeout"] = "2s"
    claim = {"name": "w", "persistentVolumeClaim": {"claimName": "escape"}}
    result, output = run_task(data_dir, objects, [step], workspaces=[claim], task={"workspaces": [{"name": "w"}]})
    claim_dir = data_dir / "local-runs" / "claims" / "default" / "escape"
    assert (claim_dir / "ready").read_text() == "ready\n"  # the child ran and took the lock
    assert lock_is_free(claim_dir / "lock")  # and it is gone as soon as the run returned
    condition = result.object["status"]["conditions"][0]
    if ending == "timeout":
        assert (condition["status"], condition["reason"]) == ("False", "StepFailed")
        assert "exceeded the specified timeout limit" in condition["message"]
    else:
        assert condition["status"] == "True"
    assert "late" not in "".join(output.values())


def test_a_killed_taskhub_run_leaves_no_step_process_behind(tmp_path: Path) -> None:
    # The process running the executor today is `taskhub run` (and the serve worker's thread): kill it with SIGKILL.
    data = tmp_path / "data"
    claim_dir = data / "local-runs" / "claims" / "default" / "killed"
    run_file = tmp_path / "run.yaml"
    claim = {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "killed"}, "spec": {}}
    run_file.write_text(yaml.safe_dump(claim) + "---\n" + yaml.safe_dump({
        "apiVersion": "tekton.dev/v1", "kind": "TaskRun", "metadata": {"name": "killed"},
        "spec": {"workspaces": [{"name": "w", "persistentVolumeClaim": {"claimName": "killed"}}],
                 "taskSpec": {"workspaces": [{"name": "w"}],
                              "steps": [{"image": "alpine", "script": ESCAPE + "sleep 60\n"}]}},
    }))  # fmt: skip
    kill_run_once_locked(run_file, {**os.environ, "TASKHUB_DATA_DIR": str(data)}, claim_dir)
