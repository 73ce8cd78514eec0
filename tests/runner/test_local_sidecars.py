"""Sidecars on the local executor: started before the steps, awaited until ready, stopped after, logged and
reported in `status.sidecars` as Tekton does."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import pytest
import yaml

from runner.local import LocalExecutor, LocalRun, sidecars


def run(tmp_path: Path, task_spec: str, **kwargs: Any) -> LocalRun:
    text = f"""
apiVersion: tekton.dev/v1
kind: TaskRun
metadata: {{name: tr}}
spec:
  workspaces: [{{name: shared, emptyDir: {{}}}}]
  taskSpec:
{task_spec}
"""
    return LocalExecutor(tmp_path, **kwargs).run(yaml.safe_load(text))


def cond(result: LocalRun) -> tuple[str, str, str]:
    c = result.condition
    return c["status"], c["reason"], c["message"]


def log_of(result: LocalRun, container: str) -> str:
    return next(log.path.read_text() for log in result.logs if log.container == container)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_a_sidecar_serves_a_port_the_steps_read_once_it_is_ready(tmp_path: Path) -> None:
    port = free_port()
    lines: list[tuple[str, str]] = []
    result = run(
        tmp_path,
        f"""
    sidecars:
    - name: server
      image: python:3
      workingDir: /srv
      script: |
        #!/bin/sh
        echo "hello from the sidecar" > index.html
        sleep 0.3
        exec python3 -m http.server --bind 127.0.0.1 {port}
      readinessProbe:
        httpGet: {{path: /index.html, port: {port}}}
    steps:
    - name: fetch
      image: python:3
      script: |
        #!/bin/sh
        python3 -c "import urllib.request as u; print(u.urlopen('http://127.0.0.1:{port}/').read().decode())"
""",
        log_sink=lambda taskrun, container, line: lines.append((container, line)),
    )
    assert cond(result) == ("True", "Succeeded", "All Steps have completed executing")
    assert log_of(result, "step-fetch") == "hello from the sidecar\n\n"
    assert '"GET / HTTP/1.1" 200' in log_of(result, "sidecar-server")
    assert any(c == "sidecar-server" and "GET / HTTP/1.1" in line for c, line in lines)
    [state] = result.object["status"]["sidecars"]
    assert state["name"] == "server" and state["container"] == "sidecar-server" and state["imageID"] == "python:3"
    terminated = state["terminated"]
    # Python as a container's PID 1 has no SIGTERM handler, so the kernel drops SIGTERM: SIGKILL ends it after
    # the grace period, 128 + 9, as a container runtime reports it.
    assert (terminated["exitCode"], terminated["reason"]) == (137, "Error")
    assert terminated["startedAt"] <= terminated["finishedAt"]
    with socket.socket() as sock:
        assert sock.connect_ex(("127.0.0.1", port)) != 0, "the sidecar is still serving after the TaskRun"


def test_steps_wait_for_an_exec_readiness_probe_on_a_shared_workspace(tmp_path: Path) -> None:
    result = run(
        tmp_path,
        """
    workspaces: [{name: shared}]
    sidecars:
    - name: maker
      image: alpine
      script: |
        sleep 0.5
        echo ready > $(workspaces.shared.path)/flag
        echo "private" > /workspace/mine
        sleep 60
      readinessProbe:
        exec: {command: [test, -f, $(workspaces.shared.path)/flag]}
    steps:
    - name: read
      image: alpine
      script: |
        cat $(workspaces.shared.path)/flag
        test -e /workspace/mine && echo "sidecar workspace leaked" || echo "own workspace"
""",
    )
    assert cond(result)[:2] == ("True", "Succeeded")
    assert log_of(result, "step-read") == "ready\nown workspace\n"


def test_a_sidecar_that_exits_zero_early_does_not_fail_the_taskrun(tmp_path: Path) -> None:
    result = run(
        tmp_path,
        """
    sidecars:
    - {name: setup, image: alpine, script: 'echo done setting up'}
    steps:
    - {name: s, image: alpine, script: 'sleep 0.2; echo step ran'}
""",
    )
    assert cond(result)[:2] == ("True", "Succeeded")
    [state] = result.object["status"]["sidecars"]
    assert (state["terminated"]["exitCode"], state["terminated"]["reason"]) == (0, "Completed")
    assert log_of(result, "sidecar-setup") == "done setting up\n"
    assert log_of(result, "step-s") == "step ran\n"


def test_a_sidecar_that_fails_on_its_own_fails_the_pod_as_sidecar_failed(tmp_path: Path) -> None:
    result = run(
        tmp_path,
        """
    sidecars:
    - {name: broken, image: alpine, script: 'echo cannot start; exit 3'}
    steps:
    - {name: s, image: alpine, script: 'sleep 0.8; echo step ran'}
