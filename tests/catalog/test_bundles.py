"""Tekton bundles: built in the layout `tkn bundle push` writes, read as Tekton's bundles resolver reads them (a
layer tkn wrote, taken from tektoncd/cli's pkg/bundle/builder_test.go, included)."""

from __future__ import annotations

import base64
import gzip
import hashlib
import io
import json
import os
import subprocess
import sys
import tarfile
import time
import tracemalloc
import zlib
from datetime import datetime, timedelta, timezone

import pytest
import yaml

from catalog.bundle_manifests import (
    DOCKER_MANIFEST_LIST,
    OCI_INDEX,
    OCI_MANIFEST,
    Descriptor,
    bundle_entries,
    check_bundle_manifest,
    find_layer,
    parse_manifest,
)
from catalog.bundles import DOCKER_LAYER, DOCKER_MANIFEST, Bundle, BundleEntry, build_bundle, read_layer, read_object
from catalog.errors import BundleEntryNotFound, BundleError, NotFound

THREE_TASKS = [
    f"apiVersion: tekton.dev/v1\nkind: Task\nmetadata:\n  name: task{n}\nspec:\n  description: task{n}\n"
    for n in (1, 2, 3)
]
EXAMPLE_TASK = (
    "\napiVersion: tekton.dev/v1beta1\nkind: Task\nmetadata:\n  name: foobar\nspec:\n  params:\n    - name: someparam\n"
)
ANNOTATIONS = {"org.opencontainers.image.license": "Apache-2.0", "org.opencontainers.image.url": "https://example.org"}
LABELS = {"version": "1.0", "quay.expires-after": "7d"}
# tkn's task3 layer, gzip'd by Go's compress/flate (173 bytes).
GO_TASK3_LAYER = base64.b64decode(
    "H4sIAAAAAAAE/+zSwcqDMAwHcB/l43+Wb5GNDXyOsXuwOZRiFZN5Ed99VDcY7Dg8yPq7BBLa/ltqrOFYbIuI6Ey0VPqsVJ0ur1lSULW0/mjbWKu7"
    "Gg8FfX1WSv5+uZ2YwL2/yaC+i6hhEqyL/07Gw1ihRPDRocaVNaBEK8aOjVFPiNxKWpD+D+YS2kuT+k60GXxvz/3W8byT18iyLPsdjwAAAP//oD0e9QAIAAA="
)
REF = "registry.example/catalog/bundle:1.0"


def task(name: str, extra: str = "") -> str:
    return f"apiVersion: tekton.dev/v1\nkind: Task\nmetadata:\n  name: {name}\nspec:\n  steps: []\n{extra}"


def layer_payload(bundle: Bundle, index: int = 0) -> bytes:
    return read_layer(bundle.layers[index].blob, 1 << 20)


# Building: tkn's layout, and bytes that depend only on the input


def test_each_object_is_a_gzipd_tar_layer_holding_its_json():
    bundle = build_bundle([*THREE_TASKS, EXAMPLE_TASK])
    for layer in bundle.layers:
        tar = gzip.decompress(layer.blob)
        assert layer.diff_id == "sha256:" + hashlib.sha256(tar).hexdigest()
        assert layer.digest == "sha256:" + hashlib.sha256(layer.blob).hexdigest() and layer.size == len(layer.blob)
        with tarfile.open(fileobj=io.BytesIO(tar)) as archive:
            (member,) = archive.getmembers()
            assert (member.name, member.mode, member.mtime, member.uid) == (layer.name, 0o600, 0, 0)
    by_name = {layer.name: json.loads(layer_payload(bundle, i)) for i, layer in enumerate(bundle.layers)}
    assert by_name == {
        **{f"task{n}": yaml.safe_load(THREE_TASKS[n - 1]) for n in (1, 2, 3)},
        "foobar": yaml.safe_load(EXAMPLE_TASK),
    }


