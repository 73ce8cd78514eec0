"""The local executor's container mode: each step and sidecar in its image with real podman, images from the tests'
registry (tests/container_fixture.py) under the names steps use, as TASKHUB_IMAGE_MAP maps them. Skipped where
podman is not installed."""

from __future__ import annotations

import dataclasses
import os
import shutil
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from catalog.db import make_engine, upgrade
from hub.app import create_app
from hub.cli import main
from hub.config import Settings
from hub.registries import credential_store, local_containers
from runner.local import LocalExecutor, LocalRun
from runner.local.podman_pod import POD_LABEL, ContainerMode
from runner.podman import Podman
from tests.container_fixture import ImageMirror
from tests.hub.test_auth import bearer, issue
from tests.hub.test_runs_api import run_link, wait_for_end
from tests.hub.workers import working
from tests.registry_fixture import RegistryProcess
from tests.runner.killed_runs import kill_run_once_locked

ACCEPT = {"Accept": "application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json"}


@pytest.fixture
def containers(podman: Podman, image_mirror: ImageMirror) -> ContainerMode:
    return ContainerMode(podman, dict(image_mirror.images))


def run(tmp_path: Path, containers: ContainerMode, task_spec: str, name: str = "tr", **kwargs: Any) -> LocalRun:
    text = f"""
apiVersion: tekton.dev/v1
kind: TaskRun
metadata: {{name: {name}}}
spec:
  taskSpec:
{task_spec}
"""
    return LocalExecutor(tmp_path, containers=containers, **kwargs).run(yaml.safe_load(text))


def cond(result: LocalRun) -> tuple[str, str, str]:
    c = result.condition
    return c["status"], c["reason"], c["message"]


def log_of(result: LocalRun, container: str) -> str:
    return next(log.path.read_text() for log in result.logs if log.container == container)


def pod_containers(podman: Podman, result: LocalRun) -> str:
    pod = result.object["status"]["podName"]
    return podman.run("ps", "--all", "--quiet", "--filter", f"label={POD_LABEL}={pod}").stdout.strip()


def test_steps_run_in_their_images_with_the_images_own_shell(tmp_path: Path, containers: ContainerMode) -> None:
    result = run(
        tmp_path,
        containers,
        """
    results: [{name: greeting}]
    steps:
    - name: ash
      image: mirror.gcr.io/alpine@sha256:25109184c71bdad752c8312a8623239686a9a2071e8825f20acb8f2198c3f659
      env: [{name: LINES, value: "one\\ntwo"}, {name: WORD, value: " spaced "}]
      script: |
        #!/bin/sh
        [ "$(readlink /bin/sh)" == /bin/busybox ] && echo "busybox ash"
        echo "[$LINES][$WORD] $HOSTNAME"
        printf hello > $(results.greeting.path)
    - name: entrypoint
      image: bash
      args: ["-c", "echo bash ${BASH_VERSINFO[0]} in $PWD as $(id -u)"]
      workingDir: src
      securityContext: {runAsUser: 1000}
    - name: command
      image: ubuntu
      command: [cat]
      args: [/tekton/results/greeting, /etc/debian_version]
    - name: outside
      image: ubuntu
      workingDir: /opt/build
      script: |
        pwd > out && cat out && readlink /proc/$$/exe
""",
    )
    assert cond(result) == ("True", "Succeeded", "All Steps have completed executing")
    assert log_of(result, "step-ash") == "busybox ash\n[one\ntwo][ spaced ] tr-pod\n"
    assert log_of(result, "step-entrypoint") == "bash 5 in /workspace/src as 1000\n"
    assert log_of(result, "step-command").startswith("hello12.")  # the file only the Debian image has
    assert log_of(result, "step-outside") == "/opt/build\n/usr/bin/dash\n"  # Debian's sh, not busybox
    assert result.object["status"]["results"] == [{"name": "greeting", "type": "string", "value": "hello"}]


