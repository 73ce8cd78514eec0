"""Pinning runs against the real hub index and a real registry: the lock names exact versions and digests."""

import hashlib
import json

import pytest
from sqlalchemy.orm import Session

from catalog.blobcache import BlobCache, CachedRegistry
from catalog.publish import publish_catalog
from catalog.registry import OciRegistry
from catalog.sync import add_catalog, get_catalog
from hub.registries import Resolvers
from runner.local_store import InstalledStore
from runner.pinning import (
    LOCK_ANNOTATION,
    CatalogReferenceResolver,
    PinningError,
    pin_references_only,
    pin_run,
)


@pytest.fixture
def published(engine, settings, indexed, registry):
    """The test catalog published to a real registry that the hub knows as the "bundles" catalog."""
    reg = CachedRegistry(OciRegistry(registry.host), BlobCache(settings.data_dir / "publish-blobs"))
    with Session(engine) as s, s.begin():
        publish_catalog(s, get_catalog(s, "tekton"), reg, f"{registry.host}/catalog")
        add_catalog(s, "bundles", f"{registry.host}/catalog", repositories=[])
    return reg


@pytest.fixture
def resolve_ref(engine, settings, tmp_path):
    resolvers = Resolvers(settings, engine)
    store = InstalledStore(engine)
    return CatalogReferenceResolver(engine, resolvers.bundles, resolvers.hub, store, "http://hub.test/")


def pipeline_run(bundle: str) -> dict:
    hub_ref = {"resolver": "hub", "params": [{"name": "name", "value": "git-clone"},
                                             {"name": "version", "value": ">=0.7, <0.10"}]}  # fmt: skip
    bundle_ref = {"resolver": "bundles", "params": [{"name": "bundle", "value": bundle},
                                                    {"name": "name", "value": "git-clone"},
                                                    {"name": "kind", "value": "task"}]}  # fmt: skip
    return {
        "apiVersion": "tekton.dev/v1beta1",
        "kind": "PipelineRun",
        "metadata": {"name": "clone"},
        "spec": {
            "pipelineSpec": {
                "tasks": [{"name": "from-hub", "taskRef": hub_ref}],
                "finally": [{"name": "from-bundle", "taskRef": bundle_ref}],
            }
        },
    }


def test_pin_run_inlines_tasks_and_locks_exact_versions_and_digests(resolve_ref, published, registry, fixture_catalog):
    bundle = f"{registry.host}/catalog/task/git-clone:0.10"
    manifest_digest = published.head_manifest(bundle).split(":")[1]
    pinned, lock = pin_run(pipeline_run(bundle), resolve_ref)

    assert pinned["apiVersion"] == "tekton.dev/v1"
    hub_task, bundle_task = pinned["spec"]["pipelineSpec"]["tasks"][0], pinned["spec"]["pipelineSpec"]["finally"][0]
    assert "taskRef" not in hub_task and "taskRef" not in bundle_task
    assert hub_task["taskSpec"]["steps"][0]["name"] == "clone"
    # v1beta1 content converted to v1, its params kept.
    assert any(p["name"] == "url" for p in hub_task["taskSpec"]["params"])

    on_disk = (fixture_catalog / "task/git-clone/0.9/git-clone.yaml").read_bytes()
    recorded = json.loads(pinned["metadata"]["annotations"][LOCK_ANNOTATION])
    assert recorded == [e.to_json() for e in lock]
    by_path = {e["path"]: e for e in recorded}
    hub = by_path["spec.pipelineSpec.tasks[from-hub].taskRef"]
    assert (hub["resolver"], hub["kind"], hub["name"], hub["version"]) == ("hub", "Task", "git-clone", "0.9")
    assert hub["digest"] == f"sha256:{hashlib.sha256(on_disk).hexdigest()}"
    assert {"name": "version", "value": "0.9"} in hub["params"]
    assert hub["uri"] == "http://hub.test/v1/resource/tekton/task/git-clone/0.9/yaml"
    pinned_bundle = by_path["spec.pipelineSpec.finally[from-bundle].taskRef"]
    assert (pinned_bundle["resolver"], pinned_bundle["version"]) == ("bundles", "0.10")
    assert pinned_bundle["digest"] == f"sha256:{manifest_digest}"
    assert {"name": "bundle", "value": f"{registry.host}/catalog/task/git-clone@sha256:{manifest_digest}"} in (
        pinned_bundle["params"]
    )


