"""Tekton's own example runs (tektoncd/pipeline: examples/v1, read in place from
$TASKHUB_CONFORMANCE_DATA/tekton-examples), each file given whole to `taskhub run -f` as to `kubectl create -f`:
every run in it must end `Succeeded=True`, as Tekton's CI expects of them. Each runs twice: with steps as
sandboxed host processes, and in containers of their images with podman (the images of tests/container_fixture.py
under the names the examples use, through TASKHUB_IMAGE_MAP; skipped where podman is not installed). Without the
data the suite is skipped, with the reason."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from hub.cli import main
from tests.upstream_data import needs, upstream_data

EXAMPLES = upstream_data("tekton-examples")
pytestmark = needs("tekton-examples")


def _examples() -> list[Path]:
    return sorted(EXAMPLES.rglob("*.yaml")) if EXAMPLES else []


def test_the_examples_are_there() -> None:
    assert _examples(), f"no Tekton examples under {EXAMPLES}"


@pytest.mark.parametrize("containers", ["host", "podman"])
@pytest.mark.parametrize("path", _examples(), ids=lambda p: str(p.relative_to(EXAMPLES or "/")))
def test_example_ends_succeeded(
    path: Path, containers: str, tmp_path: Path, sqlite_templates: dict[str, Path], request: pytest.FixtureRequest
) -> None:
    # A hub of its own per file, as Tekton's CI gives each example its own namespace.
    shutil.copy(sqlite_templates["migrated"], tmp_path / "taskhub.db")
    env = {
        "TASKHUB_DATA_DIR": str(tmp_path),
        "TASKHUB_DATABASE_URL": f"sqlite:///{tmp_path / 'taskhub.db'}",
        "TASKHUB_LOCAL_CONTAINERS": containers,
    }
    if containers == "podman":
        env["TASKHUB_IMAGE_MAP"] = request.getfixturevalue("image_mirror").setting
    done = CliRunner().invoke(main, ["run", "-f", str(path), "-o", "yaml"], env=env)
    ended = [run for run in yaml.safe_load_all(done.stdout) if run]
    assert ended, done.stderr[-3000:]
    for run in ended:
        condition = run["status"]["conditions"][0]
        assert (condition["status"], condition["reason"]) in (("True", "Succeeded"), ("True", "Completed")), (
            run["metadata"]["name"],
            condition,
            done.stderr[-3000:],
        )
    assert done.exit_code == 0, done.stderr[-3000:]
