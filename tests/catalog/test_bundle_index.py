"""Publishing catalogs as bundles to a real registry, and indexing registries, on SQLite and PostgreSQL."""

import json

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from catalog.blobcache import BlobCache, CachedRegistry
from catalog.bundles import DOCKER_LAYER, DOCKER_MANIFEST, build_bundle
from catalog.errors import RegistryAuthError, RegistryServerError, RegistryUnreachable
from catalog.models import Resource, ResourceVersion
from catalog.publish import publish_catalog
from catalog.queries import CatalogIndex
from catalog.registry import OciRegistry
from catalog.sync import add_catalog, apply_tree, fetch, get_catalog
from tests.catalog.factories import task_yaml
from tests.catalog.test_registry import CountingTransport
from tests.catalog.test_sync import snapshot


def client(registry, tmp_path, transport=None, **kwargs):
    return CachedRegistry(OciRegistry(registry.host, transport=transport, **kwargs), BlobCache(tmp_path / "blobs"))


def publish(engine, reg, target, name="tekton"):
    with Session(engine) as s, s.begin():
        return publish_catalog(s, get_catalog(s, name), reg, target)


def add_registry(engine, name, target, repositories=()):
    with Session(engine) as s, s.begin():
        add_catalog(s, name, target, repositories=list(repositories))


def sync_registry(engine, settings, name, reg, full=False):
    with Session(engine) as s:
        files, tree = fetch(s, get_catalog(s, name), settings.catalogs_dir, registries=lambda host: reg, full=full)
    with Session(engine) as s, s.begin():
        return apply_tree(s, get_catalog(s, name), files, tree)


def test_publish_index_round_trip(engine, settings, indexed, registry, tmp_path):
    counting = CountingTransport()
    reg = client(registry, tmp_path, counting)
    first = publish(engine, reg, f"{registry.host}/catalog")
    assert (first.pushed, first.unchanged, first.failed) == (47, 0, [])

    counting.sent.clear()
    again = publish(engine, reg, f"{registry.host}/catalog")
    assert (again.pushed, again.unchanged) == (0, 47)
    assert {line.split()[0] for line in counting.sent} == {"HEAD"}  # nothing uploaded the second time
    assert len(counting.sent) == 47

    with Session(engine) as s:
        rows = s.execute(select(Resource.kind, Resource.name, ResourceVersion).join(ResourceVersion.resource)).all()
        git_clone = next(r for k, n, r in rows if (k, n, r.version) == ("Task", "git-clone", "0.10"))
    expected = build_bundle([git_clone.manifest]).digest
    assert git_clone.bundle_ref == f"{registry.host}/catalog/task/git-clone@{expected}"
    assert reg.head_manifest(f"{registry.host}/catalog/task/git-clone:0.10") == expected

    add_registry(engine, "local", f"{registry.host}/catalog")
    counting.sent.clear()
    cold = sync_registry(engine, settings, "local", client(registry, tmp_path / "fresh", counting))
    assert (cold.resources, cold.versions, cold.added) == (19, 47, 47)
    assert sum("/blobs/" in line for line in counting.sent) == 47  # one layer each, the config is not needed
    with Session(engine) as s:
        index = CatalogIndex(s)
        from_registry = index.resource("local", "Task", "git-clone", content=True)
        from_tree = index.resource("tekton", "Task", "git-clone")
        assert [v.version for v in from_registry.versions] == [v.version for v in from_tree.versions]
        latest = from_registry.latest
        assert latest.version == "0.10"
        assert latest.bundle_ref == git_clone.bundle_ref
        assert json.loads(latest.manifest)["metadata"]["name"] == "git-clone"  # compact JSON, as in the bundle
        assert latest.display_name == "git clone" and latest.deprecated
        assert latest.path == f"{registry.host}/catalog/task/git-clone:0.10"

    before = snapshot(engine)
    counting.sent.clear()
    unchanged = sync_registry(engine, settings, "local", client(registry, tmp_path / "other-cache", counting))
    assert not unchanged.changed
    assert not any("/blobs/" in line for line in counting.sent)  # an unchanged registry costs no blob
    assert not any("/manifests/" in line for line in counting.sent)  # release tags are read once
    assert sum("/tags/list" in line for line in counting.sent) == 19  # new tags are still found
    assert snapshot(engine) == before

    counting.sent.clear()
    full = sync_registry(engine, settings, "local", client(registry, tmp_path / "other-cache", counting), full=True)
    assert not full.changed
    assert sum("/manifests/" in line for line in counting.sent) == 47  # a full sync asks for every tag
    assert not any("/blobs/" in line for line in counting.sent)


