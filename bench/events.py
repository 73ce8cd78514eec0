"""How fast the hub's EventListener sink accepts events, against two floors served the same way (granian,
`taskhub serve`'s workers and threads):

- a bare Flask view that reads the body and answers 202: the floor of any Flask sink (target: at most 1.5x);
- the same view checking that the body is a JSON object (upstream's sink answers 400 to any other body before
  its 202, so any sink that answers as it does must parse it) and committing one INSERT of the body to the same
  kind of database (SQLite in WAL, as the hub's engine sets it up): the floor of any sink that answers as upstream's
  and keeps an accepted event durably before answering.

The sink does what the floors do not: it looks the listener up (as read at most half a second ago), checks the
body is a JSON object as Go would, and keeps the event (headers redacted and sealed, body) in its spool on this
host's disk before the 202, as durable as the durable floor's commit (triggers/spool.py); its mover, another
process of `taskhub serve`, records it in the database with its job, claiming its delivery id, while the next
events arrive, so the mover's CPU is in the sink's figures. Each event is a GitHub-shaped push of about 7 kB with
its own X-GitHub-Delivery. Printed: 202 latency p50/p99 of sequential events (one keep-alive connection per round;
the three servers take turns, a tenth of the events each, and the floors' turn waits until the sink's mover has
recorded every event of the sink's), events accepted per second with 8 connections at once, and the server
processes' CPU time per sequential event, the mover's included (what the latencies come to on an idle machine; on a
busy one it varies far less than they do), for all three; how long after its last 202 the sink's mover had every
event recorded. Then, on a hub of its own served with its embedded
job worker, the time from sending an event to the first step of the TaskRun it creates on the local backend (the
step records when it began), p50/p99, against the local executor's own time from being called with the same
TaskRun to that step.

    python bench/events.py [--events 2000] [--workers 2]
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import http.client
import json
import os
import signal
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from pathlib import Path

from api import free_port, log, start_server, taskhub_command, temp_dir, wait_until_up

LISTENER = """
apiVersion: triggers.tekton.dev/v1beta1
kind: EventListener
metadata: {name: bench}
spec:
  triggers:
  - name: bench
    bindings: [{name: sha, value: $(body.after)}]
    template:
      spec:
        params: [{name: sha}]
        resourcetemplates:
        - apiVersion: tekton.dev/v1
          kind: TaskRun
          metadata: {generateName: bench-}
          spec:
            taskSpec: {steps: [{image: alpine, script: echo $(tt.params.sha)}]}
"""
CONNECTIONS = 8
# Sequential events go in rounds: each server in turn gets a tenth of them, so that what the machine does
# meanwhile falls on all three alike.
ROUNDS = 10
FLOOR_DATABASE = "BENCH_EVENTS_FLOOR_DATABASE"
PATH = "/v1/listeners/ns1/bench"


def push_body() -> bytes:
    """A push event shaped as GitHub sends one (20 commits, about 7 kB), made up here."""
    commit = {"id": "bffeb74224043ba2feb48d137756c8a9331c449a", "message": "Fix the widget's frobnication\n\n" * 3,
              "timestamp": "2026-12-07T09:00:00Z", "author": {"name": "A Dev", "email": "dev@example.com"},
              "added": ["src/a.py"], "modified": ["src/b.py", "README.md"], "removed": []}  # fmt: skip
    repository = {"id": 1, "name": "widgets", "full_name": "example/widgets", "private": False,
                  "clone_url": "https://github.com/example/widgets.git", "default_branch": "main",
                  "description": "Widgets, frobnicated. " * 8}  # fmt: skip
    payload = {"ref": "refs/heads/main", "before": "0" * 40, "after": commit["id"], "repository": repository,
               "pusher": {"name": "dev"}, "commits": [commit] * 20, "head_commit": commit}  # fmt: skip
    return json.dumps(payload).encode()


BODY = push_body()


def floor_app():  # type: ignore[no-untyped-def]
    """The floor: a Flask view that reads the body and answers 202 with a small JSON body."""
    from flask import Flask, Response, request

    app = Flask("floor")

    @app.route("/v1/listeners/<namespace>/<name>", methods=["GET", "POST"])
    def sink(namespace: str, name: str) -> Response:
        request.get_data(cache=False)
        return Response(b'{"eventListener":"bench","eventID":"x"}\n', 202, content_type="application/json")

    return app


def durable_floor_app():  # type: ignore[no-untyped-def]
    """The durable floor: the same view, plus upstream's check that the body is a JSON object and one INSERT of the
    body committed before the 202, through the hub's engine (catalog.db.make_engine) on a database beside the
    hub's."""
    from flask import Flask, Response, request
    from sqlalchemy import Column, Integer, LargeBinary, MetaData, Table, insert

    from catalog.db import make_engine

    engine = make_engine(os.environ[FLOOR_DATABASE])
    table = Table("floor_events", MetaData(), Column("id", Integer, primary_key=True), Column("body", LargeBinary))
    table.create(engine, checkfirst=True)
    keep = insert(table)
    app = Flask("durable-floor")

    @app.route("/v1/listeners/<namespace>/<name>", methods=["GET", "POST"])
    def sink(namespace: str, name: str) -> Response:
        body = request.get_data(cache=False)
        try:  # upstream's sink refuses a body that is not a JSON object before it answers: so must any
            if not isinstance(json.loads(body), dict):
                raise ValueError("not an object")
        except ValueError:
            return Response(b'{"errorMessage":"Invalid event body format"}\n', 400, content_type="application/json")
        with engine.begin() as conn:
            conn.execute(keep, {"body": body})
        return Response(b'{"eventListener":"bench","eventID":"x"}\n', 202, content_type="application/json")

    return app