def test_manifest_and_config_are_in_tkns_layout():
    bundle = build_bundle(THREE_TASKS, annotations=ANNOTATIONS, labels=LABELS)
    manifest, config = json.loads(bundle.manifest), json.loads(bundle.config)
    assert (manifest["schemaVersion"], manifest["mediaType"]) == (2, DOCKER_MANIFEST)
    assert manifest["config"] == {
        "mediaType": "application/vnd.docker.container.image.v1+json",
        "size": len(bundle.config),
        "digest": bundle.config_digest,
    }
    assert manifest["layers"] == [
        {
            "mediaType": DOCKER_LAYER,
            "size": layer.size,
            "digest": layer.digest,
            "annotations": {
                "dev.tekton.image.apiVersion": "v1",
                "dev.tekton.image.kind": "task",
                "dev.tekton.image.name": layer.name,
            },
        }
        for layer in bundle.layers
    ]
    assert manifest["annotations"] == ANNOTATIONS
    assert config["rootfs"] == {"type": "layers", "diff_ids": [layer.diff_id for layer in bundle.layers]}
    assert config["config"] == {"Labels": LABELS}
    assert "annotations" not in json.loads(build_bundle(THREE_TASKS).manifest)


def test_same_input_gives_the_same_digest_whatever_the_file_order():
    first = build_bundle(THREE_TASKS)
    again = build_bundle(list(reversed(THREE_TASKS)))
    assert (again.manifest, again.config, again.blobs()) == (first.manifest, first.config, first.blobs())
    assert [layer.name for layer in first.layers] == ["task3", "task1", "task2"]  # sorted by sha256 of the file


