"""`taskhub hub install|reinstall|upgrade|downgrade|check-upgrade` against a real kube-apiserver (single-version
Tekton CRDs) and a real taskhub serving the test catalog over HTTP."""

from __future__ import annotations

import copy
import json

import yaml

from catalog.convert import convert
from tests.runner.install_fixtures import *  # noqa: F403
from tests.runner.install_fixtures import absent, fails, get_task, ok

# -- install ---------------------------------------------------------------------------------------------


def test_install_converts_v1beta1_to_v1_and_labels_it_as_tkn_does(run, objects, kube_namespace, fixture_catalog):
    result = run("install", "task", "git-clone", "--version", "0.9")
    assert ok(result).strip() == f"Task git-clone(0.9) installed in {kube_namespace} namespace"
    assert "WARN: This version has been deprecated" in result.stderr  # tekton.dev/deprecated: "true"
    task = get_task(objects, kube_namespace, "git-clone")
    manifest = yaml.safe_load((fixture_catalog / "task/git-clone/0.9/git-clone.yaml").read_text())
    assert manifest["apiVersion"] == "tekton.dev/v1beta1"
    assert task["apiVersion"] == "tekton.dev/v1"
    assert task["metadata"]["labels"] == {**manifest["metadata"]["labels"], "hub.tekton.dev/catalog": "tekton"}
    assert task["metadata"]["labels"]["app.kubernetes.io/version"] == "0.9"
    assert task["metadata"]["annotations"] == manifest["metadata"]["annotations"]
    assert task["spec"] == convert(manifest, "v1")["spec"]


def test_install_without_version_takes_the_highest_version_not_the_last_string(run, objects, kube_namespace):
    out = ok(run("install", "task", "git-clone"))
    assert "git-clone(0.10)" in out
    assert get_task(objects, kube_namespace, "git-clone")["metadata"]["labels"]["app.kubernetes.io/version"] == "0.10"


def test_install_pipeline_and_stepaction_in_the_versions_the_cluster_serves(run, objects, kube_namespace):
    ok(run("install", "pipeline", "buildpacks", "--version", "0.2"))
    pipeline = get_task(objects, kube_namespace, "buildpacks", "pipelines")
    assert pipeline["metadata"]["labels"]["hub.tekton.dev/catalog"] == "tekton"
    ok(run("install", "stepaction", "git-clone"))
    action = get_task(objects, kube_namespace, "git-clone", "stepactions")
    assert action["apiVersion"] == "tekton.dev/v1beta1"
    assert action["metadata"]["labels"]["app.kubernetes.io/version"] == "0.2"


def test_install_json_output_is_the_stored_object(run, objects, kube_namespace):
    stored = json.loads(ok(run("install", "task", "yq", "--version", "0.3", "-o", "json")))
    assert stored["metadata"]["namespace"] == kube_namespace
    assert stored["metadata"]["uid"] == get_task(objects, kube_namespace, "yq")["metadata"]["uid"]


def test_install_twice_says_which_command_to_use(run, objects, kube_namespace):
    ok(run("install", "task", "git-clone", "--version", "0.9"))
    fails(run("install", "task", "git-clone", "--version", "0.9"), "git-clone(0.9) already exists", "use reinstall")
    fails(run("install", "task", "git-clone"), "use upgrade to install v0.10 (latest)")
    fails(run("install", "task", "git-clone", "--version", "0.3"), "use downgrade to install v0.3")


def test_if_not_exists_leaves_an_installed_task_alone(run, objects, kube_namespace):
    ok(run("install", "task", "git-clone", "--version", "0.9"))
    before = get_task(objects, kube_namespace, "git-clone")["metadata"]["resourceVersion"]
    out = ok(run("install", "task", "git-clone", "--if-not-exists"))
    assert "already exists" in out
    after = get_task(objects, kube_namespace, "git-clone")
    assert after["metadata"]["resourceVersion"] == before
    assert after["metadata"]["labels"]["app.kubernetes.io/version"] == "0.9"


def test_version_given_as_full_semver_finds_the_catalog_version(run, objects, kube_namespace):
    ok(run("install", "task", "git-clone", "--version", "0.9.0"))
    assert get_task(objects, kube_namespace, "git-clone")["metadata"]["labels"]["app.kubernetes.io/version"] == "0.9"


# -- reinstall, upgrade, downgrade -------------------------------------------------------------------------