def test_a_sidecar_shares_the_pods_network_and_ends_on_sigterm(tmp_path: Path, containers: ContainerMode) -> None:
    result = run(
        tmp_path,
        containers,
        """
    sidecars:
    - name: server
      image: alpine
      script: |
        #!/bin/sh
        echo served > /tmp/index.html
        trap 'echo got SIGTERM; exit 0' TERM
        httpd -f -p 8080 -h /tmp &
        touch /tekton/trapped
        wait
      readinessProbe: {exec: {command: [test, -f, /tekton/trapped]}}
    - name: probed
      image: alpine
      script: 'echo probed > /tmp/index.html; exec httpd -f -p 8081 -h /tmp'
      readinessProbe: {httpGet: {path: /index.html, port: 8081}}
    steps:
    - name: fetch
      image: alpine
      script: wget -qO- http://localhost:8080/index.html
""",
        name="sidecars",  # of its own: tests in parallel look for what their pods left, by name
    )
    assert cond(result) == ("True", "Succeeded", "All Steps have completed executing")
    assert log_of(result, "step-fetch") == "served\n"
    server, probed = result.object["status"]["sidecars"]
    # The trap was set before the probe passed, so SIGTERM reached it: no timing decides the outcome.
    assert (server["terminated"]["exitCode"], server["terminated"]["reason"]) == (0, "Completed")
    assert log_of(result, "sidecar-server") == "got SIGTERM\n"
    # httpd as the container's PID 1 has no SIGTERM handler, so the kernel drops SIGTERM: SIGKILL after the grace
    # period, 128 + 9, as a container runtime reports it.
    assert (probed["terminated"]["exitCode"], probed["terminated"]["reason"]) == (137, "Error")
    assert pod_containers(containers.podman, result) == ""


def test_a_timed_out_step_ends_with_everything_it_started(
    tmp_path: Path, containers: ContainerMode, podman: Podman
) -> None:
    result = run(
        tmp_path,
        containers,
        """
    steps:
    - name: hang
      image: alpine
      timeout: 1s
      script: |
        setsid sleep 600 &
        echo started
        sleep 600
    - name: never
      image: alpine
      script: echo never
""",
        name="hang",
    )
    assert cond(result) == (
        "False",
        "StepFailed",
        '"step-hang" exited because the step exceeded the specified timeout limit',
    )
    hang, never = result.object["status"]["steps"]
    assert (hang["terminated"]["exitCode"], hang["terminationReason"]) == (137, "TimeoutExceeded")
    assert never["terminationReason"] == "Skipped"
    assert log_of(result, "step-hang") == "started\n"
    assert pod_containers(podman, result) == ""


def test_a_cancelled_run_leaves_no_container(tmp_path: Path, containers: ContainerMode, podman: Podman) -> None:
    cancel = threading.Event()
    lines: list[str] = []

    def on_line(taskrun: str, container: str, line: str) -> None:
        lines.append(line)
        if line == "running\n":
            cancel.set()

    text = """
apiVersion: tekton.dev/v1
kind: TaskRun
metadata: {name: cancelled}
spec:
  taskSpec:
    steps:
    - {name: wait, image: alpine, script: 'echo running; sleep 600'}
"""
    result = LocalExecutor(tmp_path, containers=containers, log_sink=on_line).run(yaml.safe_load(text), cancel)
    assert cond(result)[:2] == ("False", "TaskRunCancelled")
    assert lines == ["running\n"]
    assert pod_containers(podman, result) == ""


def test_an_image_that_cannot_be_pulled_fails_the_taskrun_as_tekton_says(
    tmp_path: Path, containers: ContainerMode, image_mirror: ImageMirror
) -> None:
    missing = f"{image_mirror.registry.host}/mirror/no-such-image:1.0"
    result = run(tmp_path, containers, f"    steps:\n    - {{name: s, image: '{missing}', script: 'true'}}")
    status, reason, message = cond(result)
    assert (status, reason) == ("False", "TaskRunImagePullFailed")
    assert message.startswith(f'the step "s" in TaskRun "tr" failed to pull the image "{missing}". The pod errored')
    assert "manifest unknown" in message