def test_digest_is_the_same_in_another_process_hash_seed_and_time_zone():
    script = "import sys; from catalog.bundles import build_bundle; print(build_bundle(sys.argv[1:]).digest)"
    env = {**os.environ, "PYTHONHASHSEED": "12345", "TZ": "America/St_Johns"}
    result = subprocess.run([sys.executable, "-c", script, *THREE_TASKS], env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == build_bundle(THREE_TASKS).digest


def test_default_created_time_is_utc_whatever_the_machines_time_zone(monkeypatch):
    in_utc = build_bundle(THREE_TASKS)
    monkeypatch.setenv("TZ", "Asia/Kolkata")
    time.tzset()
    try:
        assert time.localtime(0).tm_hour == 5  # the zone did change
        in_kolkata = build_bundle(THREE_TASKS)
    finally:
        monkeypatch.undo()
        time.tzset()
    assert in_kolkata.digest == in_utc.digest
    assert b'"created":"1970-01-01T00:00:00Z"' in in_kolkata.config


@pytest.mark.parametrize(
    ("created", "text"),
    [
        (datetime(2023, 9, 22, 1, 2, 3, 500000, timezone(timedelta(minutes=270))), "2023-09-21T20:32:03Z"),
        (datetime(2023, 9, 22, 1, 2, 3, tzinfo=timezone(timedelta(hours=-5))), "2023-09-22T06:02:03Z"),
        (datetime(2023, 9, 22), "2023-09-22T00:00:00Z"),  # naive: taken as UTC
    ],
)
def test_created_time_is_written_in_utc(created, text):
    assert f'"created":"{text}"'.encode() in build_bundle([EXAMPLE_TASK], created=created).config


def test_a_layer_holds_what_kubernetes_reads_from_the_yaml():
    """A layer is the object as the cluster would read the YAML: the JSON of its value, whatever the YAML spelling
    (flow or block style, anchors, merge keys, quoting, unquoted timestamps as strings)."""
    extra = (
        "  params:\n"
        '    - &p {name: a, default: "yes"}\n'
        "    - <<: *p\n      name: b\n"
        '  description: "<b> & </b> \\u2028 é"\n'
        "  x-values: [0755, 0x1F, 1.5e-7, 2001-12-14, !!str 12, 18446744073709551615]\n"
    )
    payload = json.loads(layer_payload(build_bundle([task("values", extra)])))
    assert payload["spec"]["params"] == [{"name": "a", "default": "yes"}, {"name": "b", "default": "yes"}]
    assert payload["spec"]["description"] == "<b> & </b> \u2028 é"
    assert payload["spec"]["x-values"] == [493, 31, 1.5e-7, "2001-12-14", "12", 18446744073709551615]


def test_every_fixture_catalog_manifest_becomes_a_layer_of_its_own_value(fixture_catalog):
    manifests = sorted(fixture_catalog.glob("*/*/*/*.yaml"))
    built = 0
    for path in manifests:
        text = path.read_text()
        value = yaml.safe_load(text)
        if value.get("kind") not in ("Task", "Pipeline", "StepAction") or not value["metadata"].get("name"):
            continue
        bundle = build_bundle([text])
        assert json.loads(layer_payload(bundle)) == json.loads(json.dumps(value, default=str)), path
        built += 1
    assert built > 40


def test_json_input_is_accepted():
    first = '{ "kind": "Task",\n  "apiVersion": "tekton.dev/v1", "metadata": {"name": "j1"}, "x": "\\u00e9 <" }'
    second = '{"apiVersion":"tekton.dev/v1beta1","kind":"Pipeline","metadata":{"name":"j2"}}'
    bundle = build_bundle([f"  \n{first}\n---\n{second}\n"])
    assert [json.loads(layer_payload(bundle, i)) for i in (0, 1)] == [json.loads(first), json.loads(second)]
    assert [(layer.kind, layer.api_version) for layer in bundle.layers] == [("task", "v1"), ("pipeline", "v1beta1")]


def test_empty_and_null_documents_are_skipped_without_tkns_duplicate_layer():
    text = "---\n# only a comment\n---\n" + task("a") + "---\n\n---\nnull\n---\n" + task("b") + "---\n# trailing\n"
    assert [layer.name for layer in build_bundle([text]).layers] == ["a", "b"]


def test_the_20_object_limit_counts_objects_not_files():
    twenty = "---\n".join(task(f"t{n}") for n in range(20))
    assert len(build_bundle([twenty]).layers) == 20
    with pytest.raises(BundleError, match=r"^bundle contains more than the maximum 20 allow objects$"):
        build_bundle([twenty + "---\n" + task("t20")])  # one file, 21 objects: tkn would accept it
    with pytest.raises(BundleError, match="more than the maximum 20"):
        build_bundle([task(f"t{n}") for n in range(21)])


TEKTON_V1 = "apiVersion: tekton.dev/v1\nkind: Task\n"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\n", "^failed to parse string as a Tekton object: "),
        ("apiVersion: tekton.dev/v1\nkind: TaskRun\nmetadata:\n  name: r\n", "^failed to parse string as a Tekton"),
        ("apiVersion: tekton.dev/v2\nkind: Task\nmetadata:\n  name: t\n", "^failed to parse string as a Tekton"),
        ("kind: Task\nmetadata:\n  name: t\n", "no kind or apiVersion"),
        ("- a\n- b\n", "^failed to parse string as a Tekton object"),
        (TEKTON_V1 + "metadata:\n  generateName: t-\n", "^kubernetes resources should have a name"),
        (TEKTON_V1 + "metadata:\n  name: Not_Valid\n", "not a valid Kubernetes object name"),
        (TEKTON_V1 + "metadata: {name: [\n", "^found a spec that isn't YAML or JSON parseable: "),
        ("{apiVersion: tekton.dev/v1, kind: Task}", "^kubernetes resources should have a name"),
        (TEKTON_V1 + "metadata: {name: t}\nspec: {x: .inf}\n", "unsupported value"),
        ("a: &a [*a]\n", "isn't YAML or JSON parseable.*refers to itself"),
        ("# nothing\n", "the files hold no Tekton object"),
    ],
)
def test_refuses_what_tkn_refuses_with_its_message(text, message):
    with pytest.raises(BundleError, match=message):
        build_bundle([text])


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ('{"a":' * 100_000 + "1" + "}" * 100_000, "nested deeper than 1000 levels"),
        ("a: " + "[" * 5000 + "]" * 5000, "nested deeper than 1000 levels"),
        (
            "a: &a [x, x, x, x, x, x, x, x, x, x]\n"
            + "".join(f"{k}: &{k} [{', '.join([f'*{p}'] * 10)}]\n" for p, k in zip("abcde", "bcdef", strict=True)),
            "alias bomb",
        ),
        (
            TEKTON_V1
            + "metadata: {name: t}\nspec:\n  a: &a "
            + "x" * 400_000
            + "\n  b: ["
            + ", ".join(["*a"] * 100)
            + "]\n",
            "its JSON is over 1048576 characters",
        ),
    ],
    ids=["deep-json", "deep-yaml", "alias-bomb", "aliased-long-string"],
)
def test_hostile_input_is_refused_not_expanded(text, reason):
    with pytest.raises(BundleError, match=f"^found a spec that isn't YAML or JSON parseable: .*{reason}"):
        build_bundle([text])


