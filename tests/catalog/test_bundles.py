"""Tekton bundles: built byte for byte as `tkn bundle push` builds them, read as Tekton's bundles resolver reads them.

The vectors come from tektoncd/cli's tests (pkg/bundle/builder_test.go: TestDeterministicLayers,
TestDeterministicManifest; pkg/cmd/bundle/push_test.go).
"""

from __future__ import annotations

import base64
import gzip
import io
import json
import os
import re
import subprocess
import sys
import tarfile
import time
import tracemalloc
import zlib
from datetime import UTC, datetime, timedelta, timezone

import pytest

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
ZERO_TIME = datetime(1, 1, 1, tzinfo=UTC)  # Go's time.Time{}
DIFF_IDS = {
    "task1": "sha256:f133ecc6d027acdca7eda88709c33e2dff1e54c60cea62b762aa4f73344ffd91",
    "task2": "sha256:54bc1b5a0f93315400fc09cf5e38a54ce6d1ad5dcdccb69cc5fabf24ddd68044",
    "task3": "sha256:621a5c969416246aa6e771a4a5fb424a5086fd2b8ba736353bd57faaf5cf87ee",
    "foobar": "sha256:9144b7bed40cd17daa79c66304c21a2d2f3c2610054c9dab9fae7c919eb9c25a",
}
V1_CONFIG = (
    '{"architecture":"","created":"0001-01-01T00:00:00Z","history":[{"created":"0001-01-01T00:00:00Z"},'
    '{"created":"0001-01-01T00:00:00Z"},{"created":"0001-01-01T00:00:00Z"}],"os":"","rootfs":{"type":"layers",'
    '"diff_ids":["sha256:621a5c969416246aa6e771a4a5fb424a5086fd2b8ba736353bd57faaf5cf87ee",'
    '"sha256:f133ecc6d027acdca7eda88709c33e2dff1e54c60cea62b762aa4f73344ffd91",'
    '"sha256:54bc1b5a0f93315400fc09cf5e38a54ce6d1ad5dcdccb69cc5fabf24ddd68044"]},"config":{}}'
)
V1_MANIFEST = (
    '{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json","config":{"mediaType":'
    '"application/vnd.docker.container.image.v1+json","size":451,"digest":"sha256:d80eeab76058c0906a840ce90361928a'
    '535224e7cb2a241586edde760fd8c625"},"layers":[{"mediaType":"application/vnd.docker.image.rootfs.diff.tar.gzip",'
    '"size":173,"digest":"sha256:561b99bf08733028cbc799caf7f8b74e1f633d3acb7c6d25d880bae4b32cd0b5","annotations":'
    '{"dev.tekton.image.apiVersion":"v1","dev.tekton.image.kind":"task","dev.tekton.image.name":"task3"}},'
    '{"mediaType":"application/vnd.docker.image.rootfs.diff.tar.gzip","size":174,"digest":"sha256:bd941a3b5d161882'
    '0ba5283fd0dd4138379fef0e927864d35629cfdc1bdd2f3f","annotations":{"dev.tekton.image.apiVersion":"v1",'
    '"dev.tekton.image.kind":"task","dev.tekton.image.name":"task1"}},{"mediaType":"application/vnd.docker.image.'
    'rootfs.diff.tar.gzip","size":175,"digest":"sha256:751deb7e696b6a4f30a2e23f25f97a886cbff22fe832a0c7ed956598ec48'
    '9f58","annotations":{"dev.tekton.image.apiVersion":"v1","dev.tekton.image.kind":"task","dev.tekton.image.name":'
    '"task2"}}]}'
)
V4_MANIFEST = (
    '{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json","config":{"mediaType":'
    '"application/vnd.docker.container.image.v1+json","size":285,"digest":"sha256:88efcf6dcaf27b0f7b5188fdfe3f2571'
    '0ceab564592427375735a5072398cbd7"},"layers":[{"mediaType":"application/vnd.docker.image.rootfs.diff.tar.gzip",'
    '"size":189,"digest":"sha256:7315e39fab3064f94cf49bc8a25b5e537678c4a36c4a28f831653e79bd2b8f18","annotations":'
    '{"dev.tekton.image.apiVersion":"v1beta1","dev.tekton.image.kind":"task","dev.tekton.image.name":"foobar"}}],'
    '"annotations":{"org.opencontainers.image.license":"Apache-2.0","org.opencontainers.image.url":'
    '"https://example.org"}}'
)
V4_OPTIONS = {
    "annotations": {
        "org.opencontainers.image.license": "Apache-2.0",
        "org.opencontainers.image.url": "https://example.org",
    },
    "labels": {"version": "1.0", "quay.expires-after": "7d"},
}
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


def mask_layer_blobs(manifest: str) -> str:
    """The manifest with each layer's size and digest (which depend on the deflate stream) blanked out."""
    layer_blob = r'"size":\d+,"digest":"sha256:[0-9a-f]{64}","annotations"'
    return re.sub(layer_blob, '"size":0,"digest":"","annotations"', manifest)


# Building: the bytes tkn writes


def test_layer_tars_are_tkns_byte_for_byte():
    bundle = build_bundle([*THREE_TASKS, EXAMPLE_TASK])
    assert {layer.name: layer.diff_id for layer in bundle.layers} == DIFF_IDS
    # Our gzip stream differs from Go's, but both inflate to the same tar.
    task3 = next(layer for layer in bundle.layers if layer.name == "task3")
    assert gzip.decompress(task3.blob) == gzip.decompress(GO_TASK3_LAYER)
    assert task3.blob[:10] == bytes.fromhex("1f8b08000000000004ff")  # Go's header: mtime 0, XFL 4, OS 255