def test_pin_only_keeps_references_with_the_tag_replaced_by_the_digest(resolve_ref, published, registry):
    bundle = f"{registry.host}/catalog/task/git-clone:0.10"
    manifest_digest = published.head_manifest(bundle)
    pinned, lock = pin_references_only(pipeline_run(bundle), resolve_ref)

    spec = pinned["spec"]["pipelineSpec"]
    assert {p["name"]: p["value"] for p in spec["tasks"][0]["taskRef"]["params"]} == {
        "name": "git-clone",
        "version": "0.9",
    }
    bundle_params = {p["name"]: p["value"] for p in spec["finally"][0]["taskRef"]["params"]}
    assert bundle_params["bundle"] == f"{registry.host}/catalog/task/git-clone@{manifest_digest}"
    assert "taskSpec" not in spec["tasks"][0]
    assert [e.version for e in lock] == ["0.9", "0.10"]

    again, _ = pin_references_only(pinned, resolve_ref)  # pinned references resolve to the same content
    assert again["spec"] == pinned["spec"]


def taskhub_ref(**params: str) -> dict:
    return {"resolver": "taskhub", "params": [{"name": k, "value": v} for k, v in params.items()]}


GIT_REF = {"resolver": "git", "params": [{"name": "url", "value": "https://example.com/tasks.git"},
                                         {"name": "pathInRepo", "value": "task/lint.yaml"}]}  # fmt: skip


def test_resolver_taskhub_is_resolved_by_taskhub_as_its_cluster_resolver_would(resolve_ref, published, registry):
    bundle = f"{registry.host}/catalog/task/git-clone:0.10"
    digest = published.head_manifest(bundle)
    run = pipeline_run(bundle)
    run["spec"]["pipelineSpec"]["tasks"] = [
        {"name": "by-hub", "taskRef": taskhub_ref(name="git-clone", version=">=0.7, <0.10")},
        {"name": "by-bundle", "taskRef": taskhub_ref(bundle=bundle, name="git-clone", kind="task")},
    ]
    inlined, lock = pin_run(run, resolve_ref)
    assert [(e.resolver, e.version) for e in lock] == [("taskhub", "0.9"), ("taskhub", "0.10"), ("bundles", "0.10")]
    assert all("taskSpec" in task for task in inlined["spec"]["pipelineSpec"]["tasks"])

    kept, _ = pin_references_only(run, resolve_ref)
    by_hub, by_bundle = (task["taskRef"] for task in kept["spec"]["pipelineSpec"]["tasks"])
    assert by_hub == taskhub_ref(name="git-clone", version="0.9")
    assert by_bundle["resolver"] == "taskhub"
    assert {"name": "bundle", "value": f"{registry.host}/catalog/task/git-clone@{digest}"} in by_bundle["params"]


def test_pass_through_leaves_git_and_taskhub_references_to_the_cluster_and_pins_hub_ones(
    resolve_ref, published, registry
):
    run = pipeline_run(f"{registry.host}/catalog/task/git-clone:0.10")
    tasks = run["spec"]["pipelineSpec"]["tasks"]
    tasks += [{"name": "lint", "taskRef": GIT_REF}, {"name": "clone", "taskRef": taskhub_ref(name="git-clone")}]
    with pytest.raises(PinningError, match=r'tasks\[lint\].taskRef: Task reference uses resolver "git", which only'):
        pin_run(run, resolve_ref)

    for pin in (pin_run, pin_references_only):
        pinned, _ = pin(run, resolve_ref, pass_through=True)
        hub_task, lint, clone = pinned["spec"]["pipelineSpec"]["tasks"]
        assert lint == {"name": "lint", "taskRef": GIT_REF}
        assert clone == {"name": "clone", "taskRef": taskhub_ref(name="git-clone")}
        if pin is pin_run:
            assert "taskRef" not in hub_task and hub_task["taskSpec"]["steps"][0]["name"] == "clone"
        else:
            assert {"name": "version", "value": "0.9"} in hub_task["taskRef"]["params"]
        recorded = json.loads(pinned["metadata"]["annotations"][LOCK_ANNOTATION])
        assert [(e["resolver"], e["digest"] is None, e.get("passedThrough", False)) for e in recorded] == [
            ("hub", False, False), ("git", True, True), ("taskhub", True, True), ("bundles", False, False),
        ]  # fmt: skip
        assert recorded[2]["name"] == "git-clone" and recorded[2]["path"] == "spec.pipelineSpec.tasks[clone].taskRef"


