"""Matrix fan-out and child display names on the local executor, as Tekton reports them (§3.5, §5.4)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from runner.local import LocalExecutor, LocalRun


def run(tmp_path: Path, text: str) -> LocalRun:
    return LocalExecutor(tmp_path).run(yaml.safe_load(text))


def cond(obj: dict[str, Any]) -> tuple[str, str]:
    c = obj["status"]["conditions"][0]
    return c["status"], c["reason"]


def display_names(result: LocalRun) -> dict[str, str | None]:
    return {r["name"]: r.get("displayName") for r in result.object["status"]["childReferences"]}


def test_an_include_only_matrix_makes_one_taskrun_per_include(tmp_path: Path) -> None:
    # Tekton fans out exactly the include list when a matrix has no params (matrix_types.go FanOut), and
    # `$(tasks.t.matrix.length)` counts those TaskRuns.
    result = run(
        tmp_path,
        """
apiVersion: tekton.dev/v1
kind: PipelineRun
metadata: {name: pr}
spec:
  pipelineSpec:
    tasks:
    - name: build
      matrix:
        include:
        - {name: amd, params: [{name: arch, value: amd64}]}
        - {name: arm, params: [{name: arch, value: arm64}, {name: flavour, value: slim}]}
      taskSpec:
        params: [{name: arch}, {name: flavour, default: full}]
        results: [{name: built}]
        steps:
        - {image: alpine, script: 'echo -n $(params.arch)-$(params.flavour) > $(results.built.path)'}
    - name: count
      params: [{name: n, value: $(tasks.build.matrix.length)}, {name: all, value: ["$(tasks.build.results.built[*])"]}]
      taskSpec:
        params: [{name: n}, {name: all, type: array}]
        steps:
        - {image: alpine, args: ["$(params.n)", "$(params.all[*])"], script: '[ "$*" = "2 amd64-full arm64-slim" ]'}
""",
    )
    assert cond(result.object) == ("True", "Succeeded")
    params = {
        c["metadata"]["name"]: {p["name"]: p["value"] for p in c["spec"]["params"]}
        for c in result.children
        if c["metadata"]["labels"]["tekton.dev/pipelineTask"] == "build"
    }
    assert params == {"pr-build-0": {"arch": "amd64"}, "pr-build-1": {"arch": "arm64", "flavour": "slim"}}
    assert display_names(result) == {"pr-build-0": "amd", "pr-build-1": "arm", "pr-count": None}


def test_a_child_display_name_substitutes_the_run_and_task_params(tmp_path: Path) -> None:
    # The childReference's displayName gets the PipelineRun's params and the TaskRun's own ones, matrix or not
    # (pipelinerunresolution.go getDisplayName).
    result = run(
        tmp_path,
        """
apiVersion: tekton.dev/v1
kind: PipelineRun
metadata: {name: pr}
spec:
  params: [{name: release, value: "1.2"}]
  pipelineSpec:
    params: [{name: release}]
    tasks:
    - name: plain
      displayName: "test $(params.suite) for $(params.release)"
      params: [{name: suite, value: unit}]
      taskSpec:
        params: [{name: suite}]
        steps: [{image: alpine, script: 'true'}]
    - name: fan
      displayName: "build $(params.os) with $(params.compiler) for $(params.release)"
      params: [{name: compiler, value: gcc}]
      matrix:
        params: [{name: os, value: [linux, mac]}]
      taskSpec:
        params: [{name: os}, {name: compiler}]
        steps: [{image: alpine, script: 'true'}]
""",
    )
    assert cond(result.object) == ("True", "Succeeded")
    assert display_names(result) == {
        "pr-plain": "test unit for 1.2",
        "pr-fan-0": "build linux with gcc for 1.2",
        "pr-fan-1": "build mac with gcc for 1.2",
    }
