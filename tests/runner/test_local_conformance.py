"""Tekton's own example runs (tektoncd/pipeline: examples/v1, read in place from
$TASKHUB_CONFORMANCE_DATA/tekton-examples) on the local executor: each must end `Succeeded=True`, as Tekton's CI
expects of them. Without the data the suite is skipped, with the reason."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from runner.local import LocalExecutor, resolver_from_documents, runnable_documents
from tests.upstream_data import needs, upstream_data

EXAMPLES = upstream_data("tekton-examples")
pytestmark = needs("tekton-examples")


def _examples() -> list[Path]:
    return sorted(EXAMPLES.rglob("*.yaml")) if EXAMPLES else []


def test_the_examples_are_there() -> None:
    assert _examples(), f"no Tekton examples under {EXAMPLES}"


@pytest.mark.parametrize("path", _examples(), ids=lambda p: str(p.relative_to(EXAMPLES or "/")))
def test_example_ends_succeeded(path: Path, tmp_path: Path) -> None:
    documents = [d for d in yaml.safe_load_all(path.read_text()) if d]
    runs = runnable_documents(documents)
    assert runs, f"{path.name} has no TaskRun or PipelineRun"
    # A fresh work root per file, as Tekton's CI gives each example its own namespace.
    executor = LocalExecutor(tmp_path, resolver_from_documents(documents))
    for obj in runs:
        result = executor.run(obj)
        failing = [c for c in result.children if c["status"]["conditions"][0]["status"] != "True"]
        logs = {f"{log.taskrun}/{log.container}": log.path.read_text()[-400:] for log in result.logs}
        assert result.condition["status"] == "True", (result.condition, failing, logs)
        assert result.condition["reason"] in ("Succeeded", "Completed")
