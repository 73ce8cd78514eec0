"""`taskhub hub search|info|get`, and every install-like command with `--type artifact`: against taskhub's own
Artifact Hub API, and against a stub with Artifact Hub's shapes for what taskhub cannot serve (an organization)."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner, Result

from hub.cli import main
from tests.runner.hub_servers import StubHub
from tests.runner.install_fixtures import *  # noqa: F403
from tests.runner.install_fixtures import fails, get_task, ok
from tests.runner.test_remote_hub_client import artifact_package


def hub_cmd(*args: str) -> Result:
    return CliRunner().invoke(main, ["hub", *args], catch_exceptions=False)


@pytest.mark.parametrize("hub_type", ["tekton", "artifact"])
def test_search_table_wide_and_json(served_hub, hub_type):
    table = ok(hub_cmd("search", "yq", "--api-server", served_hub, "--type", hub_type)).splitlines()
    assert table[0].split() == ["NAME", "KIND", "CATALOG", "DESCRIPTION"]
    row = next(line for line in table if line.startswith("yq ("))
    assert "Task" in row and "Tekton" in row
    wide = ok(hub_cmd("search", "yq", "--api-server", served_hub, "--type", hub_type, "-o", "wide"))
    assert wide.splitlines()[0].split()[-3:] == ["PLATFORMS", "TAGS", "CATEGORIES"]
    raw = json.loads(ok(hub_cmd("search", "yq", "--api-server", served_hub, "--type", hub_type, "-o", "json")))
    assert ("data" in raw) if hub_type == "tekton" else ("packages" in raw)


def test_hub_flags_may_come_before_the_subcommand_as_with_tkn(served_hub):
    before = json.loads(ok(hub_cmd("--api-server", served_hub, "--type", "artifact", "search", "yq", "-o", "json")))
    after = json.loads(ok(hub_cmd("search", "yq", "--api-server", served_hub, "--type", "artifact", "-o", "json")))
    assert before == after and before
    wrong = hub_cmd("--api-server", "http://127.0.0.1:9", "search", "yq")
    assert wrong.exit_code != 0 and "127.0.0.1:9" in wrong.output


def test_search_with_no_hits_and_without_criteria(served_hub):
    assert ok(hub_cmd("search", "zzz-nothing", "--api-server", served_hub)).strip() == "No Resources found"
    result = hub_cmd("search", "--api-server", served_hub)
    assert result.exit_code == 2 and "please specify a resource name" in result.stderr
    result = hub_cmd("search", "--kinds", "task,widget", "--api-server", served_hub)
    assert result.exit_code == 2 and "invalid value 'widget' set for option kinds" in result.stderr


@pytest.mark.parametrize(("hub_type", "version"), [("tekton", "0.9"), ("artifact", "0.9.0")])
def test_info_and_get(served_hub, fixture_catalog, hub_type, version):
    args = ["--api-server", served_hub, "--type", hub_type, "--from", "tekton"]
    info = ok(hub_cmd("info", "task", "git-clone", "--version", "0.9", *args))
    assert f"Version: {version} (deprecated)" in info
    assert "Minimum Pipeline Version: 0.38.0" in info
    assert f"taskhub hub install task git-clone --version {version} --from tekton" in info
    as_json = json.loads(ok(hub_cmd("info", "task", "git-clone", *args, "-o", "json")))
    assert as_json["version"] == as_json["versions"][-1]
    manifest = ok(hub_cmd("get", "task", "git-clone", "--version", "0.9", *args))
    assert manifest == (fixture_catalog / "task/git-clone/0.9/git-clone.yaml").read_text()


def test_artifact_type_installs_upgrades_and_checks_against_taskhub(run, objects, kube_namespace):
    artifact = ("--type", "artifact", "--from", "tekton")
    ok(run("install", "task", "git-clone", "--version", "0.9", *artifact))
    task = get_task(objects, kube_namespace, "git-clone")
    labels = task["metadata"]["labels"]
    # The test catalog is a local directory: no organization, so Community, as tkn decides; and no empty
    # artifacthub.io/org label (tkn writes one).
    assert labels["artifacthub.io/catalog"] == "tekton"
    assert "artifacthub.io/org" not in labels
    assert labels["artifacthub.io/support-tier"] == "Community"
    assert labels["app.kubernetes.io/version"] == "0.9"
    assert "hub.tekton.dev/catalog" not in labels
    report = json.loads(ok(run("check-upgrade", "task", "--type", "artifact", "-o", "json")))
    assert report["upgrades"] == [
        {"name": "git-clone", "catalog": "tekton", "currentVersion": "0.9", "latestVersion": "0.10.0"}
    ]
    out = ok(run("upgrade", "task", "git-clone", "--type", "artifact"))
    assert out.strip() == f"Task git-clone upgraded to v0.10.0 in {kube_namespace} namespace"
    ok(run("downgrade", "task", "git-clone", "--type", "artifact"))
    assert get_task(objects, kube_namespace, "git-clone")["metadata"]["labels"]["app.kubernetes.io/version"] == "0.9"


def test_artifact_install_from_a_verified_organization(run, stub_hub: StubHub, objects, kube_namespace):
    base = "/api/v1/packages/tekton-task/tekton-catalog-tasks/kaniko"
    stub_hub.json(base, artifact_package("kaniko", "0.7.0", ["0.7.0"]))
    stub_hub.json(f"{base}/0.7.0", artifact_package("kaniko", "0.7.0", ["0.7.0"]))
    out = ok(run("install", "task", "kaniko", "--type", "artifact", "--from", "tekton-catalog-tasks", api=stub_hub.url))
    assert out.strip() == f"Task kaniko(0.7.0) installed in {kube_namespace} namespace"
    labels = get_task(objects, kube_namespace, "kaniko")["metadata"]["labels"]
    assert labels == {
        "app.kubernetes.io/version": "0.7.0",
        "artifacthub.io/catalog": "tekton-catalog-tasks",
        "artifacthub.io/org": "tektoncd",
        "artifacthub.io/support-tier": "Verified",
    }
    fails(
        run("install", "task", "kaniko", "--type", "artifact", "--from", "elsewhere", api=stub_hub.url),
        "Task kaniko from elsewhere catalog not found in the hub",
    )


def test_a_private_hub_needs_the_token_and_takes_it(sqlite_templates, tmp_path):
    import dataclasses
    import shutil

    from hub.app import create_app
    from hub.config import Settings
    from tests.conftest import served
    from tests.hub.test_auth import issue

    shutil.copy(sqlite_templates["indexed"], tmp_path / "taskhub.db")
    settings = Settings(data_dir=tmp_path, database_url=f"sqlite:///{tmp_path / 'taskhub.db'}", private=True)
    app = create_app(dataclasses.replace(settings, generation_check_interval=0))
    token = issue(app, "cli", "read")
    with served(app) as url:
        refused = hub_cmd("--api-server", url, "search", "yq")
        assert refused.exit_code != 0 and "--token or TASKHUB_API_TOKEN" in refused.output
        assert "yq" in ok(hub_cmd("--api-server", url, "--token", token, "search", "yq"))
        with_env = CliRunner().invoke(
            main, ["hub", "search", "yq", "--api-server", url], env={"TASKHUB_API_TOKEN": token}
        )
        assert with_env.exit_code == 0 and "yq" in with_env.output
