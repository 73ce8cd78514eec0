"""Reading manifests: what a hub extracts, and hostile input refused with a reason, never a crash."""

import pytest

from catalog.manifests import MAX_FILE_BYTES, ManifestError, decode_text, load_documents
from catalog.metadata import parse_resource
from tests.catalog.factories import task_yaml


def test_extracts_what_tekton_hub_extracts():
    text = task_yaml("hello", "0.2", extra_annotations='    tekton.dev/deprecated: "true"\n')
    meta = parse_resource(text, kind="Task")
    assert meta.name == "hello"
    assert meta.version.text == "0.2"
    assert meta.api_version == "tekton.dev/v1"
    assert meta.display_name == "Hello"
    assert meta.description == "Says hello."
    assert meta.min_pipelines_version == "0.50.0"
    assert meta.deprecated is True
    assert meta.tags == ["greeting", "demo"]
    assert meta.categories == ["Developer Tools"]
    assert meta.platforms == ["linux/amd64", "linux/arm64"]
    assert meta.findings == []


def test_v1beta1_and_stepaction_are_accepted():
    assert parse_resource(task_yaml("a", api_version="tekton.dev/v1beta1"), kind="Task").api_version == (
        "tekton.dev/v1beta1"
    )
    step = task_yaml("s", kind="StepAction", api_version="tekton.dev/v1alpha1")
    assert parse_resource(step, kind="StepAction").kind == "StepAction"


def test_missing_optional_metadata_is_reported_not_fatal():
    text = """apiVersion: tekton.dev/v1
kind: Task
metadata:
  name: bare
  labels: {app.kubernetes.io/version: "0.1"}
spec:
  steps: [{name: s, image: busybox, script: "true"}]
"""
    meta = parse_resource(text, kind="Task")
    messages = [f.message for f in meta.findings]
    assert "spec.description is missing" in messages
    assert any("no display name" in m for m in messages)
    assert any("no minimum Pipelines version" in m for m in messages)
    assert meta.platforms == ["linux/amd64"]  # Tekton Hub's default, and said so
    assert any("assuming linux/amd64" in m for m in messages)


def test_unquoted_version_label_is_refused_with_a_hint():
    text = task_yaml("hello").replace('app.kubernetes.io/version: "0.1"', "app.kubernetes.io/version: 0.10")
    with pytest.raises(ManifestError, match=r"must be a string.*quote it"):
        parse_resource(text, kind="Task")


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("a: &a [x, x, x, x, x, x, x, x, x, x]\n"
         + "".join(f"{c}: &{c} [{', '.join(['*' + p] * 10)}]\n" for p, c in zip("abcdefg", "bcdefgh", strict=True)),
         "alias bomb"),
        ("a: &a [*a]\n", "refers to itself"),
        ("[" * 100_000 + "]" * 100_000, "nested deeper"),
        ("".join(" " * i + "- \n" for i in range(0, 4000, 2)), "nested deeper"),
        ("a: 1\na: 2\n", "duplicate key 'a'"),
        ("a:\n\tb: 1\n", "invalid YAML"),
        ("a: !!python/object:os.system x\n", "invalid YAML"),
        ("{unclosed: [\n", "invalid YAML"),
    ],
    ids=["alias-bomb", "recursive-alias", "deep-flow", "deep-block", "duplicate-key", "tab", "python-tag", "broken"],
)  # fmt: skip
def test_hostile_yaml_is_refused_with_a_reason(text, reason):
    with pytest.raises(ManifestError, match=reason):
        load_documents(text)


def test_benign_aliases_still_load():
    docs = load_documents("base: &b {image: busybox}\nstep: *b\n")
    assert docs == [{"base": {"image": "busybox"}, "step": {"image": "busybox"}}]


def test_encoding_and_size_limits():
    assert decode_text("\ufeffa: 1".encode()) == "a: 1"
    assert load_documents(decode_text(b"a: 1\r\nb: 2\r\n")) == [{"a": 1, "b": 2}]
    with pytest.raises(ManifestError, match="not valid UTF-8"):
        decode_text(b"name: caf\xe9")
    with pytest.raises(ManifestError, match="over the 1048576-byte limit"):
        decode_text(b"#" * (MAX_FILE_BYTES + 1))


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (lambda t: t.replace("kind: Task", "kind: ConfigMap"), "kind is 'ConfigMap', expected 'Task'"),
        (
            lambda t: t.replace("tekton.dev/v1", "tekton.dev/v2", 1),
            "apiVersion 'tekton.dev/v2' is not supported",
        ),
        (lambda t: t.replace("name: hello\n", "name: Hello_World\n", 1), "not a valid DNS-1123 label"),
        (
            lambda t: t.replace('    app.kubernetes.io/version: "0.1"\n', ""),
            "missing the mandatory version label",
        ),
        (lambda t: t.replace('version: "0.1"', 'version: "latest"'), "invalid version 'latest'"),
        (lambda t: t + "---\n" + t, "expected one resource, found 2"),
        (lambda t: "- just\n- a list\n", "expected a mapping"),
        (lambda t: "", "no YAML document"),
        (lambda t: t.replace("metadata:", "metadata: 7\nignored:"), "metadata is missing or not a mapping"),
    ],
    ids=["kind", "api-version", "name", "no-label", "bad-label", "two-docs", "list", "empty", "metadata"],
)
def test_invalid_resources_are_refused_with_a_reason(change, reason):
    with pytest.raises(ManifestError, match=reason):
        parse_resource(change(task_yaml("hello")), kind="Task")


def test_json_manifests_read_as_their_yaml_form_and_checked_alike():
    import json

    import yaml

    text = task_yaml("hello", "0.3", extra_annotations='    tekton.dev/deprecated: "true"\n')
    as_json = json.dumps(yaml.safe_load(text), separators=(",", ":"))  # what a bundle layer holds
    from_yaml, from_json = parse_resource(text, kind="Task"), parse_resource(as_json, kind="Task")
    assert from_json == from_yaml and from_json.deprecated and from_json.tags == ["greeting", "demo"]
    with pytest.raises(ManifestError, match="duplicate key 'kind'"):
        parse_resource(as_json.replace('"kind":"Task"', '"kind":"Task","kind":"Pipeline"'), kind="Task")
    with pytest.raises(ManifestError, match="nested deeper"):
        parse_resource('{"a":' * 100_000 + "1" + "}" * 100_000, kind="Task")
    flow = "{apiVersion: tekton.dev/v1, kind: Task}"  # YAML flow style, not JSON: the YAML reader judges it
    with pytest.raises(ManifestError, match="metadata is missing"):
        parse_resource(flow, kind="Task")
