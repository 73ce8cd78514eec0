"""The resolver API: hub and bundle references resolved to bytes pinned by digest, with Tekton's messages."""

import contextlib
import dataclasses
import hashlib
import json
import subprocess
import threading

import pytest
from sqlalchemy.orm import Session

from catalog.blobcache import BlobCache, CachedRegistry
from catalog.publish import publish_catalog
from catalog.registry import OciRegistry
from catalog.sync import add_catalog, get_catalog
from hub.app import create_app
from tests.hub.test_tekton_api import assert_goa_error

PREFIX = "/v1/resolve"


def resolve(client, **params):
    return client.get(PREFIX, query_string=params)


def test_hub_reference_with_a_constraint_resolves_to_the_greatest_match(client, fixture_catalog):
    answer = resolve(client, resolver="hub", name="git-clone", version=">=0.7, <0.10")
    assert answer.status_code == 200, answer.data
    body = answer.get_json()
    on_disk = (fixture_catalog / "task/git-clone/0.9/git-clone.yaml").read_bytes()
    assert body["version"] == "0.9" and body["data"].encode() == on_disk  # 0.9 < 0.10: versions, not strings
    assert body["refSource"] == {
        "uri": "http://localhost/v1/resource/tekton/task/git-clone/0.9/yaml",
        "digest": {"sha256": hashlib.sha256(on_disk).hexdigest()},
    }
    assert body["annotations"] == {}  # Tekton's hub resolver sets none
    assert answer.headers["Cache-Control"] == "no-store"

    for constraint, version in [("~>0.9", "0.10"), ("!=0.10", "0.9"), ("0.7", "0.7"), ("0.7.0", "0.7")]:
        assert resolve(client, resolver="hub", name="git-clone", version=constraint).get_json()["version"] == version
    artifact = resolve(client, resolver="hub", type="artifact", name="git-clone", version="0.9").get_json()
    # No catalog: Tekton's default tekton-catalog-tasks, which stands for this hub's default catalog.
    assert artifact["refSource"]["uri"] == "http://localhost/api/v1/packages/tekton-task/tekton/git-clone/0.9.0"


def test_post_takes_tekton_params_as_a_list_or_an_object(client):
    as_list = [{"name": "name", "value": "git-clone"}, {"name": "version", "value": "~>0.9"}]
    listed = client.post(PREFIX, json={"resolver": "hub", "params": as_list}).get_json()
    mapped = client.post(PREFIX, json={"resolver": "hub", "params": {"name": "git-clone", "version": "~>0.9"}})
    assert listed == mapped.get_json() and listed["version"] == "0.10"


@pytest.mark.parametrize(
    ("params", "status", "message"),
    [
        ({"resolver": "hub", "name": "git-clone"}, 400, "missing required hub resolver params: name, version"),
        ({"resolver": "hub", "name": "git-clone", "version": "1", "kind": "tasks"}, 400,
         "kind param must be one of: task, pipeline, stepaction"),
        ({"resolver": "hub", "name": "git-clone", "version": "1", "type": "gitlab"}, 400,
         "type param must be artifact or tekton"),
        ({"resolver": "hub", "name": "git-clone", "version": ">=5"}, 404, "no version found for constraint >=5"),
        ({"resolver": "hub", "name": "git-clone", "version": ">>5"}, 400, "malformed constraint"),
        ({"resolver": "hub", "name": "nope", "version": "0.1"}, 404,
         "requested resource 'http://localhost/v1/resource/tekton/task/nope' not found on hub"),
        ({"resolver": "hub", "name": "x", "version": "1", "type": "artifact", "kind": "stepaction"}, 400,
         "failed to resolve catalog name with kind: stepaction"),
        ({"resolver": "hub", "name": "x", "version": "1", "colour": "red"}, 400, "unknown parameter 'colour'"),
        ({"resolver": "git", "url": "x"}, 400, "resolver must be one of: bundles, hub, taskhub"),
        ({"resolver": "bundles"}, 400, "no params"),
        ({"resolver": "bundles", "name": "x"}, 400, 'parameter "bundle" required'),
        ({"resolver": "bundles", "bundle": "127.0.0.1:5000/x:1"}, 400, 'parameter "name" required'),
        ({"resolver": "bundles", "bundle": "127.0.0.1:5000/X:1", "name": "x"}, 400, "invalid bundle reference"),
        ({"resolver": "bundles", "bundle": "127.0.0.1:5000/x:1", "name": "x", "cache": "sometimes"}, 400,
         "invalid cache mode 'sometimes', must be one of: [always never auto] (or empty for default)"),
    ],
)  # fmt: skip
def test_bad_requests_get_tekton_messages(client, params, status, message):
    answer = resolve(client, **params)
    assert answer.status_code == status
    assert message in json.loads(answer.data)["message"]


