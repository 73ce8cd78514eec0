"""Benchmark of the runners, each figure against a peer measured in the same run.

1. Local executor overhead per step: a TaskRun of --steps steps, each a small shell script, as a ratio to a bare
   `subprocess` chain running the same scripts one after another with the same shell (target: at most 2x), and
   to the same bare chain with each script in the sandbox every step gets (runner/local/sandbox.py: bubblewrap,
   its namespaces and mounts, the unprivileged user), the floor of a sandboxed step (target: at most 2x).
   The executor's extra work per step is what the second ratio measures: script files, path mapping, logs,
   results, status; the first adds what the sandbox costs.
2. Container mode (runner/local/podman_pod.py) per step: a TaskRun of --container-steps steps in the image of
   Debian's busybox-static (scripts/build-debian-images busybox), as a ratio to a chain of bare
   `podman run --rm IMAGE true` on the same image (target: at most 1.5x). Skipped, saying why, without podman.
3. Ten independent one-second tasks in one PipelineRun on the local executor: wall time from `run()` to its
   return (target: under 1.5 s, i.e. they run in parallel).
4. API writes per PipelineRun created on Kubernetes (target 1): --pipelineruns PipelineRuns run through
   runner.kube_backend.run_on_kubernetes against a real kube-apiserver (the tests' one: etcd plus the cached
   kube-apiserver that scripts/build-kube-apiserver builds), with a thread playing the Tekton controller. Counted
   twice: by the backend itself, and at the apiserver from its audit log (write verbs in the run's namespace
   that did not come from the fake controller). Skipped, saying why, when the binaries are missing.

Runs in temp dirs removed at exit. Progress goes to stderr; the table goes to stdout.

Run it with ``.venv/bin/python bench/runs.py`` (``--help`` for the knobs).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from runner.local import LocalExecutor  # noqa: E402 - after the path set-up above
from runner.local.podman_pod import ContainerMode  # noqa: E402
from runner.local.sandbox import Bind, Sandbox  # noqa: E402
from runner.podman import PodmanUnavailable, detect_podman  # noqa: E402

STEP_TARGET = 2.0  # executor time over the bare subprocess chain, at most
CONTAINER_STEP_TARGET = 1.5  # container mode's time over a chain of bare `podman run`, at most
PARALLEL_TARGET = 1.5  # seconds for ten independent one-second tasks, under
SCRIPT = 'echo "step {i}" > /dev/null\n'


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def taskrun_with_steps(steps: int) -> dict[str, Any]:
    """A TaskRun of `steps` inline steps, each the benchmark script (no shebang: run by the image's sh)."""
    return {
        "apiVersion": "tekton.dev/v1",
        "kind": "TaskRun",
        "metadata": {"name": "bench-steps"},
        "spec": {
            "taskSpec": {
                "steps": [{"name": f"s{i}", "image": "ubuntu", "script": SCRIPT.format(i=i)} for i in range(steps)]
            }
        },
    }


def bare_chain(work: Path, steps: int) -> float:
    """The peer: the same scripts written to files and run one after another with /bin/sh; seconds."""
    work.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    for i in range(steps):
        script = work / f"script-{i}"
        script.write_text("#!/bin/sh\nset -e\n" + SCRIPT.format(i=i))
        with open(work / f"log-{i}", "wb") as out:
            subprocess.run(["/bin/sh", str(script)], stdout=out, stderr=subprocess.STDOUT, check=True)
    return time.perf_counter() - start


def sandboxed_chain(work: Path, steps: int) -> float:
    """The sandbox's floor: the bare chain with each script run in a sandbox that binds the chain's directory."""
    work.mkdir(parents=True, exist_ok=True)
    os.chmod(work, 0o777)
    sandbox = Sandbox([work], [work])
    start = time.perf_counter()
    for i in range(steps):
        script = work / f"script-{i}"
        script.write_text("#!/bin/sh\nset -e\n" + SCRIPT.format(i=i))
        with open(work / f"log-{i}", "wb") as out:
            proc = sandbox.popen(
                ["/bin/sh", str(script)], [Bind(work, work, True)], work, {"PATH": "/usr/bin:/bin"}, out
            )
            if proc.wait() != 0:
                raise SystemExit(f"sandboxed script failed: {(work / f'log-{i}').read_text()}")
    return time.perf_counter() - start


def executor_chain(work: Path, steps: int) -> float:
    """The local executor running the TaskRun; seconds from `run()` to its return."""
    executor = LocalExecutor(work)
    start = time.perf_counter()
    result = executor.run(taskrun_with_steps(steps))
    elapsed = time.perf_counter() - start
    if not result.succeeded:
        raise SystemExit(f"benchmark TaskRun failed: {result.condition}")
    return elapsed


def measure_steps(root: Path, steps: int, repeats: int) -> tuple[float, float, float]:
    """Median seconds per step of (executor, bare chain, sandboxed bare chain), measured in alternating rounds."""
    ours, peer, floor = [], [], []
    for round_ in range(repeats):
        log(f"steps: round {round_ + 1}/{repeats}")
        ours.append(executor_chain(root / f"executor-{round_}", steps) / steps)
        peer.append(bare_chain(root / f"bare-{round_}", steps) / steps)
        floor.append(sandboxed_chain(root / f"sandboxed-{round_}", steps) / steps)
    return statistics.median(ours), statistics.median(peer), statistics.median(floor)


def container_setup(root: Path) -> tuple[ContainerMode, str] | str:
    """Container mode as it works here and the busybox image built from Debian packages; else why not."""
    try:
        podman = detect_podman(root / "podman")
    except PodmanUnavailable as exc:
        return str(exc)
    built = subprocess.run(
        [str(REPO / "scripts/build-debian-images"), "busybox"], env=podman.environ(), capture_output=True, text=True
    )
    if built.returncode != 0:
        return f"scripts/build-debian-images busybox failed: {built.stderr.strip().splitlines()[-1:]}"
    return ContainerMode(podman), built.stdout.strip().split("=", 1)[1]


def container_executor_chain(work: Path, steps: int, mode: ContainerMode, image: str) -> float:
    """Container mode running the TaskRun, each step in `image`; seconds from `run()` to its return."""
    taskrun = taskrun_with_steps(steps)
    for step in taskrun["spec"]["taskSpec"]["steps"]:
        step["image"] = image
    start = time.perf_counter()
    result = LocalExecutor(work, containers=mode).run(taskrun)
    elapsed = time.perf_counter() - start
    if not result.succeeded:
        raise SystemExit(f"benchmark TaskRun failed in containers: {result.condition}")
    return elapsed


def bare_podman_chain(mode: ContainerMode, steps: int, image: str) -> float:
    """The peer: `podman run --rm IMAGE true` once per step, one after another; seconds."""
    start = time.perf_counter()
    for _ in range(steps):
        mode.podman.run("run", "--rm", image, "true")
    return time.perf_counter() - start


def measure_container_steps(root: Path, steps: int, repeats: int) -> tuple[float, float] | str:
    """Median seconds per step of (container mode, bare podman chain), in alternating rounds; or why not run."""
    setup = container_setup(root)
    if isinstance(setup, str):
        log(f"containers: skipped: {setup}")
        return setup
    mode, image = setup
    ours, peer = [], []
    for round_ in range(repeats):
        log(f"containers: round {round_ + 1}/{repeats}")
        ours.append(container_executor_chain(root / f"containers-{round_}", steps, mode, image) / steps)
        peer.append(bare_podman_chain(mode, steps, image) / steps)
    return statistics.median(ours), statistics.median(peer)


def measure_parallel(root: Path, tasks: int) -> float:
    """Seconds for a PipelineRun of `tasks` independent `sleep 1` tasks."""
    pipeline = {
        "apiVersion": "tekton.dev/v1",
        "kind": "PipelineRun",
        "metadata": {"name": "bench-parallel"},
        "spec": {
            "pipelineSpec": {
                "tasks": [
                    {"name": f"t{i}", "taskSpec": {"steps": [{"image": "alpine", "script": "sleep 1"}]}}
                    for i in range(tasks)
                ]
            }
        },
    }
    log(f"parallel: {tasks} one-second tasks")
    start = time.perf_counter()
    result = LocalExecutor(root / "parallel").run(pipeline)
    elapsed = time.perf_counter() - start
    if not result.succeeded:
        raise SystemExit(f"benchmark PipelineRun failed: {result.condition}")
    return elapsed


KUBE_WRITES_TARGET = 1
WRITE_VERBS = ("create", "update", "patch", "delete", "deletecollection")
CONTROLLER_AGENT = "bench-fake-tekton-controller"
BENCH_PIPELINE_RUN = {
    "apiVersion": "tekton.dev/v1",
    "kind": "PipelineRun",
    "metadata": {"generateName": "bench-run-"},
    "spec": {"pipelineSpec": {"tasks": [{"name": "greet", "taskSpec": {"steps": [{"name": "hello"}]}}]}},
}


def _play_controller(api: Any, namespace: str, runs: int, failures: list[str]) -> None:
    """Moves each PipelineRun created in `namespace` to Running, then Succeeded, as Tekton's controller would."""
    from kubernetes import client

    objects = client.CustomObjectsApi(api)
    done: set[str] = set()
    deadline = time.monotonic() + 60
    try:
        while len(done) < runs and time.monotonic() < deadline:
            listing: Any = objects.list_namespaced_custom_object("tekton.dev", "v1", namespace, "pipelineruns")
            for item in listing["items"]:
                name = item["metadata"]["name"]
                if name in done:
                    continue
                for status, reason in (("Unknown", "Running"), ("True", "Succeeded")):
                    condition = {"type": "Succeeded", "status": status, "reason": reason}
                    objects.patch_namespaced_custom_object_status(
                        "tekton.dev", "v1", namespace, "pipelineruns", name, {"status": {"conditions": [condition]}}
                    )
                done.add(name)
            time.sleep(0.05)
    except Exception as exc:  # reported by the caller: a dead controller would otherwise look like a hang
        failures.append(f"fake controller: {exc}")


def _audited_writes(audit_log: Path, namespace: str) -> int:
    """Write requests in `namespace` the apiserver completed for anyone but the fake controller."""
    import json

    count = 0
    for line in audit_log.read_text().splitlines():
        event = json.loads(line)
        ref = event.get("objectRef") or {}
        if (
            event.get("stage") == "ResponseComplete"
            and event.get("verb") in WRITE_VERBS
            and ref.get("namespace") == namespace
            and ref.get("resource") != "namespaces"
            and event.get("userAgent") != CONTROLLER_AGENT
        ):
            count += 1
    return count


def measure_kubernetes_writes(runs: int) -> tuple[str, str]:
    """API writes per PipelineRun on Kubernetes: (the backend's count, the verdict with the apiserver's count)."""
    from tests.kube_fixture import ETCD_BIN, kube_apiserver_bin, running_cluster

    missing = [str(path) for path in (kube_apiserver_bin(), ETCD_BIN) if not path.exists()]
    if missing:
        why = f"{' and '.join(missing)} not found (run scripts/build-kube-apiserver)"
        log(f"kubernetes: skipped: {why}")
        return "skipped", f"skipped: {why}"
    from runner.kube_backend import run_on_kubernetes

    log("kubernetes: starting etcd and kube-apiserver")
    with running_cluster("taskhub-bench-kube-", audit=True) as cluster:
        namespace = cluster.create_namespace()
        failures: list[str] = []
        with cluster.api_client() as api:
            api.user_agent = CONTROLLER_AGENT
            controller = threading.Thread(target=_play_controller, args=(api, namespace, runs, failures))
            controller.start()
            writes = 0
            for number in range(runs):
                log(f"kubernetes: PipelineRun {number + 1}/{runs}")
                result = run_on_kubernetes(BENCH_PIPELINE_RUN, namespace=namespace, kubeconfig=cluster.kubeconfig)
                if not result.succeeded:
                    raise SystemExit(f"benchmark PipelineRun {result.name} did not succeed: {result.reason}")
                writes += result.writes
            controller.join(timeout=30)
        if failures:
            raise SystemExit(failures[0])
        assert cluster.audit_log is not None
        audited = _audited_writes(cluster.audit_log, namespace)
    ours, seen = writes / runs, audited / runs
    verdict = "ok" if max(ours, seen) <= KUBE_WRITES_TARGET else "over"
    return f"{ours:.2f}", f"{verdict} target {KUBE_WRITES_TARGET} (apiserver audit log: {seen:.2f})"


def container_row(measured: tuple[float, float] | str, steps: int) -> tuple[str, str, str, str]:
    figure = f"container mode, per step, to bare podman run ({steps} steps)"
    if isinstance(measured, str):
        return (figure, "skipped", "-", measured)
    ours, peer = measured
    ratio = ours / peer
    verdict = f"{ratio:.2f}x ({'ok' if ratio <= CONTAINER_STEP_TARGET else 'over'} target {CONTAINER_STEP_TARGET}x)"
    return (figure, f"{ours * 1000:.1f} ms", f"{peer * 1000:.1f} ms", verdict)


def print_table(rows: list[tuple[str, str, str, str]]) -> None:
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    for n, row in enumerate(rows):
        cells = (
            cell.ljust(w) if i == 0 else cell.rjust(w) for i, (cell, w) in enumerate(zip(row, widths, strict=True))
        )
        print("  ".join(cells))
        if n == 0:
            print("  ".join("-" * w for w in widths))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=40, help="steps in the per-step TaskRun (default 40)")
    parser.add_argument("--repeats", type=int, default=5, help="rounds of the per-step comparison (default 5)")
    parser.add_argument("--container-steps", type=int, default=10, help="steps in container mode (default 10)")
    parser.add_argument("--tasks", type=int, default=10, help="independent one-second tasks (default 10)")
    parser.add_argument("--pipelineruns", type=int, default=3, help="PipelineRuns run on Kubernetes (default 3)")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="taskhub-bench-runner-"))
    try:
        ours, peer, floor = measure_steps(root, args.steps, args.repeats)
        contained = measure_container_steps(root, args.container_steps, args.repeats)
        parallel = measure_parallel(root, args.tasks)
        kube_ours, kube_verdict = measure_kubernetes_writes(args.pipelineruns)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    ratio, sandboxed = ours / peer, ours / floor
    rows = [
        ("figure", "taskhub", "peer", "result"),
        (
            f"local executor, per step ({args.steps} steps)",
            f"{ours * 1000:.2f} ms",
            f"{peer * 1000:.2f} ms",
            f"{ratio:.2f}x ({'ok' if ratio <= STEP_TARGET else 'over'} target {STEP_TARGET}x)",
        ),
        (
            f"local executor, per step, to a sandboxed bare chain ({args.steps} steps)",
            f"{ours * 1000:.2f} ms",
            f"{floor * 1000:.2f} ms",
            f"{sandboxed:.2f}x ({'ok' if sandboxed <= STEP_TARGET else 'over'} target {STEP_TARGET}x)",
        ),
        container_row(contained, args.container_steps),
        (
            f"local executor, {args.tasks} independent 1 s tasks",
            f"{parallel:.2f} s",
            "-",
            f"{'ok' if parallel < PARALLEL_TARGET else 'over'} target < {PARALLEL_TARGET} s",
        ),
        (f"kubernetes, API writes per PipelineRun ({args.pipelineruns} runs)", kube_ours, "-", kube_verdict),
    ]
    print_table(rows)


if __name__ == "__main__":
    main()
