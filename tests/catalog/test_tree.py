"""Walking catalog trees: the test catalog's edge cases (and the real tektoncd/catalog's, given the data), and
hostile trees."""

import os
from pathlib import Path

import pytest

from catalog.tree import read_catalog_tree
from tests.catalog.factories import task_yaml, write_version


def has_problem(tree, level, path, fragment):
    return any(p.level == level and p.path == path and fragment in p.message for p in tree.problems)


@pytest.fixture(scope="module")
def fixture_tree(fixture_catalog):
    return read_catalog_tree(fixture_catalog)


@pytest.fixture(scope="module")
def upstream_tree(upstream_catalog):
    return read_catalog_tree(upstream_catalog)


def manifests_in(root: Path) -> set[tuple[str, str, str]]:
    """Every <kind>/<name>/<version>/<name>.yaml on disk, as (folder, name, version)."""
    found = set()
    for folder in ("task", "pipeline", "stepaction"):
        for manifest in (root / folder).glob("*/*/*.y*ml"):
            name, version = manifest.parent.parent.name, manifest.parent.name
            if manifest.stem == name:
                found.add((folder, name, version))
    return found


def indexed_versions(tree) -> set[tuple[str, str, str]]:
    return {(v.kind.lower(), v.name, v.version) for v in tree.versions}


def test_every_valid_version_is_indexed(fixture_tree, fixture_catalog):
    indexed = indexed_versions(fixture_tree)
    rejected = {
        ("task", "no-version-label", "0.1"),
        ("task", "misspelled-version-label", "0.1"),  # apps.kubernetes.io/version
        ("task", "yq", "0.5"),  # label 0.4 in folder 0.5
        ("task", "name-mismatch", "0.1"),  # metadata.name name-other
    }
    assert indexed == manifests_in(fixture_catalog) - rejected
    assert ("task", "git-clone", "0.10") in indexed
    assert ("stepaction", "git-clone", "0.2") in indexed  # same name, another kind
    assert ("pipeline", "buildpacks", "0.2") in indexed and ("task", "buildpacks", "0.1") in indexed


def test_every_edge_case_is_reported(fixture_tree):
    t = fixture_tree
    assert has_problem(t, "error", "task/no-version-label/0.1/no-version-label.yaml", "missing the mandatory")
    assert has_problem(
        t, "error", "task/misspelled-version-label/0.1/misspelled-version-label.yaml", "missing the mandatory version"
    )
    assert has_problem(t, "error", "task/yq/0.5/yq.yaml", "version label '0.4' does not match the folder version")
    assert has_problem(t, "error", "task/name-mismatch/0.1/name-mismatch.yaml", "'name-other' does not match")
    assert has_problem(t, "error", "pipeline/no-manifest/0.1", "no manifest: expected no-manifest.yaml")
    assert has_problem(t, "info", "task/artifacthub-repo.yml", "plain file where a task folder is expected")
    assert has_problem(t, "info", "pipeline/artifacthub-repo.yml", "plain file where a pipeline folder is expected")
    assert has_problem(t, "warning", "stepaction/git-clone/0.1/git-clone.yaml", "spec.description is missing")
    assert has_problem(t, "info", "task/kaniko/0.1/kaniko.yaml", "no display name")
    assert has_problem(t, "warning", "task/with-namespace/0.1/with-namespace.yaml", "namespace")


def test_metadata_is_extracted(fixture_tree):
    by_key = {(v.kind, v.name, v.version): v for v in fixture_tree.versions}
    git_clone = by_key[("Task", "git-clone", "0.10")]
    assert git_clone.meta.deprecated
    assert git_clone.meta.display_name == "git clone"
    assert git_clone.readme and git_clone.readme.startswith("#")
    scan = by_key[("Task", "image-scan", "0.2")]
    assert "linux/390x" in scan.meta.platforms  # a typo in the catalog is kept as written, as catlin does
    linked = by_key[("Task", "linked-samples", "0.1")]
    assert set(linked.samples) == {"pipelinerun.yaml", "service-account.yaml"}  # symlinks inside the catalog
    templated = by_key[("Task", "template-sample", "0.1")]
    assert "pipeline-run.yaml" in templated.samples  # templates that do not parse are still shown as text
    assert by_key[("Task", "deploy-check", "4.0")].meta.version.text == "4.0"


# -- the real tektoncd/catalog subset, when $TASKHUB_CONFORMANCE_DATA has it ------------------------------------


def test_every_valid_upstream_version_is_indexed(upstream_tree, upstream_catalog):
    indexed = indexed_versions(upstream_tree)
    rejected = {
        ("task", "jumpstarter-run-cmd", "0.1"),  # no version label
        ("task", "rhacs-generic", "0.1"),  # label key misspelled: no version label
        ("task", "yq", "0.5"),  # label 0.4 in folder 0.5
        ("task", "python-boto3-aws", "0.1"),  # metadata.name python-boto3
    }
    assert indexed == manifests_in(upstream_catalog) - rejected


