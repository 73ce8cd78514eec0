"""catalog.convert: Tekton objects between API versions, on every catalog manifest and on the fields that change."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from catalog.convert import ConversionError, can_convert, convert


def task(spec: dict, version: str = "v1beta1") -> dict:
    return {"apiVersion": f"tekton.dev/{version}", "kind": "Task", "metadata": {"name": "t"}, "spec": spec}


def catalog_manifests(sample: Path, version: str) -> list[Path]:
    return [
        p
        for kind in ("task", "pipeline")
        for p in sorted(sample.glob(f"{kind}/*/*/*.yaml"))
        if p.stem == p.parent.parent.name and f"apiVersion: tekton.dev/{version}" in p.read_text()
    ]


@pytest.mark.parametrize("catalog", ["fixture_catalog", "upstream_catalog"])
def test_every_convertible_catalog_task_round_trips(catalog: str, request: pytest.FixtureRequest):
    manifests = catalog_manifests(request.getfixturevalue(catalog), "v1beta1")
    assert len(manifests) > 30
    converted = 0
    for path in manifests:
        obj = yaml.safe_load(path.read_text())
        if obj["spec"].get("resources"):
            with pytest.raises(ConversionError, match="PipelineResources"):
                convert(obj, "v1")
            continue
        v1 = convert(obj, "v1")
        assert v1["apiVersion"] == "tekton.dev/v1", path
        assert v1["metadata"] == obj["metadata"], path
        assert convert(v1, "v1beta1") == obj, path  # and back, unchanged
        converted += 1
    assert converted > 30


def test_step_sidecar_and_template_resources_become_compute_resources():
    limits = {"limits": {"memory": "1Gi"}}
    obj = task(
        {
            "stepTemplate": {"resources": limits, "name": "ignored"},
            "steps": [{"name": "s", "image": "alpine", "resources": limits}],
            "sidecars": [{"name": "db", "image": "postgres", "resources": limits, "ports": [{"containerPort": 5432}]}],
        }
    )
    before = copy.deepcopy(obj)
    spec = convert(obj, "v1")["spec"]
    assert obj == before  # the input is not modified
    assert spec["steps"][0] == {"name": "s", "image": "alpine", "computeResources": limits}
    assert spec["stepTemplate"] == {"computeResources": limits}
    assert spec["sidecars"][0]["computeResources"] == limits and spec["sidecars"][0]["ports"]
    back = convert({**obj, "apiVersion": "tekton.dev/v1", "spec": spec}, "v1beta1")["spec"]
    assert back["steps"][0]["resources"] == limits


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"resources": {"inputs": [{"name": "src", "type": "git"}]}}, "spec.resources (PipelineResources)"),
        ({"steps": [{"name": "s", "image": "a", "ports": [{"containerPort": 80}]}]}, "spec.steps[0].ports"),
        ({"steps": [{"name": "s", "resources": {}, "computeResources": {}}]}, "has both resources and computeRes"),
    ],
)
def test_fields_without_a_v1_counterpart_are_errors(spec, message):
    with pytest.raises(ConversionError, match=message.replace("[", r"\[").replace("(", r"\(").replace(")", r"\)")):
        convert(task(spec), "v1")


def test_pipeline_bundle_refs_become_the_bundles_resolver_and_embedded_specs_convert():
    pipeline = {
        "apiVersion": "tekton.dev/v1beta1",
        "kind": "Pipeline",
        "metadata": {"name": "p"},
        "spec": {
            "tasks": [
                {"name": "a", "taskRef": {"name": "git-clone", "bundle": "registry.example/git-clone:0.9"}},
                {"name": "b", "taskSpec": {"steps": [{"name": "s", "image": "a", "resources": {"requests": {}}}]}},
                {"name": "c", "taskSpec": {"apiVersion": "example.dev/v1", "kind": "Wait", "spec": {"resources": 1}}},
            ],
            "finally": [{"name": "f", "taskRef": {"name": "notify"}}],
        },
    }
    spec = convert(pipeline, "v1")["spec"]
    assert spec["tasks"][0]["taskRef"] == {
        "resolver": "bundles",
        "params": [
            {"name": "bundle", "value": "registry.example/git-clone:0.9"},
            {"name": "name", "value": "git-clone"},
            {"name": "kind", "value": "task"},
        ],
    }
    assert spec["tasks"][1]["taskSpec"]["steps"][0] == {"name": "s", "image": "a", "computeResources": {"requests": {}}}
    assert spec["tasks"][2] == pipeline["spec"]["tasks"][2]  # a custom task's spec is not ours to convert
    assert spec["finally"] == pipeline["spec"]["finally"]


def test_runs_convert_for_the_runner():
    run = {
        "apiVersion": "tekton.dev/v1beta1",
        "kind": "PipelineRun",
        "metadata": {"generateName": "r-"},
        "spec": {
            "pipelineRef": {"name": "p"},
            "serviceAccountName": "builder",
            "podTemplate": {"nodeSelector": {"a": "b"}},
            "timeout": "1h",
            "taskRunSpecs": [{"pipelineTaskName": "a", "taskServiceAccountName": "x", "taskPodTemplate": {}}],
        },
    }
    spec = convert(run, "v1")["spec"]
    assert spec == {
        "pipelineRef": {"name": "p"},
        "taskRunTemplate": {"serviceAccountName": "builder", "podTemplate": {"nodeSelector": {"a": "b"}}},
        "timeouts": {"pipeline": "1h"},
        "taskRunSpecs": [{"pipelineTaskName": "a", "serviceAccountName": "x", "podTemplate": {}}],
    }
    overrides = [{"name": "s", "resources": {"limits": {}}}]
    taskrun = {"apiVersion": "tekton.dev/v1beta1", "kind": "TaskRun", "metadata": {"name": "r"},
               "spec": {"taskRef": {"name": "t"}, "stepOverrides": overrides}}  # fmt: skip
    assert convert(taskrun, "v1")["spec"]["stepSpecs"] == [{"name": "s", "computeResources": {"limits": {}}}]


def test_stepactions_and_unknown_pairs():
    action = {"apiVersion": "tekton.dev/v1alpha1", "kind": "StepAction", "metadata": {"name": "a"}}
    assert convert(action, "v1beta1") == {**action, "apiVersion": "tekton.dev/v1beta1"}
    assert can_convert("Task", "v1beta1", "v1") and not can_convert("StepAction", "v1beta1", "v1")
    with pytest.raises(ConversionError, match=r"cannot convert StepAction from tekton\.dev/v1beta1 to tekton\.dev/v1$"):
        convert({**action, "apiVersion": "tekton.dev/v1beta1"}, "v1")
    with pytest.raises(ConversionError, match=r"is not a tekton\.dev API version"):
        convert({"apiVersion": "v1", "kind": "Pod"}, "v1")