@pytest.mark.parametrize(
    ("files", "options", "config_digest"),
    [
        (
            THREE_TASKS,
            {"created": ZERO_TIME},
            "sha256:d80eeab76058c0906a840ce90361928a535224e7cb2a241586edde760fd8c625",
        ),
        (THREE_TASKS, {}, "sha256:14822012aee8250aba0a0eba04036ff91150b988f6e4b1483d4a2d19e120295f"),
        ([EXAMPLE_TASK], {}, "sha256:8eacb36497ff373b03d05f0f8e1a77a798a6c195f290fe3a9cb3569b2ef5ad32"),
        ([EXAMPLE_TASK], V4_OPTIONS, "sha256:88efcf6dcaf27b0f7b5188fdfe3f25710ceab564592427375735a5072398cbd7"),
    ],
    ids=["V1", "V2", "V3", "V4"],
)
def test_config_blob_is_tkns(files, options, config_digest):
    assert build_bundle(files, **options).config_digest == config_digest


def test_config_bytes_of_the_upstream_vector():
    bundle = build_bundle(THREE_TASKS, created=ZERO_TIME)
    assert bundle.config.decode() == V1_CONFIG
    assert b'"created":"1970-01-01T00:00:00Z"' in build_bundle(THREE_TASKS).config


@pytest.mark.parametrize(
    ("files", "options", "upstream"),
    [(THREE_TASKS, {"created": ZERO_TIME}, V1_MANIFEST), ([EXAMPLE_TASK], V4_OPTIONS, V4_MANIFEST)],
    ids=["V1", "V4"],
)
def test_manifest_is_tkns_but_for_the_gzip_streams(files, options, upstream):
    manifest = build_bundle(files, **options).manifest.decode()
    # Field order, media types, the config descriptor, annotations and layer order (task3, task1, task2) all match.
    assert mask_layer_blobs(manifest) == mask_layer_blobs(upstream)


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
        (datetime(2023, 9, 22, 1, 2, 3, 500000, timezone(timedelta(minutes=270))), "2023-09-22T01:02:03.5+04:30"),
        (datetime(2023, 9, 22, 1, 2, 3, tzinfo=timezone(timedelta(hours=-5))), "2023-09-22T01:02:03-05:00"),
        (datetime(2023, 9, 22), "2023-09-22T00:00:00Z"),  # naive: taken as UTC
    ],
)
def test_created_time_is_written_as_go_writes_it(created, text):
    assert f'"created":"{text}"'.encode() in build_bundle([EXAMPLE_TASK], created=created).config


def test_yaml_becomes_the_json_sigs_k8s_io_yaml_writes():
    extra = (
        "  params:\n"
        "    - {name: a, default: yes}\n"  # YAML 1.1: yes, y and on are booleans
        '  description: "<b> & </b> \\u2028"\n'
        "  x-numbers: [0755, 0x1F, 1_000, 1.0, 1e3, 1e21, 1.5e-7, 0.000001, -0.0, 18446744073709551615, 1e400]\n"
        "  x-strings: [1:20, 2001-12-14, !!str 12, y]\n"
        "  x-keys: {B: 1, a: 2, é: 3, 1: int, on: bool, 1000000.0: float}\n"
        "  x-merge:\n    <<: [{a: 1, b: 2}, {a: 3, c: 4}]\n    c: 5\n"
    )
    payload = layer_payload(build_bundle([task("go", extra)]))
    assert payload.decode() == (
        '{"apiVersion":"tekton.dev/v1","kind":"Task","metadata":{"name":"go"},"spec":{'
        '"description":"\\u003cb\\u003e \\u0026 \\u003c/b\\u003e \\u2028",'
        '"params":[{"default":true,"name":"a"}],"steps":[],'
        '"x-keys":{"1":"int","1e+06":"float","B":1,"a":2,"true":"bool","é":3},'
        '"x-merge":{"a":1,"b":2,"c":5},'
        '"x-numbers":[493,31,1000,1,1000,1e+21,1.5e-7,0.000001,-0,18446744073709551615,"1e400"],'
        '"x-strings":["1:20","2001-12-14","12",true]}}'
    )


def test_json_input_is_kept_verbatim_like_a_raw_extension():
    first = '{ "kind": "Task",\n  "apiVersion": "tekton.dev/v1", "metadata": {"name": "j1"}, "x": "\\u00e9 <" }'
    second = '{"apiVersion":"tekton.dev/v1beta1","kind":"Pipeline","metadata":{"name":"j2"}}'
    bundle = build_bundle([f"  \n{first}\n{second}\n"])
    assert [layer_payload(bundle, i).decode() for i in (0, 1)] == [first, second]
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
        ("{apiVersion: tekton.dev/v1, kind: Task}", "^found a spec that isn't YAML or JSON parseable"),  # `{`: JSON
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
        ('{"a":' * 100_000 + "1" + "}" * 100_000, "invalid JSON: maximum recursion depth"),
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


def test_long_names_use_a_pax_header_as_go_writes_it():
    name = "a" * 110 + ".example"
    bundle = build_bundle([task(name)])
    tar = gzip.decompress(bundle.layers[0].blob)
    pax, header = tar[:512], tar[1024:1536]
    assert pax[:100] == f"PaxHeaders.0/{name}"[:100].encode() and pax[156:157] == b"x"
    assert pax[329:345] == bytes(16)  # Go leaves the device fields of its own PAX header empty
    assert tar[512:1024].rstrip(b"\0") == f"128 path={name}\n".encode()
    assert header[:100] == name[:100].encode() and header[156:157] == b"0" and header[329:337] == b"0000000\0"
    with tarfile.open(fileobj=io.BytesIO(tar)) as archive:
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