def test_resolver_taskhub_is_the_bundles_resolver_given_a_bundle_else_the_hub_one(client):
    """`resolver: taskhub` names `taskhub resolver serve`, which answers a reference with a bundle param from a
    registry and any other from the index: the API answers it the same way."""
    hub = resolve(client, resolver="hub", name="git-clone", version="~>0.9").get_json()
    assert resolve(client, resolver="taskhub", name="git-clone", version="~>0.9").get_json() == hub
    as_list = [{"name": "name", "value": "git-clone"}, {"name": "version", "value": "~>0.9"}]
    assert client.post(PREFIX, json={"resolver": "taskhub", "params": as_list}).get_json() == hub
    no_name = resolve(client, resolver="taskhub", bundle="127.0.0.1:5000/x:1")
    assert no_name.status_code == 400 and 'parameter "name" required' in no_name.get_json()["message"]


def test_malformed_bodies_are_4xx(client):
    assert_goa_error(client.post(PREFIX, data=b"{not json"), 400, "invalid-payload")
    assert_goa_error(client.post(PREFIX, json=[1, 2]), 400, "invalid-payload")
    assert_goa_error(client.post(PREFIX, json={"resolver": "hub", "params": [{"value": 1}]}), 400, "invalid-payload")
    assert_goa_error(client.post(PREFIX, json={"resolver": "hub", "params": {"name": 5}}), 400, "invalid-params")
    assert_goa_error(client.post(PREFIX, json={"resolver": "hub", "extra": 1}), 400, "invalid-payload")
    deep = "[" * 100_000 + "]" * 100_000
    assert_goa_error(client.post(PREFIX, data=deep), 413, "payload-too-large")
    assert_goa_error(client.post(PREFIX, data=b"[" * 10_000 + b"]" * 10_000), 400, "invalid-payload")
    assert_goa_error(resolve(client, resolver="hub", name=["a", "b"], version="1"), 400, "invalid-params")


@pytest.fixture
def bundles(engine, settings, indexed, registry):
    """The test catalog published to a real registry that the hub knows as the "bundles" catalog."""
    reg = CachedRegistry(OciRegistry(registry.host), BlobCache(settings.data_dir / "publish-blobs"))
    with Session(engine) as s, s.begin():
        publish_catalog(s, get_catalog(s, "tekton"), reg, f"{registry.host}/catalog")
        add_catalog(s, "bundles", f"{registry.host}/catalog", repositories=[])
    return reg