def test_long_names_are_kept_whole():
    name = "a" * 110 + ".example"
    bundle = build_bundle([task(name)])
    with tarfile.open(fileobj=io.BytesIO(gzip.decompress(bundle.layers[0].blob))) as archive:
        (member,) = archive.getmembers()
        assert (member.name, member.mode) == (name, 0o600)
    assert json.loads(layer_payload(bundle))["metadata"]["name"] == name
    assert bundle.entries[0].name == name


# Reading: what the resolver accepts


def manifest_with(*annotations: dict[str, str]) -> dict:
    layer = {"mediaType": DOCKER_LAYER, "digest": "sha256:" + "0" * 64, "size": 1}
    return {"schemaVersion": 2, "layers": [layer | {"annotations": a} for a in annotations]}


API, KIND, NAME = "dev.tekton.image.apiVersion", "dev.tekton.image.kind", "dev.tekton.image.name"
GOOD = {API: "v1", KIND: "task", NAME: "a"}


@pytest.mark.parametrize(
    ("layers", "message"),
    [
        ([{}] * 21, "contained more than the maximum 20 allow objects"),  # the count comes first
        ([GOOD, {}], f"the layer 1 does not contain a {API} annotation"),  # then apiVersion, name, kind
        ([{API: "v1"}], f"the layer 0 does not contain a {NAME} annotation"),  # name before kind
        ([{API: "v1", NAME: "a"}], f"the layer 0 does not contain a {KIND} annotation"),
        ([GOOD | {KIND: "Task"}], f"the layer 0 the annotation {KIND} must be lowercased and singular, found Task"),
        ([GOOD | {KIND: "tasks"}], f"the layer 0 the annotation {KIND} must be lowercased and singular, found tasks"),
    ],
)
def test_compliance_errors_are_the_resolvers(layers, message):
    with pytest.raises(BundleError) as caught:
        check_bundle_manifest(manifest_with(*layers), REF)
    assert str(caught.value) == f"invalid tekton bundle {REF}, error: {message}"


def test_a_compliant_manifest_passes_and_lists_its_entries():
    manifest = manifest_with(GOOD, GOOD | {KIND: "pipeline", NAME: "b"})
    check_bundle_manifest(manifest, REF)
    assert [(e.kind, e.name, e.api_version, e.size) for e in bundle_entries(manifest)] == [
        ("task", "a", "v1", 1),
        ("pipeline", "b", "v1", 1),
    ]