def test_upgrade_and_downgrade_compare_versions_as_versions(run, objects, kube_namespace):
    ok(run("install", "task", "git-clone", "--version", "0.9"))
    out = ok(run("upgrade", "task", "git-clone"))
    assert out.strip() == f"Task git-clone upgraded to v0.10 in {kube_namespace} namespace"
    task = get_task(objects, kube_namespace, "git-clone")
    assert task["metadata"]["labels"]["app.kubernetes.io/version"] == "0.10"
    assert task["metadata"]["annotations"]["tekton.dev/pipelines.minVersion"] == "0.38.0"
    fails(run("upgrade", "task", "git-clone"), "already at that version", "use reinstall")
    fails(run("upgrade", "task", "git-clone", "--to", "0.9"), "installed version v0.10 is higher", "use downgrade")

    out = ok(run("downgrade", "task", "git-clone"))
    assert out.strip() == f"Task git-clone downgraded to v0.9 in {kube_namespace} namespace"
    ok(run("downgrade", "task", "git-clone", "--to", "0.1"))
    assert get_task(objects, kube_namespace, "git-clone")["metadata"]["labels"]["app.kubernetes.io/version"] == "0.1"
    fails(run("downgrade", "task", "git-clone"), "v0.1 is its lowest version")
    fails(run("downgrade", "task", "git-clone", "--to", "0.2"), "installed version v0.1 is lower", "use upgrade")


def test_reinstall_restores_the_catalog_version(run, objects, kube_namespace):
    ok(run("install", "task", "yq", "--version", "0.3"))
    task = get_task(objects, kube_namespace, "yq")
    original_spec = copy.deepcopy(task["spec"])
    task["spec"]["steps"][0]["image"] = "example.com/tampered"
    objects.replace_namespaced_custom_object("tekton.dev", "v1", kube_namespace, "tasks", "yq", task)
    out = ok(run("reinstall", "task", "yq"))
    assert out.strip() == f"Task yq(0.3) reinstalled in {kube_namespace} namespace"
    assert get_task(objects, kube_namespace, "yq")["spec"] == original_spec


def test_commands_on_a_task_that_is_not_installed(run):
    for command in ("reinstall", "upgrade", "downgrade"):
        fails(run(command, "task", "git-clone"), "Task git-clone doesn't exist", "use install")


# -- check-upgrade ----------------------------------------------------------------------------------------


def test_check_upgrade_lists_newer_versions_and_skips_foreign_tasks(run, objects, kube_namespace):
    ok(run("install", "task", "git-clone", "--version", "0.9"))
    ok(run("install", "task", "golang-build", "--version", "0.3"))
    foreign = {"apiVersion": "tekton.dev/v1", "kind": "Task", "metadata": {"name": "mine"}, "spec": {"steps": []}}
    objects.create_namespaced_custom_object("tekton.dev", "v1", kube_namespace, "tasks", foreign)
    report = json.loads(ok(run("check-upgrade", "task", "-o", "json")))
    assert report["upgrades"] == [
        {"name": "git-clone", "catalog": "tekton", "currentVersion": "0.9", "latestVersion": "0.10"}
    ]
    assert report["skipped"] == [{"name": "mine", "reason": "not installed from a hub"}]
    table = ok(run("check-upgrade", "task"))
    assert "git-clone   Tekton    0.9               0.10" in table
    assert "WARN: Pipelines version unknown" in table


def test_check_upgrade_offers_the_latest_compatible_version(run, pipelines_version):
    pipelines_version("v0.30.0")
    ok(run("install", "task", "git-clone", "--version", "0.5"))
    report = json.loads(ok(run("check-upgrade", "task", "-o", "json")))
    # 0.6 to 0.8 need Pipelines 0.29.0; 0.9 and 0.10 need 0.38.0.
    assert report["upgrades"][0]["latestVersion"] == "0.8"
    assert report["pipelinesVersion"] == "v0.30.0"


# -- minimum Pipelines version ----------------------------------------------------------------------------


def test_refuses_a_version_needing_newer_pipelines_unless_forced(run, objects, kube_namespace, pipelines_version):
    pipelines_version("v0.30.0")
    fails(
        run("install", "task", "git-clone", "--version", "0.10"),
        "Task git-clone(0.10) requires Tekton Pipelines min version v0.38.0 but found v0.30.0",
        "--force",
    )
    assert absent(objects, kube_namespace, "git-clone")
    result = run("install", "task", "git-clone", "--version", "0.10", "--force")
    ok(result)
    assert "WARN: Task git-clone(0.10) requires Tekton Pipelines min version v0.38.0" in result.stderr


def test_pipelines_versions_compare_as_versions(run, objects, kube_namespace, pipelines_version):
    pipelines_version("v0.100.0")  # "v0.100.0" < "v0.38.0" as strings, so tkn would refuse this
    ok(run("install", "task", "git-clone", "--version", "0.10"))
    assert get_task(objects, kube_namespace, "git-clone")["metadata"]["labels"]["app.kubernetes.io/version"] == "0.10"


def test_unconvertible_v1beta1_task_is_refused_before_anything_is_written(run, objects, kube_namespace):
    fails(run("install", "task", "s2i", "--version", "0.1"), "spec.resources (PipelineResources)", "tekton.dev/v1")
    assert absent(objects, kube_namespace, "s2i")
