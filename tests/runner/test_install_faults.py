"""What goes wrong: an unreachable or refusing API server, a resource in the way, a hub that answers 404 or
garbage. Each is one line on stderr, a non-zero exit, and nothing written to the cluster."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.kube_fixture import KubeCluster
from tests.runner.hub_servers import StubHub
from tests.runner.install_fixtures import *  # noqa: F403
from tests.runner.install_fixtures import absent, fails, get_task, ok


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_unreachable_api_server(run, kube_cluster: KubeCluster, tmp_path: Path):
    config = kube_cluster.write_kubeconfig(tmp_path / "down", namespace="default")
    port = closed_port()
    config.write_text(config.read_text().replace(kube_cluster.url, f"https://127.0.0.1:{port}"))
    fails(
        run("install", "task", "git-clone", config=config),
        f"cannot reach the Kubernetes API server at https://127.0.0.1:{port}: connection refused",
    )


def test_bad_token_is_a_401(run, kube_cluster: KubeCluster, kube_namespace, tmp_path: Path):
    config = kube_cluster.write_kubeconfig(tmp_path / "bad", token="not-a-token", namespace=kube_namespace)
    fails(run("install", "task", "git-clone", config=config), "refused the credentials (401 Unauthorized)")


def test_a_user_who_may_only_read_gets_a_403_and_nothing_is_created(run, objects, kube_namespace,
                                                                    kube_viewer_kubeconfig):  # fmt: skip
    fails(
        run("install", "task", "git-clone", config=kube_viewer_kubeconfig),
        f"not allowed to create Task git-clone in {kube_namespace} namespace (403 Forbidden)",
        'User "viewer" cannot create resource "tasks"',
    )
    assert absent(objects, kube_namespace, "git-clone")
    # Reading is allowed, so check-upgrade works for the same user.
    assert "No Task for upgrade" in ok(run("check-upgrade", "task", config=kube_viewer_kubeconfig))


def test_a_task_not_installed_from_a_hub_is_not_overwritten(run, objects, kube_namespace):
    mine = {"apiVersion": "tekton.dev/v1", "kind": "Task", "metadata": {"name": "git-clone"},
            "spec": {"steps": [{"name": "mine", "image": "example.com/mine"}]}}  # fmt: skip
    objects.create_namespaced_custom_object("tekton.dev", "v1", kube_namespace, "tasks", mine)
    fails(run("install", "task", "git-clone"), "was not installed from a hub", "use reinstall")
    fails(run("upgrade", "task", "git-clone"), "missing a valid app.kubernetes.io/version label", "use reinstall")
    kept = get_task(objects, kube_namespace, "git-clone")
    assert kept["spec"] == mine["spec"] and "labels" not in kept["metadata"]
    # reinstall is the way to take it over, with the version given explicitly.
    fails(run("reinstall", "task", "git-clone"), "has no app.kubernetes.io/version label: pass --version")
    ok(run("reinstall", "task", "git-clone", "--version", "0.9"))
    assert get_task(objects, kube_namespace, "git-clone")["metadata"]["labels"]["hub.tekton.dev/catalog"] == "tekton"


def test_hub_404_names_what_was_not_found(run, served_hub, objects, kube_namespace):
    missing = f"Task no-such-task from tekton catalog not found in the hub at {served_hub}"
    fails(run("install", "task", "no-such-task"), missing)
    fails(run("install", "task", "git-clone", "--version", "9.9"), "git-clone(9.9)", "it has versions 0.1, 0.2")
    fails(run("install", "task", "git-clone", "--from", "nope"), "from nope catalog not found")
    assert absent(objects, kube_namespace, "git-clone")


def test_hub_answering_garbage(run, stub_hub: StubHub, objects, kube_namespace):
    stub_hub.raw("/v1/resource/tekton/task/git-clone", b"<html>not an API</html>")
    fails(run("install", "task", "git-clone", api=stub_hub.url), "is not a Tekton Hub v1 API response",
          "the body is not JSON")  # fmt: skip
    stub_hub.json("/v1/resource/tekton/task/git-clone", {"data": {"versions": "many"}})
    fails(run("install", "task", "git-clone", api=stub_hub.url), "(versions is not a list)")
    stub_hub.raw("/v1/resource/tekton/task/git-clone", b"oops", status=500, content_type="text/plain")
    fails(run("install", "task", "git-clone", api=stub_hub.url), "answered 500", "bug report")
    assert absent(objects, kube_namespace, "git-clone")


def test_hub_serving_something_that_is_not_the_task(run, stub_hub: StubHub, objects, kube_namespace):
    base = "/v1/resource/tekton/task/git-clone"
    stub_hub.json(base, {"data": {"versions": [{"version": "0.1"}], "latestVersion": {"version": "0.1"}}})
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "git-clone"}}
    stub_hub.json(f"{base}/0.1/yaml", {"data": {"yaml": yaml.safe_dump(pod)}})
    fails(run("install", "task", "git-clone", api=stub_hub.url), "refusing to install", "is not tekton.dev")
    run_obj = {"apiVersion": "tekton.dev/v1", "kind": "TaskRun", "metadata": {"name": "git-clone"}}
    stub_hub.json(f"{base}/0.1/yaml", {"data": {"yaml": yaml.safe_dump(run_obj)}})
    fails(run("install", "task", "git-clone", api=stub_hub.url), "it is a 'TaskRun', not a Task")
    assert absent(objects, kube_namespace, "git-clone")


def test_unreachable_hub(run):
    fails(run("install", "task", "git-clone", api=f"http://127.0.0.1:{closed_port()}"), "cannot reach the hub at")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--version", "zero.nine"], "invalid version 'zero.nine'"),
        (["--type", "artifact"], "missing catalog name for artifact type"),
    ],
)
def test_bad_flags_are_usage_errors(run, args, message):
    result = run("install", "task", "git-clone", *args)
    assert result.exit_code == 2 and message in result.stderr


def test_kubeconfig_problems(run, kubeconfig, tmp_path: Path):
    fails(run("install", "task", "git-clone", config=tmp_path / "missing"), "kubeconfig", "not found")
    fails(run("install", "task", "git-clone", "-c", "other"), "context 'other' not found", "taskhub-test")


def test_exit_status_and_stderr_of_the_real_command(served_hub, tmp_path: Path):
    """The installed console script, as a user runs it: one line on stderr, exit 1, no traceback."""
    taskhub = str(Path(sys.executable).parent / "taskhub")
    argv = [taskhub, "hub", "install", "task", "git-clone", "--api-server", served_hub, "-k", str(tmp_path / "none")]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=60, cwd=Path(__file__).parents[2])
    assert done.returncode == 1
    missing = tmp_path / "none"
    assert done.stderr.strip() == f"Error: kubeconfig {missing} not found: pass -k/--kubeconfig or set KUBECONFIG"