def test_lookup_is_case_insensitive_on_kind_exact_on_name_and_first_match_wins():
    first, second = ("sha256:" + c * 64 for c in "12")
    manifest = manifest_with(GOOD, GOOD)
    manifest["layers"][0]["digest"], manifest["layers"][1]["digest"] = first, second
    assert find_layer(manifest, "Task", "a").digest == first
    with pytest.raises(BundleEntryNotFound) as caught:
        find_layer(manifest, "Task", "A")
    assert str(caught.value) == "could not find object in image with kind: Task and name: A"
    assert isinstance(caught.value, NotFound)
    with pytest.raises(BundleError, match=r"kind: pipeline and name: a$"):
        find_layer(manifest, "pipeline", "a")


def tar_of(name: str, data: bytes) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        info = tarfile.TarInfo(name)
        info.size = len(data)
        archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


OBJECT = task("raw").encode()


@pytest.mark.parametrize(
    "blob",
    [
        gzip.compress(tar_of("raw", OBJECT)),  # the canonical form, written by another tar writer
        tar_of("raw", OBJECT) + tar_of("second", b"ignored"),  # uncompressed; only the first entry counts
        gzip.compress(OBJECT),  # raw YAML, gzip'd (what Tekton's e2e test pushes)
        OBJECT,  # raw YAML, uncompressed
        gzip.compress(OBJECT[:30]) + gzip.compress(OBJECT[30:]),  # a multi-member gzip stream
    ],
    ids=["tar.gz", "tar", "yaml.gz", "yaml", "two-gzip-members"],
)
def test_reads_tar_and_raw_layers_gzipped_or_not(blob):
    assert read_layer(blob, 1 << 20) == OBJECT


def test_reads_tkns_own_layer():
    assert read_layer(GO_TASK3_LAYER, 1 << 20) == (
        b'{"apiVersion":"tekton.dev/v1","kind":"Task","metadata":{"name":"task3"},"spec":{"description":"task3"}}'
    )


def test_a_gzip_bomb_is_refused_without_being_inflated():
    deflate = zlib.compressobj(9, zlib.DEFLATED, 31)
    bomb = b"".join(deflate.compress(bytes(1 << 20)) for _ in range(64)) + deflate.flush()  # 64 MiB of zeros
    assert len(bomb) < 100_000
    tracemalloc.start()
    try:
        with pytest.raises(BundleError, match="over 1048576 bytes uncompressed"):
            read_layer(bomb, 1 << 20)
        assert tracemalloc.get_traced_memory()[1] < 8 << 20
    finally:
        tracemalloc.stop()


def test_an_oversized_tar_entry_is_refused_before_it_is_read():
    blob = gzip.compress(tar_of("big", bytes(2000)))
    with pytest.raises(BundleError, match="the layer's object is 2000 bytes, over the 1000-byte limit"):
        read_layer(blob, 1000)


@pytest.mark.parametrize(
    ("blob", "message"),
    [
        (bytes.fromhex("28b52ffd") + b"\0" * 20, "zstd-compressed, which the Tekton bundle contract forbids"),
        (gzip.compress(OBJECT)[:-12], "truncated"),
        (gzip.compress(OBJECT)[:10] + b"\xff" * 40, "corrupt"),
        (gzip.compress(OBJECT) + b"junk", "data after its gzip stream"),
    ],
    ids=["zstd", "truncated", "corrupt", "trailing-junk"],
)
def test_unreadable_layers_are_refused_clearly(blob, message):
    with pytest.raises(BundleError, match=message):
        read_layer(blob, 1 << 20)


def descriptor(digest_char: str, platform: dict | None = None) -> dict:
    child = {"mediaType": OCI_MANIFEST, "digest": "sha256:" + digest_char * 64, "size": 9}
    return child | ({"platform": platform} if platform else {})


ARM64 = {"os": "linux", "architecture": "arm64"}
AMD64 = {"os": "linux", "architecture": "amd64"}
WINDOWS = {"os": "windows", "architecture": "amd64"}


