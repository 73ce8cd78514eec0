"""`taskhub hub ... --local`: the local store the embedded runner reads, a namespace of the hub's object store."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner, Result

from catalog.db import make_engine
from hub.cli import main
from runner.local_store import InstalledStore, StoreError
from runner.objects import ObjectStore
from tests.runner.hub_servers import served_hub  # noqa: F401


@pytest.fixture
def local(served_hub: str, tmp_path: Path, sqlite_templates):  # noqa: F811
    """Runs `taskhub hub <args> --local` with TASKHUB_DATA_DIR in tmp_path (a migrated database there)."""
    (tmp_path / "data").mkdir()
    shutil.copy(sqlite_templates["migrated"], tmp_path / "data/taskhub.db")

    def run(*args: str) -> Result:
        argv = ["hub", *args, "--local", "--api-server", served_hub]
        env = {"TASKHUB_DATA_DIR": str(tmp_path / "data"), "KUBECONFIG": str(tmp_path / "no-cluster")}
        return CliRunner(env=env).invoke(main, argv, catch_exceptions=False)

    return run


def stored(tmp_path: Path, namespace: str, kind: str, name: str) -> dict | None:
    engine = make_engine(f"sqlite:///{tmp_path / 'data/taskhub.db'}")
    try:
        return ObjectStore(engine).get(kind, namespace, name)
    finally:
        engine.dispose()


def test_local_install_writes_the_object_as_a_cluster_would_hold_it(local, tmp_path: Path, fixture_catalog):
    result = local("install", "task", "git-clone", "--version", "0.9")
    assert result.exit_code == 0, result.output
    assert result.stdout.strip().startswith("Task git-clone(0.9) installed in default namespace of the local store")
    obj = stored(tmp_path, "default", "task", "git-clone")
    manifest = yaml.safe_load((fixture_catalog / "task/git-clone/0.9/git-clone.yaml").read_text())
    assert obj["apiVersion"] == "tekton.dev/v1"  # the runner reads v1
    assert obj["metadata"]["namespace"] == "default"
    assert obj["metadata"]["labels"] == {**manifest["metadata"]["labels"], "hub.tekton.dev/catalog": "tekton"}
    assert obj["metadata"]["annotations"] == manifest["metadata"]["annotations"]
    # No Tekton Pipelines release applies to the embedded runner: no "version unknown" warning.
    assert "pipelines version unknown" not in result.stderr


def test_local_upgrade_check_upgrade_and_namespaces(local, tmp_path: Path):
    assert local("install", "task", "git-clone", "--version", "0.9", "-n", "team-a").exit_code == 0
    assert local("install", "stepaction", "git-clone", "-n", "team-a").exit_code == 0
    check = local("check-upgrade", "task", "-n", "team-a")
    assert "git-clone   Tekton    0.9               0.10" in check.stdout
    assert "WARN" not in check.stdout
    assert local("upgrade", "task", "git-clone", "-n", "team-a").exit_code == 0
    assert stored(tmp_path, "team-a", "task", "git-clone")["metadata"]["labels"]["app.kubernetes.io/version"] == "0.10"
    assert stored(tmp_path, "team-a", "stepaction", "git-clone")["apiVersion"] == "tekton.dev/v1beta1"
    again = local("install", "task", "git-clone", "-n", "team-a")
    assert again.exit_code == 1
    assert "git-clone(0.10) already exists in team-a namespace of the local store" in again.stderr
    assert stored(tmp_path, "default", "task", "git-clone") is None


def test_local_refuses_cluster_flags(local):
    result = local("install", "task", "git-clone", "-c", "prod")
    assert result.exit_code == 2 and "--local does not use a cluster" in result.stderr


def test_store_lookups_and_bad_names(engine):
    store = InstalledStore(engine, "ns")
    task = {"apiVersion": "tekton.dev/v1", "kind": "Task", "metadata": {"name": "t"}, "spec": {}}
    store.create(task)
    got = store.get("Task", "t")
    assert got["metadata"]["name"] == "t" and got["metadata"]["namespace"] == "ns"
    assert got["metadata"]["uid"]  # kept as a cluster keeps it
    assert store.get("Task", "missing") is None
    assert store.in_namespace("other").get("Task", "t") is None
    assert [o["metadata"]["name"] for o in store.list("Task")] == ["t"]
    with pytest.raises(StoreError, match="already exists"):
        store.create(task)
    with pytest.raises(StoreError, match=r"invalid name '\.\./x'"):
        store.get("Task", "../x")
    with pytest.raises(StoreError, match="invalid namespace"):
        InstalledStore(engine, "Not/A/Namespace")
    with pytest.raises(StoreError, match="not ConfigMap"):
        store.get("ConfigMap", "x")