def test_every_upstream_edge_case_is_reported(upstream_tree):
    t = upstream_tree
    assert has_problem(t, "error", "task/jumpstarter-run-cmd/0.1/jumpstarter-run-cmd.yaml", "missing the mandatory")
    assert has_problem(t, "error", "task/rhacs-generic/0.1/rhacs-generic.yaml", "missing the mandatory version label")
    assert has_problem(t, "error", "task/python-boto3-aws/0.1/python-boto3-aws.yaml", "'python-boto3' does not match")
    assert has_problem(t, "error", "pipeline/openwhisk/0.1", "no manifest: expected openwhisk.yaml")
    assert has_problem(t, "warning", "task/argocd-task-connect-repo/0.1/argocd-task-connect-repo.yaml", "namespace")
    by_key = {(v.kind, v.name, v.version): v for v in t.versions}
    assert "linux/390x" in by_key[("Task", "trivy-scanner", "0.2")].meta.platforms
    assert has_problem(t, "warning", "task/trivy-scanner/0.2/trivy-scanner.yaml", "'390x' is not a usual")
    templates = [p for p in t.problems if p.path.startswith("task/redhat-dependency-analytics/")]
    assert templates and all(p.message.startswith("sample is not valid YAML") for p in templates)
    assert set(by_key[("Task", "boskos-release", "0.1")].samples) == {"pipelinerun.yaml", "service-account.yaml"}


def test_yml_extension_is_accepted(tmp_path):
    directory = tmp_path / "task" / "hello" / "0.1"
    directory.mkdir(parents=True)
    (directory / "hello.yml").write_text(task_yaml("hello"))
    tree = read_catalog_tree(tmp_path)
    assert [v.path for v in tree.versions] == ["task/hello/0.1/hello.yml"]


def test_hostile_files_are_rejected_one_by_one(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.yaml").write_text(task_yaml("leak"))
    root = tmp_path / "catalog"
    write_version(root, "good", "0.1")
    write_version(root, "huge", "0.1", task_yaml("huge") + "#" * (1024 * 1024))
    write_version(root, "latin1", "0.1", task_yaml("latin1").encode() + b"# caf\xe9\n")
    bomb = "a: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{c}: &{c} [{', '.join(['*' + p] * 10)}]\n" for p, c in zip("abcdefg", "bcdefgh", strict=True)
    )
    write_version(root, "bomb", "0.1", task_yaml("bomb").replace("spec:", bomb + "spec:"))
    link_dir = root / "task" / "leak" / "0.1"
    link_dir.mkdir(parents=True)
    os.symlink(outside / "secret.yaml", link_dir / "leak.yaml")
    os.symlink(outside, root / "task" / "escape")
    (root / "task" / "Bad_Name" / "0.1").mkdir(parents=True)
    (root / "task" / "good" / "latest").mkdir()
    tree = read_catalog_tree(root)
    assert [v.name for v in tree.versions] == ["good"]
    assert has_problem(tree, "error", "task/huge/0.1/huge.yaml", "over the 1048576-byte limit")
    assert has_problem(tree, "error", "task/latin1/0.1/latin1.yaml", "not valid UTF-8")
    assert has_problem(tree, "error", "task/bomb/0.1/bomb.yaml", "alias bomb")
    assert has_problem(tree, "error", "task/leak/0.1/leak.yaml", "leads outside the catalog")
    assert has_problem(tree, "error", "task/escape", "leads outside the catalog")
    assert has_problem(tree, "error", "task/Bad_Name", "not a valid resource name")
    assert has_problem(tree, "warning", "task/good/latest", "not a version folder")


def test_not_a_catalog_is_critical(tmp_path):
    (tmp_path / "README.md").write_text("hello")
    tree = read_catalog_tree(tmp_path)
    assert tree.versions == []
    assert has_problem(tree, "critical", ".", "not a catalog tree")


def test_every_reason_a_manifest_is_refused_is_reported(tmp_path):
    text = task_yaml("other-name", "0.1").replace('    app.kubernetes.io/version: "0.1"\n', "")
    text = text.replace("apiVersion: tekton.dev/v1", "apiVersion: tekton.dev/v2")
    write_version(tmp_path, "hello", "0.1", text)
    tree = read_catalog_tree(tmp_path)
    reasons = [p.message for p in tree.problems if p.level == "error" and p.path == "task/hello/0.1/hello.yaml"]
    assert reasons == [
        "apiVersion 'tekton.dev/v2' is not supported for Task (use one of tekton.dev/v1, tekton.dev/v1beta1)",
        "metadata.name 'other-name' does not match the folder name 'hello'",
        "missing the mandatory version label app.kubernetes.io/version",
    ]
    assert tree.versions == []


def test_samples_that_are_not_yaml_and_unusual_platforms_are_warned_about(tmp_path):
    text = task_yaml("hello").replace("linux/amd64,linux/arm64", "linux/amd64, linux/arm/v7, linux/390x, macos/arm64")
    write_version(tmp_path, "hello", "0.1", text)
    samples = tmp_path / "task/hello/0.1/samples"
    samples.mkdir()
    (samples / "good.yaml").write_text("kind: TaskRun\n")
    (samples / "template.yaml").write_text("params:\n  - name: x\n    value: {{PLACEHOLDER}}\n")
    tree = read_catalog_tree(tmp_path)
    warnings = [(p.path, p.message) for p in tree.problems if p.level == "warning"]
    manifest = "task/hello/0.1/hello.yaml"
    assert (manifest, "platform 'linux/390x': '390x' is not a usual os or architecture (a typo?)") in warnings
    assert (manifest, "platform 'macos/arm64': 'macos' is not a usual os or architecture (a typo?)") in warnings
    assert not any("linux/arm/v7" in message or "linux/amd64" in message for _, message in warnings)
    template = [m for path, m in warnings if path == "task/hello/0.1/samples/template.yaml"]
    assert len(template) == 1 and template[0].startswith("sample is not valid YAML: ")
    assert not any(path.endswith("good.yaml") for path, _ in warnings)
    assert set(tree.versions[0].samples) == {"good.yaml", "template.yaml"}  # both still shown