def move_tag(reg, ref, text, **labels):
    """Point a tag at a rebuilt bundle of the given manifest text; returns the new manifest digest."""
    bundle = build_bundle([text], labels=labels)
    repo = ref.rsplit(":", 1)[0]
    for blob in bundle.blobs().values():
        reg.push_blob(repo, blob)
    return reg.push_manifest(ref, bundle.manifest, DOCKER_MANIFEST)


def test_release_tags_are_read_once_other_tags_every_time(engine, settings, registry, tmp_path):
    reg = client(registry, tmp_path)
    repo = f"{registry.host}/r/task/hello"
    first = task_yaml("hello", "0.1")
    move_tag(reg, f"{repo}:0.1", first)
    move_tag(reg, f"{repo}:latest", task_yaml("hello", "0.2"))
    add_registry(engine, "r", f"{registry.host}/r")
    assert sync_registry(engine, settings, "r", reg).versions == 2

    def pinned(version):
        with Session(engine) as s:
            return CatalogIndex(s).version("r", "Task", "hello", version).latest.bundle_ref

    moved = move_tag(reg, f"{repo}:0.1", first, rebuilt="yes")  # a release re-pushed: not looked at again
    latest = move_tag(reg, f"{repo}:latest", task_yaml("hello", "0.2"), rebuilt="yes")  # latest is always
    assert not pinned("0.1").endswith(moved)
    sync_registry(engine, settings, "r", reg)
    assert pinned("0.2") == f"{repo}@{latest}"
    assert not pinned("0.1").endswith(moved)
    sync_registry(engine, settings, "r", reg, full=True)
    assert pinned("0.1") == f"{repo}@{moved}"

    # A release moved to a broken bundle keeps its old index and its error, sync after sync, until it is fixed.
    broken = move_tag(reg, f"{repo}:0.1", task_yaml("hello", "0.9"))
    for full in (True, False):
        sync_registry(engine, settings, "r", reg, full=full)
        with Session(engine) as s:
            errors = [e.message for e in CatalogIndex(s).catalog_errors("r") if e.level == "error"]
        assert len(errors) == 1 and "does not match the tag '0.1'" in errors[0], errors
        assert pinned("0.1") == f"{repo}@{moved}"
    assert broken != moved
    fixed = move_tag(reg, f"{repo}:0.1", first, fixed="yes")
    sync_registry(engine, settings, "r", reg)
    assert pinned("0.1") == f"{repo}@{fixed}"
    with Session(engine) as s:
        assert not [e for e in CatalogIndex(s).catalog_errors("r") if e.level == "error"]


def test_a_version_under_two_tags_is_indexed_once(engine, settings, registry, tmp_path):
    reg = client(registry, tmp_path)
    repo = f"{registry.host}/r/task/hello"
    digest = move_tag(reg, f"{repo}:0.1", task_yaml("hello", "0.1"))
    assert move_tag(reg, f"{repo}:latest", task_yaml("hello", "0.1")) == digest
    add_registry(engine, "r", f"{registry.host}/r")
    for _ in range(2):  # read from the registry, then from the index
        summary = sync_registry(engine, settings, "r", reg)
        assert (summary.resources, summary.versions) == (1, 1)
        with Session(engine) as s:
            infos = [(e.path, e.message) for e in CatalogIndex(s).catalog_errors("r") if e.level == "info"]
        assert (f"{repo}:latest", "Task hello 0.1 is indexed from another tag") in infos
    assert not summary.changed


def test_registry_with_basic_auth(engine, settings, indexed, auth_registry, tmp_path):
    good = client(auth_registry, tmp_path, username="alice", password="s3cret")
    assert publish(engine, good, f"{auth_registry.host}/cat").pushed == 47
    add_registry(engine, "private", f"{auth_registry.host}/cat")
    assert sync_registry(engine, settings, "private", good).versions == 47
    wrong = client(auth_registry, tmp_path / "w", username="alice", password="wrong")
    before = snapshot(engine)
    with pytest.raises(RegistryAuthError):
        sync_registry(engine, settings, "private", wrong)
    assert snapshot(engine) == before