def send(conn: http.client.HTTPConnection, path: str) -> float:
    started = time.perf_counter()
    headers = {"Content-Type": "application/json", "X-GitHub-Event": "push", "X-GitHub-Delivery": str(uuid.uuid4())}
    conn.request("POST", path, body=BODY, headers=headers)
    response = conn.getresponse()
    response.read()
    if response.status != 202:
        sys.exit(f"{path}: HTTP {response.status}")
    return time.perf_counter() - started


def latencies(base: str, path: str, count: int) -> list[float]:
    host, port = base.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    try:
        return [send(conn, path) for _ in range(count)]
    finally:
        conn.close()


def throughput(base: str, path: str, count: int) -> float:
    """Events accepted per second with CONNECTIONS connections sending at once."""
    per = count // CONNECTIONS
    threads = [threading.Thread(target=latencies, args=(base, path, per)) for _ in range(CONNECTIONS)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return per * CONNECTIONS / (time.perf_counter() - started)


def pct(times: list[float], q: float) -> float:
    ordered = sorted(times)
    return ordered[min(int(q * len(ordered)), len(ordered) - 1)] * 1000


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--events", type=int, default=2000)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--runs", type=int, default=30, help="events measured from sending to their run's first step")
    p.add_argument("--floor-port", type=int, help=argparse.SUPPRESS)
    p.add_argument("--floor", default="floor_app", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.floor_port:  # a floor's own process
        from hub.wsgi.server import serve

        here = Path(__file__).resolve().parent
        serve(f"events:{args.floor}", host="127.0.0.1", port=args.floor_port, workers=args.workers, threads=4,
              working_dir=here)  # fmt: skip
        return
    with contextlib.ExitStack() as stack:
        data_dir = temp_dir(stack, "taskhub-bench-events-")
        env = {k: v for k, v in os.environ.items() if not k.startswith("TASKHUB_")}
        env["TASKHUB_DATA_DIR"] = str(data_dir)
        for cmd, stdin in ((["db", "upgrade"], None), (["apply", "-f", "-", "-n", "ns1"], LISTENER)):
            subprocess.run([taskhub_command(), *cmd], input=stdin, env=env, check=True, capture_output=True, text=True)
        hub_port = free_port()
        hub_cmd = [taskhub_command(), "serve", "--host", "127.0.0.1", "--port", str(hub_port),
                   "--workers", str(args.workers), "--no-worker"]  # fmt: skip
        proc = start_server(stack, hub_cmd, data_dir / "serve.log", env, signal.SIGTERM)
        hub = f"http://127.0.0.1:{hub_port}"
        wait_until_up(proc, hub + PATH + "/live", data_dir / "serve.log")
        floor = _start_floor(stack, data_dir, "floor_app", args.workers, {})
        durable = _start_floor(stack, data_dir, "durable_floor_app", args.workers,
                               {FLOOR_DATABASE: f"sqlite:///{data_dir / 'floor.db'}"})  # fmt: skip
        servers = {"sink": (hub, proc.pid), "floor": floor, "durable floor": durable}
        for base, _ in servers.values():
            latencies(base, PATH, 100)  # warm each
        n, per = args.events, args.events // ROUNDS
        lat: dict[str, list[float]] = {what: [] for what in servers}
        cpu = dict.fromkeys(servers, 0.0)
        for _ in range(ROUNDS):  # the machine's drift shared by all three
            for what, (base, pid) in servers.items():
                used = cpu_seconds(pid)
                lat[what] += latencies(base, PATH, per)
                if what == "sink":  # its mover's work is the sink's: done before the floors' turn, counted as its
                    recorded_after(data_dir, 100 + len(lat[what]))
                cpu[what] += cpu_seconds(pid) - used
        n = per * ROUNDS
        cpu = {what: used / n * 1000 for what, used in cpu.items()}
        rate = {what: throughput(base, PATH, n) for what, (base, _) in servers.items()}
        lag = recorded_after(data_dir, 100 + n + n // CONNECTIONS * CONNECTIONS)
        for what in servers:
            log(f"{what:13s} 202 p50 {pct(lat[what], 0.5):.2f} ms  p99 {pct(lat[what], 0.99):.2f} ms  "
                f"{rate[what]:.0f} events/s  {cpu[what]:.2f} ms CPU per event")  # fmt: skip
        print(f"{len(BODY)}-byte push events, {n} sequential then {n} over {CONNECTIONS} connections")
        for what, target in (("floor", " (target <= 1.5x)"), ("durable floor", "")):
            print(f"202 latency p50: {pct(lat['sink'], 0.5) / pct(lat[what], 0.5):.2f}x the {what}{target}")
            print(f"202 latency p99: {pct(lat['sink'], 0.99) / pct(lat[what], 0.99):.2f}x the {what}")
            print(f"events accepted per second: {rate[what] / rate['sink']:.2f}x fewer than the {what} "
                  f"({rate['sink']:.0f} vs {rate[what]:.0f})")  # fmt: skip
            # The server's CPU per event: what the latencies come to on an idle machine, less noisy on a busy one.
            print(f"server CPU per event: {cpu['sink'] / cpu[what]:.2f}x the {what} "
                  f"({cpu['sink']:.2f} vs {cpu[what]:.2f} ms)")  # fmt: skip
        print(f"mean sink latency {statistics.mean(lat['sink']) * 1000:.2f} ms over {n} events")
        print(f"every accepted event recorded in the database {lag * 1000:.0f} ms after the sink's last 202")
        hub_steps, floor_steps = first_step_latencies(stack, args.runs), executor_latencies(stack, args.runs)
        print(f"event to the run's first step on the local backend (host processes), {args.runs} events one at a "
              f"time (taskhub serve and its job worker, polling every {POLL_SECONDS} s): "
              f"p50 {pct(hub_steps, 0.5):.0f} ms, p99 "
              f"{pct(hub_steps, 0.99):.0f} ms; {pct(hub_steps, 0.5) / pct(floor_steps, 0.5):.1f}x the local "
              f"executor's own start to first step (p50 {pct(floor_steps, 0.5):.0f} ms)")  # fmt: skip


def recorded_after(data_dir: Path, count: int) -> float:
    """Seconds until the hub's database holds `count` events, from now (the sink's last 202)."""
    from sqlalchemy import func, select

    from catalog.db import make_engine
    from triggers.models import TriggerEvent

    started = time.perf_counter()
    engine = make_engine(f"sqlite:///{data_dir / 'taskhub.db'}")

    def recorded() -> bool:
        with engine.connect() as conn:
            return int(conn.scalar(select(func.count()).select_from(TriggerEvent)) or 0) >= count

    try:
        _wait_for(recorded, f"{count} events recorded")
    finally:
        engine.dispose()
    return time.perf_counter() - started


# A TaskRun whose first step records when it began, as a result: on this host's clock, like the sender's.
FIRST_STEP = {
    "apiVersion": "tekton.dev/v1", "kind": "TaskRun", "metadata": {"generateName": "first-step-"},
    "spec": {"taskSpec": {"results": [{"name": "started"}], "steps": [
        {"name": "first", "image": "alpine", "script": "/usr/bin/date +%s.%N > $(results.started.path)"}]}},
}  # fmt: skip
FIRST_STEP_LISTENER = {
    "apiVersion": "triggers.tekton.dev/v1beta1", "kind": "EventListener", "metadata": {"name": "first-step"},
    "spec": {"triggers": [{"name": "first-step", "template": {"spec": {"resourcetemplates": [FIRST_STEP]}}}]},
}  # fmt: skip
POLL_SECONDS = 1.0  # TASKHUB_JOB_POLL_SECONDS's default: a worker in another process than the sink wakes by polling


def first_step_latencies(stack: contextlib.ExitStack, runs: int) -> list[float]:
    """Seconds from sending an event to `taskhub serve` (with its embedded job worker) to the first step of the
    TaskRun it creates, one event at a time, on a hub of its own."""
    from catalog.db import make_engine
    from runner.records import RunRecords
    from triggers.events import EventLog

    data_dir = temp_dir(stack, "taskhub-bench-first-step-")
    env = {k: v for k, v in os.environ.items() if not k.startswith("TASKHUB_")}
    # Steps as sandboxed host processes, as the floor runs them (container mode would pull `alpine`).
    env.update(TASKHUB_DATA_DIR=str(data_dir), TASKHUB_JOB_POLL_SECONDS=str(POLL_SECONDS),
               TASKHUB_LOCAL_CONTAINERS="host")  # fmt: skip
    for cmd, stdin in ((["db", "upgrade"], None), (["apply", "-f", "-", "-n", "ns1"], json.dumps(FIRST_STEP_LISTENER))):
        subprocess.run([taskhub_command(), *cmd], input=stdin, env=env, check=True, capture_output=True, text=True)
    port = free_port()
    cmd = [taskhub_command(), "serve", "--host", "127.0.0.1", "--port", str(port), "--workers", "1"]
    proc = start_server(stack, cmd, data_dir / "serve.log", env, signal.SIGTERM)
    base = f"http://127.0.0.1:{port}"
    wait_until_up(proc, f"{base}/v1/listeners/ns1/first-step/live", data_dir / "serve.log")
    engine = make_engine(f"sqlite:///{data_dir / 'taskhub.db'}")
    stack.callback(engine.dispose)
    events, records = EventLog(engine, None), RunRecords(engine)  # type: ignore[arg-type]  # reads only
    out = []
    for i in range(runs):
        log(f"first step: event {i + 1}/{runs}")
        sent = time.time()
        with urllib.request.urlopen(urllib.request.Request(f"{base}/v1/listeners/ns1/first-step", data=b"{}")) as r:
            event_id = json.loads(r.read())["eventID"]
        run_id = _wait_for(functools.partial(_created_run, events, event_id), f"event {event_id}")
        detail = _wait_for(functools.partial(_ended, records, run_id), f"run {run_id}")
        out.append(_started(detail.object, f"run {run_id} ({detail.status}: {detail.message})") - sent)
    return out


def executor_latencies(stack: contextlib.ExitStack, runs: int) -> list[float]:
    """The floor: seconds from calling the local executor with the same TaskRun to its first step."""
    from runner.local import LocalExecutor

    work = temp_dir(stack, "taskhub-bench-executor-")
    out = []
    for i in range(runs):
        obj = {**FIRST_STEP, "metadata": {"name": f"first-step-{i}"}}
        sent = time.time()
        result = LocalExecutor(work).run(obj)
        out.append(_started(result.object, f"the executor's run ({result.condition})") - sent)
    return out


def _created_run(events, event_id: str) -> int | None:  # type: ignore[no-untyped-def]
    row = events.get(event_id)
    if row is None or row.status in ("queued", "processing"):
        return None
    created = [c for o in row.outcomes for c in o["created"]]
    if not created:
        sys.exit(f"event {event_id} created no run: {row.status} {row.reason} {row.outcomes}")
    return int(created[0]["run"])


def _ended(records, run_id: int):  # type: ignore[no-untyped-def]
    detail = records.get(run_id)
    return detail if detail is not None and detail.status not in ("Pending", "Running") else None


def _started(obj: dict, what: str) -> float:  # type: ignore[type-arg]
    results = {r["name"]: r["value"] for r in (obj.get("status") or {}).get("results") or []}
    if "started" not in results:
        sys.exit(f"{what} recorded no start: {obj.get('status')}")
    return float(str(results["started"]).strip())


def _wait_for(check, what: str, timeout: float = 120.0):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not (value := check()):
        if time.monotonic() > deadline:
            sys.exit(f"gave up waiting for {what}")
        time.sleep(0.005)
    return value


def cpu_seconds(pid: int) -> float:
    """CPU time (user and system) of a process and all its descendants (granian's workers), from /proc."""
    parents: dict[int, list[int]] = {}
    times: dict[int, float] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:  # ended meanwhile
            continue
        parents.setdefault(int(fields[1]), []).append(int(entry.name))
        times[int(entry.name)] = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    total, todo = 0.0, [pid]
    while todo:
        current = todo.pop()
        total += times.get(current, 0.0)
        todo += parents.get(current, [])
    return total


def _start_floor(
    stack: contextlib.ExitStack, data_dir: Path, factory: str, workers: int, extra_env: dict[str, str]
) -> tuple[str, int]:
    port = free_port()
    cmd = [sys.executable, __file__, "--floor-port", str(port), "--floor", factory, "--workers", str(workers)]
    log_path = data_dir / f"{factory}.log"
    proc = start_server(stack, cmd, log_path, {**os.environ, **extra_env}, signal.SIGTERM)
    base = f"http://127.0.0.1:{port}"
    _wait_floor(proc, base, log_path)
    return base, proc.pid


def _wait_floor(proc, base: str, log_path: Path) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + 30
    while True:
        if proc.poll() is not None:
            sys.exit(f"the floor exited:\n{log_path.read_text()[-2000:]}")
        try:
            latencies(base, PATH, 1)
            return
        except (OSError, SystemExit):
            if time.monotonic() > deadline:
                sys.exit(f"the floor did not answer:\n{log_path.read_text()[-2000:]}")
            time.sleep(0.1)


if __name__ == "__main__":
    main()