def test_unresolvable_reference_names_where_it_is(resolve_ref, indexed):
    run = pipeline_run("unused")
    run["spec"]["pipelineSpec"]["tasks"][0]["taskRef"]["params"][1]["value"] = ">=5"
    with pytest.raises(PinningError, match=r"tasks\[from-hub\].taskRef: no version found for constraint >=5"):
        pin_run(run, resolve_ref)


ALIAS_BOMB = (
    "apiVersion: tekton.dev/v1\nkind: Task\nmetadata:\n  name: bomb\n"
    'a: &a ["x","x","x","x","x","x","x","x","x"]\n'
    "b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\nc: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\n"
    "d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]\ne: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]\n"
    "f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]\ng: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]\n"
    "spec:\n  steps: [{name: s, image: alpine, script: 'true'}]\n"
)


def push_hostile_bundle(registry, repo: str, text: str) -> str:
    """A bundle whose one Task layer holds text as it is (no checks on the way in); returns its digest ref."""
    from catalog.bundles import DOCKER_CONFIG, DOCKER_LAYER, DOCKER_MANIFEST, _layer

    reg = OciRegistry(registry.host)
    layer = _layer("Task", "v1", "bomb", text.encode())
    config = b"{}"
    config_digest = f"sha256:{hashlib.sha256(config).hexdigest()}"
    reg.push_blob(repo, config)
    reg.push_blob(repo, layer.blob)
    annotations = {
        "dev.tekton.image.apiVersion": "v1",
        "dev.tekton.image.kind": "task",
        "dev.tekton.image.name": "bomb",
    }
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": DOCKER_MANIFEST,
        "config": {"mediaType": DOCKER_CONFIG, "size": len(config), "digest": config_digest},
        "layers": [{"mediaType": DOCKER_LAYER, "size": layer.size, "digest": layer.digest, "annotations": annotations}],
    }).encode()  # fmt: skip
    return f"{repo}@{reg.push_manifest(f'{repo}:1', manifest, DOCKER_MANIFEST)}"


def test_an_alias_bomb_in_a_bundle_is_refused_before_it_expands(resolve_ref, engine, registry):
    with Session(engine) as s, s.begin():
        add_catalog(s, "bombs", f"{registry.host}/bombs", repositories=[])
    bundle = push_hostile_bundle(registry, f"{registry.host}/bombs/task", ALIAS_BOMB)
    run = pipeline_run(bundle)
    run["spec"]["pipelineSpec"]["tasks"] = run["spec"]["pipelineSpec"].pop("finally")
    run["spec"]["pipelineSpec"]["tasks"][0]["taskRef"]["params"][1]["value"] = "bomb"
    with pytest.raises(PinningError, match="alias bomb"):
        pin_run(run, resolve_ref)


def test_a_run_document_goes_through_the_hardened_loader():
    from runner.launch import InvalidRun, parse_run

    for hostile, reason in (
        (ALIAS_BOMB.replace("kind: Task", "kind: TaskRun"), "alias bomb"),
        ("apiVersion: tekton.dev/v1\nkind: TaskRun\nkind: PipelineRun\n", "duplicate key"),
        ("apiVersion: tekton.dev/v1\nkind: !!python/object/apply:os.system ['true']\n", "python/object/apply"),
        ('apiVersion: tekton.dev/v1\nkind: TaskRun\nmetadata: {name: "a\\0b"}\n', "NUL"),
    ):
        with pytest.raises(InvalidRun, match=reason):
            parse_run(hostile)