""",
    )
    # The step still ran to its end; the pod then ended Failed because a container did.
    assert log_of(result, "step-s") == "step ran\n"
    assert result.object["status"]["steps"][0]["terminationReason"] == "Completed"
    assert cond(result) == ("False", "SidecarFailed", '"sidecar-broken" exited with code 3: Error')
    assert result.object["status"]["sidecars"][0]["terminated"]["exitCode"] == 3


# Each sidecar is ready once its SIGTERM trap is set (the probe sees the file it writes next): no clock decides
# whether the signal arrives before the trap.
def sidecar_with_trap(name: str, trap: str) -> str:
    return f"""
    - name: {name}
      image: bash
      script: |
        #!/usr/bin/env bash
        trap '{trap}' TERM
        echo up
        touch /tekton/trapped
        while true; do sleep 0.05; done
      readinessProbe: {{exec: {{command: [test, -f, /tekton/trapped]}}}}"""


@pytest.mark.parametrize(
    ("trap", "grace", "ended", "log"),
    [
        # The grace period only bounds a failure: a sidecar that handles SIGTERM ends long before it.
        ("echo got SIGTERM; exit 0", 120.0, (0, "Completed"), "up\ngot SIGTERM\n"),
        # One that never ends by itself gets SIGKILL whatever the grace period: 128 + 9.
        ("echo ignoring SIGTERM", 0.3, (137, "Error"), "up\n"),
    ],
    ids=["handles-sigterm", "ignores-sigterm"],
)
def test_sidecars_get_sigterm_then_sigkill_after_the_grace_period(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, trap: str, grace: float, ended: tuple[int, str], log: str
) -> None:
    monkeypatch.setattr(sidecars, "STOP_GRACE", grace)
    steps = "\n    steps:\n    - {name: s, image: alpine, script: 'true'}"
    result = run(tmp_path, "    sidecars:" + sidecar_with_trap("sc", trap) + steps)
    assert cond(result)[:2] == ("True", "Succeeded")
    [state] = result.object["status"]["sidecars"]
    assert (state["terminated"]["exitCode"], state["terminated"]["reason"]) == ended
    assert log_of(result, "sidecar-sc").startswith(log)
    if ended[0] == 0:
        assert log_of(result, "sidecar-sc") == log


def test_a_sidecar_whose_image_entrypoint_is_unknown_fails_like_a_container_that_cannot_start(
    tmp_path: Path,
) -> None:
    result = run(
        tmp_path,
        """
    sidecars:
    - {name: docker, image: docker:dind}
    steps:
    - {name: s, image: alpine, script: 'true'}
""",
    )
    assert cond(result) == ("False", "SidecarFailed", '"sidecar-docker" exited with code 127: Error')
    assert "entrypoint of image 'docker:dind' is not known" in log_of(result, "sidecar-docker")


def test_a_sidecar_sees_only_the_isolated_workspaces_it_lists(tmp_path: Path) -> None:
    result = run(
        tmp_path,
        """
    workspaces: [{name: shared}]
    sidecars:
    - name: watcher
      image: alpine
      workspaces: [{name: shared, mountPath: /data}]
      script: 'echo from-sidecar > /data/note; sleep 60'
      readinessProbe: {exec: {command: [test, -f, /data/note]}}
    steps:
    - name: with
      image: alpine
      workspaces: [{name: shared}]
      script: 'cat $(workspaces.shared.path)/note'
    - name: without
      image: alpine
      script: 'test -d $(workspaces.shared.path) && echo visible || echo hidden'
""",
    )
    assert cond(result)[:2] == ("True", "Succeeded")
    assert log_of(result, "step-with") == "from-sidecar\n"
    assert log_of(result, "step-without") == "hidden\n"


def test_a_sidecar_that_never_becomes_ready_holds_the_steps_until_the_timeout(tmp_path: Path) -> None:
    text = """
apiVersion: tekton.dev/v1
kind: TaskRun
metadata: {name: tr}
spec:
  timeout: 1s
  taskSpec:
    sidecars:
    - {name: never, image: alpine, script: 'sleep 60', readinessProbe: {exec: {command: ['false']}}}
    steps:
    - {name: s, image: alpine, script: 'echo should not run'}
"""
    result = LocalExecutor(tmp_path).run(yaml.safe_load(text))
    assert cond(result) == ("False", "TaskRunTimeout", 'TaskRun "tr" failed to finish within "1s"')
    [step] = result.object["status"]["steps"]
    assert step["terminationReason"] == "TaskRunTimeout"
    assert not any(log.container == "step-s" for log in result.logs)
    [state] = result.object["status"]["sidecars"]
    assert state["terminated"]["exitCode"] == 137  # killed with the pod