def test_bundle_reference_resolves_to_the_layer_pinned_by_digest(app, bundles, registry):
    client = app.test_client()
    ref = f"{registry.host}/catalog/task/git-clone:0.10"
    digest = bundles.head_manifest(ref)
    answer = resolve(client, resolver="bundles", bundle=ref, name="git-clone", kind="task")
    assert answer.status_code == 200, answer.data
    body = answer.get_json()
    assert json.loads(body["data"])["metadata"]["name"] == "git-clone"  # compact JSON, as tkn writes it
    assert body["version"] == "0.10"
    assert resolve(client, resolver="taskhub", bundle=ref, name="git-clone", kind="task").get_json() == body
    assert body["refSource"] == {
        "uri": f"{registry.host}/catalog/task/git-clone",
        "digest": {"sha256": digest.split(":")[1]},
        "entryPoint": "git-clone",
    }
    assert body["annotations"] == {
        "resolution.tekton.dev/dev.tekton.image.kind": "task",
        "resolution.tekton.dev/dev.tekton.image.name": "git-clone",
        "resolution.tekton.dev/dev.tekton.image.apiVersion": "v1",
    }

    assert "resolution.tekton.dev/cached" not in body["annotations"]  # a tag is not cached in Tekton's sense
    pinned = f"{registry.host}/catalog/task/git-clone@{bundles.head_manifest(ref.replace('0.10', '0.9'))}"
    first = resolve(client, resolver="bundles", bundle=pinned, name="git-clone").get_json()
    again = resolve(client, resolver="bundles", bundle=pinned, name="git-clone").get_json()
    assert first == again | {"annotations": first["annotations"]} and first["version"] == "0.9"
    assert first["annotations"]["resolution.tekton.dev/cached"] == "true"
    assert [first["annotations"]["resolution.tekton.dev/cache-operation"],
            again["annotations"]["resolution.tekton.dev/cache-operation"]] == ["store", "retrieve"]  # fmt: skip

    missing = resolve(client, resolver="bundles", bundle=pinned, name="git-clone", kind="pipeline")
    assert_goa_error(missing, 404, "not-found", "could not find object in image with kind: pipeline and name: git-cl")
    absent = resolve(client, resolver="bundles", bundle=f"{registry.host}/catalog/task/nope:1.0", name="nope")
    assert absent.status_code == 404


def test_registries_off_the_allowlist_are_refused_before_any_connection(app, fake_registry):
    seen = []
    fake = fake_registry(lambda request: seen.append(request) or (200, {}, b"{}"))
    client = app.test_client()
    for bundle in (f"{fake.host}/task/x:1", "gcr.io/tekton-releases/catalog/upstream/git-clone:0.9", "ubuntu"):
        answer = resolve(client, resolver="bundles", bundle=bundle, name="x")
        assert_goa_error(answer, 403, "registry-not-allowed", "is not on this hub's allowlist")
    assert (
        "index.docker.io" in json.loads(resolve(client, resolver="bundles", bundle="ubuntu", name="x").data)["message"]
    )
    assert seen == []


def test_any_registry_allowed_still_keeps_clients_off_loopback_ports(settings, fake_registry, listener):
    """With TASKHUB_RESOLVE_REGISTRIES=*, a client cannot make the hub probe its own loopback ports."""
    fake = fake_registry(lambda request: (200, {}, b"{}"))
    closed = listener("127.0.0.1")
    client = create_app(dataclasses.replace(settings, resolve_registries="*")).test_client()
    for host in (fake.host, f"127.0.0.1:{closed.port}", f"localhost:{fake.host.split(':')[1]}"):
        answer = resolve(client, resolver="bundles", bundle=f"{host}/task/x:1", name="x")
        assert_goa_error(answer, 403, "registry-not-allowed", "not a public address")
    assert fake.requests == [] and closed.connections == 0


def test_a_refused_redirect_is_a_warning_with_its_reason(settings, fake_registry, listener, caplog):
    victim = listener("127.0.0.2")
    fake = fake_registry(lambda request: (307, {"Location": f"http://127.0.0.2:{victim.port}/x"}, b""))
    client = create_app(dataclasses.replace(settings, resolve_registries=fake.host)).test_client()
    answer = resolve(client, resolver="bundles", bundle=f"{fake.host}/task/x:1", name="x")
    assert_goa_error(answer, 502, "registry-error", "neither this registry nor a blob host the hub allows")
    refusals = [r for r in caplog.records if "RedirectRefused" in r.getMessage()]
    assert [r.levelname for r in refusals] == ["WARNING"]
    assert "127.0.0.2" in refusals[0].getMessage() and "unexpected" not in caplog.text
    assert victim.connections == 0