def push_manifest(reg, repo, tag, layers, config=b"{}"):
    """Push a hand-made manifest: layers are (blob, annotations) pairs."""
    config_digest = reg.push_blob(repo, config)
    descriptors = []
    for blob, annotations in layers:
        descriptor = {"mediaType": DOCKER_LAYER, "size": len(blob), "digest": reg.push_blob(repo, blob)}
        if annotations is not None:
            descriptor["annotations"] = annotations
        descriptors.append(descriptor)
    manifest = {
        "schemaVersion": 2,
        "mediaType": DOCKER_MANIFEST,
        "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "size": len(config),
                   "digest": config_digest},
        "layers": descriptors,
    }  # fmt: skip
    return reg.push_manifest(f"{repo}:{tag}", json.dumps(manifest).encode(), DOCKER_MANIFEST)


def test_bad_bundles_are_reported_and_the_rest_indexed(engine, settings, registry, tmp_path):
    reg = client(registry, tmp_path)
    prefix = f"{registry.host}/bad"
    good = build_bundle([task_yaml("good", "0.1")])
    for blob in good.blobs().values():
        reg.push_blob(f"{prefix}/good", blob)
    reg.push_manifest(f"{prefix}/good:0.1", good.manifest, DOCKER_MANIFEST)
    layer = build_bundle([task_yaml("many", "0.1")]).layers[0]
    notes = {"dev.tekton.image.apiVersion": "v1", "dev.tekton.image.kind": "task", "dev.tekton.image.name": "many"}
    push_manifest(reg, f"{prefix}/many", "0.1", [(layer.blob, notes)] * 21)
    push_manifest(reg, f"{prefix}/unannotated", "0.1", [(layer.blob, None)])
    push_manifest(reg, f"{prefix}/artifact", "0.1", [(b"just some bytes", {"org.example": "x"})])
    kinded = {**notes, "dev.tekton.image.kind": "Task"}
    push_manifest(reg, f"{prefix}/capital", "0.1", [(layer.blob, kinded)])
    tampered = build_bundle([task_yaml("tampered", "0.1")])
    for blob in tampered.blobs().values():
        reg.push_blob(f"{prefix}/tampered", blob)
    reg.push_manifest(f"{prefix}/tampered:0.1", tampered.manifest, DOCKER_MANIFEST)
    path = registry.blob_path(tampered.layers[0].digest)
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    path.write_bytes(bytes(data))
    huge = b"\x1f\x8b" + b"x" * (2 * 1024 * 1024)
    push_manifest(reg, f"{prefix}/huge", "0.1", [(huge, {**notes, "dev.tekton.image.name": "huge"})])
    mislabeled = build_bundle([task_yaml("mislabeled", "0.2")])
    for blob in mislabeled.blobs().values():
        reg.push_blob(f"{prefix}/mislabeled", blob)
    reg.push_manifest(f"{prefix}/mislabeled:0.1", mislabeled.manifest, DOCKER_MANIFEST)

    add_registry(engine, "bad", prefix)
    summary = sync_registry(engine, settings, "bad", client(registry, tmp_path / "fresh"))
    assert summary.versions == 1
    with Session(engine) as s:
        problems = {e.path.rsplit("/", 1)[1]: e.message for e in CatalogIndex(s).catalog_errors("bad")}
    assert "contained more than the maximum 20 allow objects" in problems["many:0.1"]
    assert "does not contain a dev.tekton.image.apiVersion annotation" in problems["unannotated:0.1"]
    assert "does not contain a dev.tekton.image.apiVersion annotation" in problems["artifact:0.1"]
    assert "must be lowercased and singular, found Task" in problems["capital:0.1"]
    assert tampered.layers[0].digest in problems["tampered:0.1"]
    assert "bytes" in problems["huge:0.1"]
    assert "does not match the tag '0.1'" in problems["mislabeled:0.1"]
    assert problems["many:0.1"].startswith(f"invalid tekton bundle {prefix}/many:0.1, error: ")