def test_images_are_pulled_with_the_hubs_registry_credentials(
    tmp_path: Path, podman: Podman, debian_images: dict[str, str], auth_registry: RegistryProcess
) -> None:
    private = f"{auth_registry.host}/private/busybox:1.0"
    creds = f"{auth_registry.username}:{auth_registry.password}"
    podman.run("push", "--quiet", "--tls-verify=false", "--creds", creds, debian_images["busybox"], private)
    settings = Settings(data_dir=tmp_path / "data", local_containers="podman")
    settings.data_dir.mkdir(parents=True)
    engine = make_engine(settings.database_url)
    upgrade(engine)
    task = f"    steps:\n    - {{name: s, image: '{private}', script: 'echo pulled'}}"
    try:
        anonymous, _ = local_containers(settings, engine)
        assert anonymous is not None
        refused = run(tmp_path / "anonymous", anonymous, task)
        assert cond(refused)[:2] == ("False", "TaskRunImagePullFailed")

        login = (str(auth_registry.username), str(auth_registry.password))
        credential_store(settings, engine).set(auth_registry.host, *login)
        logged_in, how = local_containers(settings, engine)
        assert how.startswith("local steps run in containers: podman")
        assert logged_in is not None
        pulled = run(tmp_path / "logged-in", logged_in, task)
        assert cond(pulled)[:2] == ("True", "Succeeded")
        assert log_of(pulled, "step-s") == "pulled\n"
    finally:
        podman.run("rmi", "--ignore", private, check=False)
        engine.dispose()


def test_a_bad_image_map_is_refused_with_the_pair_named(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, local_containers="host", image_map="alpine=a.example/busybox,ubuntu")
    with pytest.raises(Exception, match=r"TASKHUB_IMAGE_MAP=.*'ubuntu' is not NAME=IMAGE"):
        local_containers(settings, None)


WHOLE_FILE = """
apiVersion: v1
kind: ConfigMap
metadata: {name: settings}
data: {greeting: hello}
---
apiVersion: v1
kind: Secret
metadata: {name: token}
stringData: {value: s3cret}
---
apiVersion: tekton.dev/v1
kind: Task
metadata: {name: show}
spec:
  volumes:
  - {name: settings, configMap: {name: settings}}
  steps:
  - name: show
    image: alpine
    volumeMounts: [{name: settings, mountPath: /etc/settings}]
    env: [{name: TOKEN, valueFrom: {secretKeyRef: {name: token, key: value}}}]
    script: |
      echo "$(cat /etc/settings/greeting) $TOKEN"
      touch /etc/settings/x 2>/dev/null || echo read-only
---
apiVersion: tekton.dev/v1
kind: TaskRun
metadata: {name: show-run}
spec: {taskRef: {name: show}}
"""


def test_the_cli_runs_a_whole_file_in_containers_and_says_so(
    tmp_path: Path, sqlite_templates: dict[str, Path], podman: Podman, image_mirror: ImageMirror
) -> None:
    shutil.copy(sqlite_templates["migrated"], tmp_path / "taskhub.db")
    env = {
        "TASKHUB_DATA_DIR": str(tmp_path),
        "TASKHUB_DATABASE_URL": f"sqlite:///{tmp_path / 'taskhub.db'}",
        "TASKHUB_LOCAL_CONTAINERS": "podman",
        "TASKHUB_IMAGE_MAP": image_mirror.setting,
    }
    done = CliRunner().invoke(main, ["run", "-f", "-", "-o", "json"], input=WHOLE_FILE, env=env)
    assert done.exit_code == 0, done.stderr
    said, *rest = done.stderr.splitlines()
    assert said.startswith("local steps run in containers: podman ")
    if podman.containers_conf is not None:  # what this machine needs, kept in the hub's data dir
        assert said.endswith(f"export CONTAINERS_CONF={tmp_path / 'podman' / podman.containers_conf.name}")
    assert "[show-run/show] hello s3cret" in rest and "[show-run/show] read-only" in rest
    kept = [path for path in (tmp_path / "local-runs").rglob("*") if path.is_file() and b"s3cret" in path.read_bytes()]
    assert [path.name for path in kept] == ["step-show.log"]  # the Secret's value is in no file but the step's log