def test_registry_down_digest_pinned_still_resolve_tags_fail_clearly(settings, bundles, registry):
    app = create_app(dataclasses.replace(settings, resolve_tag_ttl=0))
    client = app.test_client()
    ref = f"{registry.host}/catalog/task/git-clone"
    digest = bundles.head_manifest(f"{ref}:0.10")
    assert resolve(client, resolver="bundles", bundle=f"{ref}@{digest}", name="git-clone").status_code == 200
    assert resolve(client, resolver="bundles", bundle=f"{ref}:0.10", name="git-clone").status_code == 200
    registry.stop()
    pinned = resolve(client, resolver="bundles", bundle=f"{ref}@{digest}", name="git-clone")
    assert pinned.status_code == 200 and json.loads(pinned.get_json()["data"])["metadata"]["name"] == "git-clone"
    # A fresh worker (nothing in memory) still has the content on disk.
    fresh = create_app(dataclasses.replace(settings, resolve_tag_ttl=0)).test_client()
    assert resolve(fresh, resolver="bundles", bundle=f"{ref}@{digest}", name="git-clone").status_code == 200
    tagged = resolve(client, resolver="bundles", bundle=f"{ref}:0.10", name="git-clone")
    assert_goa_error(tagged, 502, "registry-error", registry.host)


@pytest.fixture
def full_blob_disk(settings):
    """The blob cache's directory on a tiny filesystem (tmpfs), filled to the last byte."""
    blobs = settings.data_dir / "blobs"
    blobs.mkdir(parents=True)
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(blobs)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root): {mounted.stderr.decode().strip()}")
    try:
        with contextlib.suppress(OSError), (blobs / "filler").open("wb", buffering=0) as filler:
            while True:
                filler.write(b"x" * 4096)
                filler.flush()
        yield blobs
    finally:
        subprocess.run(["umount", "-l", str(blobs)], check=True)


def test_a_full_blob_cache_disk_still_resolves_from_memory(settings, bundles, registry, full_blob_disk, caplog):
    client = create_app(settings).test_client()
    ref = f"{registry.host}/catalog/task/git-clone"
    for bundle in (f"{ref}:0.10", f"{ref}@{bundles.head_manifest(f'{ref}:0.9')}"):
        answer = resolve(client, resolver="bundles", bundle=bundle, name="git-clone")
        assert answer.status_code == 200, answer.data
        assert json.loads(answer.get_json()["data"])["metadata"]["name"] == "git-clone"
    assert "could not keep blob" in caplog.text and "No space left on device" in caplog.text


def test_a_tampered_blob_is_refused(settings, bundles, registry):
    client = create_app(settings).test_client()
    ref = f"{registry.host}/catalog/task/yq:0.4"
    manifest = json.loads(bundles.get_manifest(ref).raw)
    path = registry.blob_path(manifest["layers"][0]["digest"])
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    path.write_bytes(bytes(data))
    answer = resolve(client, resolver="bundles", bundle=ref, name="yq")
    assert_goa_error(answer, 502, "registry-error", manifest["layers"][0]["digest"])


def test_concurrent_identical_misses_fetch_once(settings, bundles, registry):
    from tests.catalog.test_registry import CountingTransport

    app = create_app(settings)
    counting = CountingTransport()
    resolvers = app.extensions["taskhub.resolvers"]
    resolvers.bundles.registries = lambda host: OciRegistry(host, transport=counting)
    ref = f"{registry.host}/catalog/task/git-clone:0.9"
    barrier = threading.Barrier(20)
    answers = []

    def ask():
        with app.test_client() as c:
            barrier.wait()
            answers.append(resolve(c, resolver="bundles", bundle=ref, name="git-clone").get_json())

    threads = [threading.Thread(target=ask) for _ in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(answers) == 20 and len({a["data"] for a in answers}) == 1
    assert len(counting.sent) == 2, counting.sent  # the tag's manifest, then the layer: once each
    assert counting.sent[0] == f"GET http://{registry.host}/v2/catalog/task/git-clone/manifests/0.9"
    assert counting.sent[1].startswith(f"GET http://{registry.host}/v2/catalog/task/git-clone/blobs/sha256:")
