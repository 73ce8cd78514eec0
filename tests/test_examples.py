"""The example PipelineRun that `make run` runs: the test catalog's yq Task through the hub resolver, pinned and
run by the embedded executor, as a user runs it from the command line."""

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import REPO

TASKHUB = str(Path(sys.executable).parent / "taskhub")


def test_the_example_pipelinerun_runs_on_the_sample_catalog(tmp_path, fixture_catalog):
    env = {**os.environ, "TASKHUB_DATA_DIR": str(tmp_path)}
    env.pop("TASKHUB_DATABASE_URL", None)  # the embedded default, SQLite in the data directory

    def taskhub(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([TASKHUB, *args], env=env, capture_output=True, text=True, timeout=120)

    for args in (("db", "upgrade"), ("catalog", "add", "tekton", str(fixture_catalog)), ("catalog", "sync", "tekton")):
        assert taskhub(*args).returncode == 0
    done = taskhub("run", "-f", str(REPO / "examples/pipelinerun-hub.yaml"), "-o", "json")
    assert done.returncode == 0, done.stderr
    run = json.loads(done.stdout)
    assert run["status"]["conditions"][0]["reason"] == "Succeeded"
    assert run["status"]["results"] == [{"name": "image-line", "value": "image: registry.example.com/app:1.2.3\n"}]
    lock = json.loads(run["metadata"]["annotations"]["taskhub.dev/lock"])
    # yq 0.5 is in the test catalog but rejected (its label says 0.4), so the greatest match of ">=0.4, <1.0" is 0.4.
    assert "task/yq/0.5/yq.yaml" in taskhub("catalog", "errors", "tekton").stdout
    assert [(e["name"], e["version"]) for e in lock] == [("yq", "0.4")]
    assert "read-values/yq-script] image: registry.example.com/app:1.2.3" in done.stderr