class FailingAfter:
    """The real client, made to fail at the nth call of one method: a registry failing in the middle of a sync."""

    def __init__(self, registry, method, calls, error):
        self.registry, self.method, self.left, self.error = registry, method, calls, error

    def __getattr__(self, name):
        real = getattr(self.registry, name)
        if name != self.method:
            return real

        def call(*args, **kwargs):
            self.left -= 1
            if self.left < 0:
                raise self.error
            return real(*args, **kwargs)

        return call


@pytest.mark.parametrize(
    "error",
    [RegistryServerError("registry answered 500"), RegistryAuthError("registry answered 401"),
     RegistryUnreachable("connection refused")],
    ids=["500", "401", "down"],
)  # fmt: skip
def test_failure_in_the_middle_keeps_the_previous_index(engine, settings, indexed, registry, tmp_path, error):
    reg = client(registry, tmp_path)
    publish(engine, reg, f"{registry.host}/catalog")
    add_registry(engine, "local", f"{registry.host}/catalog")
    sync_registry(engine, settings, "local", reg)
    before = snapshot(engine)
    # Move ten tags to new content, so the next sync has blobs to fetch, and fail on the way.
    with Session(engine) as s:
        rows = s.execute(
            select(Resource.kind, Resource.name, ResourceVersion.version, ResourceVersion.manifest)
            .join(ResourceVersion.resource)
            .where(ResourceVersion.bundle_ref.is_not(None))
            .limit(10)
        ).all()
    for kind, name, version, text in rows:
        move_tag(reg, f"{registry.host}/catalog/{kind.lower()}/{name}:{version}", text, rebuilt="yes")
    failing = FailingAfter(client(registry, tmp_path / "c2"), "get_blob", 3, error)
    with pytest.raises(type(error)):
        sync_registry(engine, settings, "local", failing, full=True)
    assert snapshot(engine) == before


def test_registry_down_before_sync(engine, settings, registry, tmp_path):
    add_registry(engine, "gone", f"{registry.host}/x")
    registry.stop()
    with pytest.raises(RegistryUnreachable):
        sync_registry(engine, settings, "gone", client(registry, tmp_path, attempts=1))


def test_configured_repositories_when_the_registry_does_not_list(engine, settings, indexed, registry, tmp_path):
    reg = client(registry, tmp_path)
    publish(engine, reg, f"{registry.host}/catalog")
    add_registry(engine, "some", f"{registry.host}/catalog", ["catalog/task/git-clone", "catalog/task/yq"])

    class NoListing(CachedRegistry):
        def list_repositories(self):
            raise AssertionError("configured repositories must not be discovered")

    summary = sync_registry(engine, settings, "some", NoListing(reg.registry, reg.cache))
    assert (summary.resources, summary.versions) == (2, 14)


def test_resource_page_shows_the_pinned_bundle(app, engine, settings, indexed, registry, tmp_path):
    reg = client(registry, tmp_path)
    publish(engine, reg, f"{registry.host}/catalog")
    add_registry(engine, "local", f"{registry.host}/catalog")
    sync_registry(engine, settings, "local", reg)
    with Session(engine) as s:
        ref = CatalogIndex(s).resource("local", "Task", "git-clone").latest.bundle_ref
    assert ref and "@sha256:" in ref
    for path in ("/local/task/git-clone", "/tekton/task/git-clone"):  # indexed from the registry, and published
        page = app.test_client().get(path, headers={"Accept": "text/html"}).get_data(as_text=True)
        assert f'<code id="bundle-ref">{ref}</code>' in page
        snippet = "taskRef:\n  resolver: bundles\n  params:\n    - name: bundle\n      value: " + ref
        assert snippet + "\n    - name: name\n      value: git-clone\n    - name: kind\n      value: task\n" in page
    step = app.test_client().get("/local/stepaction/git-clone", headers={"Accept": "text/html"})
    assert "ref:\n  resolver: bundles" in step.get_data(as_text=True)


def test_plain_http_only_for_loopback_unless_configured(tmp_path):
    from catalog.errors import InsecureRegistry
    from hub.config import Settings
    from hub.registries import registry_client

    with pytest.raises(InsecureRegistry):
        OciRegistry("http://registry.internal:5000")  # refused before any request
    settings = Settings(data_dir=tmp_path, insecure_registries="registry.internal:5000")
    allowed = registry_client(settings, None, "registry.internal:5000")
    assert allowed.registry.base_url == "http://registry.internal:5000"
    assert registry_client(Settings(data_dir=tmp_path), None, "registry.example.com").registry.base_url.startswith(
        "https://"
    )