def test_a_killed_taskhub_run_leaves_no_container_behind(
    tmp_path: Path, podman: Podman, image_mirror: ImageMirror
) -> None:
    # `taskhub run` killed with SIGKILL cannot stop its containers: its reaper, waiting on a pipe from it, does.
    data = tmp_path / "data"
    claim_dir = data / "local-runs" / "claims" / "default" / "killed"
    run_file = tmp_path / "run.yaml"
    run_file.write_text("""
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: killed}
spec: {}
---
apiVersion: tekton.dev/v1
kind: TaskRun
metadata: {name: killed}
spec:
  workspaces: [{name: w, persistentVolumeClaim: {claimName: killed}}]
  taskSpec:
    workspaces: [{name: w}]
    sidecars: [{name: idle, image: alpine, script: 'exec sleep 600'}]
    steps:
    - image: ubuntu
      script: |
        exec 9>$(workspaces.w.path)/lock
        flock 9
        touch $(workspaces.w.path)/ready
        sleep 600
""")
    env = {**os.environ, "TASKHUB_DATA_DIR": str(data), "TASKHUB_LOCAL_CONTAINERS": "podman",
           "TASKHUB_IMAGE_MAP": image_mirror.setting}  # fmt: skip
    kill_run_once_locked(run_file, env, claim_dir)
    # The sidecar and the network holder go next, in the same `podman rm`: wait for that, up to a bound of failure.
    deadline = time.monotonic() + 60
    while podman.run("ps", "--all", "--quiet", "--filter", f"label={POD_LABEL}=killed-pod").stdout.strip():
        assert time.monotonic() < deadline, "the killed run's sidecar or network holder is still there"
        time.sleep(0.2)


def test_api_runs_go_to_containers_as_the_settings_say(
    settings: Settings, podman: Podman, image_mirror: ImageMirror
) -> None:
    contained = dataclasses.replace(settings, local_containers="podman", image_map=image_mirror.setting)
    app = create_app(contained)
    step = {"name": "sh", "image": "alpine", "script": "readlink /bin/sh"}
    run = {"apiVersion": "tekton.dev/v1", "kind": "TaskRun", "metadata": {"name": "api-contained"},
           "spec": {"taskSpec": {"steps": [step]}}}  # fmt: skip
    with working(app):
        http = app.test_client()
        writer = bearer(issue(app, "ci", "runs:write"))
        started = http.post("/v1/runs", json=run, headers=writer)
        assert started.status_code == 202, started.get_data(as_text=True)
        done = wait_for_end(http, run_link(started), seconds=120, headers=writer)
        assert done["status"] == "Succeeded", done
        logs = http.get(done["links"]["logs"], headers=writer).get_json()["data"]
    assert [(c["step"], c["text"]) for c in logs] == [("sh", "/bin/busybox\n")]  # the image's sh, not the host's


def test_a_latest_image_is_pulled_again_by_each_run(
    tmp_path: Path, containers: ContainerMode, podman: Podman, debian_images: dict[str, str], registry: RegistryProcess
) -> None:
    # In a registry of the test's own, not the shared mirror; no tag: latest, pulled Always as Kubernetes does.
    moving = f"{registry.host}/moving"
    task = f"    steps:\n    - {{name: s, image: '{moving}', script: 'test -x /bin/bash && echo bash || echo no bash'}}"
    try:
        seen = []
        for built in ("busybox", "bash"):  # the tag moves between the runs of one backend
            podman.run("push", "--quiet", "--tls-verify=false", debian_images[built], f"{moving}:latest")
            seen.append(log_of(run(tmp_path / built, containers, task), "step-s"))
        assert seen == ["no bash\n", "bash\n"]
    finally:
        podman.run("rmi", "--ignore", f"{moving}:latest", check=False)


def test_image_ids_are_the_digests_the_registry_serves(tmp_path: Path, containers: ContainerMode) -> None:
    task = "    sidecars: [{name: idle, image: ubuntu, script: 'exec sleep 600'}]\n    steps:\n"
    result = run(tmp_path, containers, task + "    - {name: a, image: alpine, script: 'true'}", name="image-ids")
    assert cond(result)[:2] == ("True", "Succeeded")
    served = {}
    for name in ("alpine", "ubuntu"):  # busybox and debian as pushed to the tests' registry: the HTTP API says
        repository = containers.image_map[name]
        host, _, path = repository.partition("/")
        ask = urllib.request.Request(f"http://{host}/v2/{path}/manifests/latest", method="HEAD", headers=ACCEPT)
        with urllib.request.urlopen(ask) as answer:
            served[name] = f"{repository}@{answer.headers['Docker-Content-Digest']}"
    assert [step["imageID"] for step in result.object["status"]["steps"]] == [served["alpine"]]
    assert [sidecar["imageID"] for sidecar in result.object["status"]["sidecars"]] == [served["ubuntu"]]
