"""`taskhub runs list|show|logs` after `taskhub run`, as a user reads them: statuses, task rows, the lock, log lines."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner, Result

from hub.cli import main
from tests.runner.test_run_cli import RUN, TASK, TASKHUB


@pytest.fixture
def env(tmp_path: Path, database_url: str) -> dict[str, str]:
    return {"TASKHUB_DATA_DIR": str(tmp_path / "data"), "TASKHUB_DATABASE_URL": database_url}


@pytest.fixture
def taskhub(env: dict[str, str], tmp_path: Path):
    """Runs the CLI in-process against a database holding the `local` catalog with the exit-with Task."""

    def taskhub(*args: str, code: int = 0) -> Result:
        done = CliRunner().invoke(main, list(args), env=env)
        assert done.exit_code == code, done.output
        return done

    catalog = tmp_path / "catalog" / "task/exit-with/0.1"
    catalog.mkdir(parents=True)
    (catalog / "exit-with.yaml").write_text(TASK)
    (catalog / "README.md").write_text("# exit-with\n")
    taskhub("catalog", "add", "local", str(tmp_path / "catalog"))
    taskhub("catalog", "sync", "local")
    (tmp_path / "run.yaml").write_text(RUN)
    return taskhub


def test_a_run_is_recorded_and_list_show_and_logs_read_it_back(taskhub, tmp_path: Path) -> None:
    ran = taskhub("run", "-f", str(tmp_path / "run.yaml"))
    assert ran.stderr.splitlines()[0] == "run 1"
    shutil.rmtree(tmp_path / "data" / "local-runs")  # the record does not need the executor's work directory

    listing = taskhub("runs", "list").stdout.splitlines()
    assert listing[0].split() == ["ID", "NAME", "KIND", "BACKEND", "STATUS", "STARTED", "DURATION"]
    assert listing[1].split()[:5] == ["1", "local-run", "PipelineRun", "local", "Succeeded"]

    shown = taskhub("runs", "show", "1").stdout
    assert "Status:     Succeeded" in shown and "code = 0" in shown
    tasks = shown.split("Tasks\n")[1].splitlines()
    assert tasks[0].split() == ["TASK", "TASKRUN", "STATUS", "STARTED", "DURATION"]
    assert tasks[1].split()[:3] == ["first", "local-run-first", "Succeeded"]
    references = shown.split("References\n")[1].splitlines()
    entry = references[1].split()
    assert entry[:4] == ["spec.pipelineSpec.tasks[first].taskRef", "Task", "exit-with", "0.1"]
    assert entry[4].startswith("sha256:") and len(entry[4]) == len("sha256:") + 64

    logs = taskhub("runs", "logs", "1").stdout
    assert logs == "[first : say] hello from exit-with\n"
    assert taskhub("runs", "logs", "1", "--task", "first").stdout == logs
    assert taskhub("runs", "logs", "1", "--task", "local-run-first").stdout == logs

    as_json = json.loads(taskhub("runs", "show", "1", "-o", "json").stdout)
    assert as_json["lock"][0]["version"] == "0.1" and as_json["tasks"][0]["taskRun"] == "local-run-first"
    assert yaml.safe_load(taskhub("runs", "show", "1", "-o", "yaml").stdout)["status"] == "Succeeded"


def test_failed_runs_show_the_failing_task_and_can_be_listed_by_status(taskhub, tmp_path: Path) -> None:
    taskhub("run", "-f", str(tmp_path / "run.yaml"))
    failed = taskhub("run", "-f", str(tmp_path / "run.yaml"), "-p", "code=3", code=1)
    assert failed.stderr.splitlines()[0] == "run 2"

    listed = json.loads(taskhub("runs", "list", "--status", "Failed", "-o", "json").stdout)
    assert listed["total"] == 1 and [r["id"] for r in listed["data"]] == [2]
    assert [r["status"] for r in json.loads(taskhub("runs", "list", "-o", "json").stdout)["data"]] == [
        "Failed",
        "Succeeded",
    ]
    shown = taskhub("runs", "show", "2").stdout
    assert "code = 3" in shown
    row = shown.split("Tasks\n")[1].splitlines()[1]
    assert row.split()[:4] == ["first", "local-run-first", "Failed", "(StepFailed)"]


def test_a_resolution_failure_is_one_line_and_recorded(taskhub, tmp_path: Path) -> None:
    (tmp_path / "bad.yaml").write_text(RUN.replace("exit-with}", "missing}"))
    failed = taskhub("run", "-f", str(tmp_path / "bad.yaml"), code=1)
    assert len(failed.stderr.strip().splitlines()) == 1
    assert failed.stderr.startswith("Error: spec.pipelineSpec.tasks[first].taskRef: requested resource")

    listing = taskhub("runs", "list").stdout.splitlines()
    assert listing[1].split()[:5] == ["1", "local-run", "PipelineRun", "local", "Failed"]
    shown = taskhub("runs", "show", "1").stdout
    assert "Status:     Failed (ResolutionFailed)" in shown
    assert "Message:    spec.pipelineSpec.tasks[first].taskRef: requested resource" in shown
    assert "Tasks" not in shown and "Started:    -" in shown
    assert taskhub("runs", "logs", "1").stderr == "no logs recorded for run 1\n"


def test_pin_only_records_nothing_and_unknown_ids_are_one_line_errors(taskhub, tmp_path: Path) -> None:
    taskhub("run", "-f", str(tmp_path / "run.yaml"), "--pin-only")
    assert taskhub("runs", "list").stderr == "no runs recorded\n"
    for command in (["show", "42"], ["logs", "42"]):
        missing = taskhub("runs", *command, code=1)
        assert missing.output == "Error: run 42 not found\n"
    taskhub("run", "-f", str(tmp_path / "run.yaml"))
    unknown_task = taskhub("runs", "logs", "1", "--task", "nope", code=1)
    assert unknown_task.output == "Error: run 1 has no task or TaskRun named 'nope'\n"


def test_ctrl_c_cancels_the_run_and_records_it_cancelled(taskhub, env: dict[str, str], tmp_path: Path) -> None:
    sleeping = yaml.safe_load(RUN)
    task = sleeping["spec"]["pipelineSpec"]["tasks"][0]
    task.pop("taskRef")
    task["taskSpec"] = {"steps": [{"name": "nap", "image": "alpine", "script": "echo napping; sleep 120"}]}
    (tmp_path / "sleep.yaml").write_text(yaml.safe_dump(sleeping))
    process = subprocess.Popen(
        [TASKHUB, "run", "-f", str(tmp_path / "sleep.yaml")],
        env={**os.environ, **env}, stderr=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert process.stderr is not None
    lines = [process.stderr.readline(), process.stderr.readline()]
    assert lines == ["run 1\n", "[local-run-first/nap] napping\n"]
    began = time.monotonic()
    process.send_signal(signal.SIGINT)
    _, rest = process.communicate(timeout=30)
    assert time.monotonic() - began < 10
    assert process.returncode == 1 and "cancelling the run" in rest
    shown = taskhub("runs", "show", "1").stdout
    assert "Status:     Cancelled" in shown
    assert taskhub("runs", "logs", "1").stdout == "[first : nap] napping\n"