@pytest.mark.parametrize(
    ("document", "media_type", "child"),
    [
        ({"manifests": [descriptor("a", ARM64), descriptor("b", AMD64)]}, OCI_INDEX + "; charset=utf-8", "b"),
        ({"mediaType": DOCKER_MANIFEST_LIST, "manifests": [descriptor("a", WINDOWS), descriptor("c")]}, None, "c"),
    ],
    ids=["oci-index", "docker-list-child-without-platform"],
)
def test_an_index_yields_its_linux_amd64_child(document, media_type, child):
    expected = Descriptor(OCI_MANIFEST, "sha256:" + child * 64, 9)
    assert parse_manifest(json.dumps(document).encode(), media_type) == expected


SCHEMA1_SIGNED = "application/vnd.docker.distribution.manifest.v1+prettyjws"
BAD_LAYER = {"digest": "sha256:abc", "size": 1}


@pytest.mark.parametrize(
    ("document", "media_type", "message"),
    [
        (
            {"schemaVersion": 1},
            None,
            r'^unsupported MediaType: "application/vnd\.docker\.distribution\.manifest\.v1\+json"',
        ),
        ({"schemaVersion": 1}, SCHEMA1_SIGNED, "schema 1 manifests cannot hold bundles"),
        ({"manifests": [descriptor("a", ARM64)]}, OCI_INDEX, "no child with platform linux/amd64 in index"),
        ({"mediaType": "application/vnd.oci.artifact.manifest.v1+json"}, None, "not an image manifest"),
        (
            {"schemaVersion": 2, "config": descriptor("a"), "layers": [BAD_LAYER]},
            DOCKER_MANIFEST,
            "layer 0 has no .*digest",
        ),
        ([], DOCKER_MANIFEST, "could not parse image manifest: not a JSON object"),
    ],
    ids=["schema1-by-body", "schema1-signed", "no-amd64", "artifact", "bad-digest", "not-an-object"],
)
def test_what_is_not_an_image_manifest_is_refused(document, media_type, message):
    with pytest.raises(BundleError, match=message):
        parse_manifest(json.dumps(document).encode(), media_type)


def test_oci_manifests_are_accepted_with_or_without_a_media_type():
    document = {"schemaVersion": 2, "config": descriptor("a"), "layers": [descriptor("b")]}
    assert parse_manifest(json.dumps(document).encode(), None) == document
    assert parse_manifest(json.dumps(document).encode(), OCI_MANIFEST) == document
    with pytest.raises(BundleError, match="could not parse image manifest"):
        parse_manifest(b"{not json", DOCKER_MANIFEST)


def test_a_built_bundle_reads_back_as_the_resolver_would():
    bundle = build_bundle([*THREE_TASKS, EXAMPLE_TASK])
    manifest = parse_manifest(bundle.manifest, DOCKER_MANIFEST)
    assert isinstance(manifest, dict)
    check_bundle_manifest(manifest, REF)
    assert bundle_entries(manifest) == bundle.entries
    entry = find_layer(manifest, "task", "foobar")
    assert entry == BundleEntry("task", "foobar", "v1beta1", entry.digest, entry.size)
    content = read_layer(bundle.blobs()[entry.digest], 1 << 20)
    found = read_object(content, entry)
    assert (found.api_version, found.kind, found.name) == ("tekton.dev/v1beta1", "Task", "foobar")
    assert json.loads(found.text)["spec"] == {"params": [{"name": "someparam"}]}


@pytest.mark.parametrize(
    ("content", "entry", "message"),
    [
        (b"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\n", None, "failed to parse string as a Tekton object"),
        (task("a").encode(), BundleEntry("pipeline", "a", "v1", "", 0), "annotated as pipeline 'a' holds Task 'a'"),
        ((task("a") + "---\n" + task("b")).encode(), None, "this one holds 2"),
        (b"\xff\xfe", None, "not valid UTF-8"),
    ],
    ids=["not-tekton", "annotations-disagree", "two-objects", "not-utf8"],
)
def test_read_object_refuses_what_is_not_one_tekton_object(content, entry, message):
    with pytest.raises(BundleError, match=message):
        read_object(content, entry)