def test_oci_manifests_indexes_and_raw_layers_are_read(engine, settings, registry, tmp_path):
    """What others push: an OCI index with a linux/amd64 image, an OCI manifest, an uncompressed raw YAML layer."""
    reg = client(registry, tmp_path)
    prefix = f"{registry.host}/others"
    built = build_bundle([task_yaml("indexed", "1.0.0")])
    for blob in built.blobs().values():
        reg.push_blob(f"{prefix}/indexed", blob)
    child = reg.push_manifest(f"{prefix}/indexed@{built.digest}", built.manifest, DOCKER_MANIFEST)
    index = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [
            {"mediaType": DOCKER_MANIFEST, "digest": child, "size": len(built.manifest),
             "platform": {"architecture": "amd64", "os": "linux"}},
        ],
    }  # fmt: skip
    reg.push_manifest(f"{prefix}/indexed:v1.0.0", json.dumps(index).encode(), "application/vnd.oci.image.index.v1+json")

    raw = task_yaml("raw", "0.3").encode()
    config = b"{}"
    oci = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "size": len(config),
                   "digest": reg.push_blob(f"{prefix}/raw", config)},
        "layers": [
            {"mediaType": "application/vnd.oci.image.layer.v1.tar", "size": len(raw),
             "digest": reg.push_blob(f"{prefix}/raw", raw),
             "annotations": {"dev.tekton.image.apiVersion": "tekton.dev/v1", "dev.tekton.image.kind": "task",
                             "dev.tekton.image.name": "raw"}},
        ],
    }  # fmt: skip
    reg.push_manifest(f"{prefix}/raw:0.3", json.dumps(oci).encode(), "application/vnd.oci.image.manifest.v1+json")

    add_registry(engine, "others", prefix)
    summary = sync_registry(engine, settings, "others", client(registry, tmp_path / "fresh"))
    assert (summary.versions, summary.problems["error"]) == (2, 0)
    with Session(engine) as s:
        index_view = CatalogIndex(s)
        indexed = index_view.resource("others", "Task", "indexed").latest
        assert indexed.version == "1.0.0"
        assert indexed.bundle_ref == f"{prefix}/indexed@{child}"  # pinned to the image, as the resolver pins it
        raw_row = index_view.resource("others", "Task", "raw", content=True).latest
        assert raw_row.manifest == raw.decode()  # stored as it was in the layer


def test_a_version_that_comes_back_keeps_its_published_bundle(engine, settings, registry, tmp_path):
    import shutil

    from tests.catalog.factories import write_version
    from tests.conftest import register, sync

    root = tmp_path / "cat"
    write_version(root, "hello", "0.1")
    register(engine, "mine", root)
    sync(engine, settings, "mine")
    publish(engine, client(registry, tmp_path), f"{registry.host}/p", name="mine")
    with Session(engine) as s:
        published = CatalogIndex(s).version("mine", "Task", "hello", "0.1").latest.bundle_ref
    assert published
    kept = tmp_path / "kept"
    shutil.move(root / "task" / "hello" / "0.1", kept)
    write_version(root, "hello", "0.2")
    assert sync(engine, settings, "mine").removed == 1
    shutil.move(kept, root / "task" / "hello" / "0.1")
    assert sync(engine, settings, "mine").updated == 1
    with Session(engine) as s:
        back = CatalogIndex(s).version("mine", "Task", "hello", "0.1").latest
        assert back.removed_at is None and back.bundle_ref == published


def test_publish_stops_at_an_unreachable_registry_and_records_nothing(engine, indexed, registry, tmp_path):
    registry.stop()
    summary = publish(engine, client(registry, tmp_path, attempts=1), f"{registry.host}/catalog")
    assert (summary.pushed, summary.unchanged, summary.failed) == (0, 0, [])
    assert summary.stopped and "connection refused" in summary.stopped
    assert "run the same command again to continue" in "\n".join(summary.lines())
    with Session(engine) as s:
        assert s.scalars(select(ResourceVersion.bundle_ref).where(ResourceVersion.bundle_ref.is_not(None))).all() == []
