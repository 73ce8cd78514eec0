"""How fast the hub's EventListener sink accepts events, as a ratio to a bare Flask view answering 202 served the
same way (granian, `taskhub serve`'s workers and threads): the floor of any Flask sink. Target: at most 1.5x.

The sink does what the floor does not: it looks the listener up, checks the body is a JSON object, records the
event (headers redacted and sealed, body) and queues its job, all before the 202, so an accepted event is never
lost. Printed: 202 latency p50/p99 of sequential events (one keep-alive connection), and events accepted per
second with 8 connections at once, for both.

    python bench/events.py [--events 2000] [--workers 2]
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import os
import signal
import statistics
import sys
import threading
import time
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
BODY = b'{"ref":"refs/heads/main","after":"bffeb74224043ba2feb48d137756c8a9331c449a","repository":{"clone_url":"x"}}'
CONNECTIONS = 8


def floor_app():  # type: ignore[no-untyped-def]
    """The floor: a Flask view that reads the body and answers 202 with a small JSON body."""
    from flask import Flask, Response, request

    app = Flask("floor")

    @app.route("/v1/listeners/<namespace>/<name>", methods=["GET", "POST"])
    def sink(namespace: str, name: str) -> Response:
        request.get_data(cache=False)
        return Response(b'{"eventListener":"bench","eventID":"x"}\n', 202, content_type="application/json")

    return app


def send(conn: http.client.HTTPConnection, path: str) -> float:
    started = time.perf_counter()
    conn.request("POST", path, body=BODY, headers={"Content-Type": "application/json", "X-GitHub-Event": "push"})
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
    p.add_argument("--floor-port", type=int, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.floor_port:  # the floor's own process
        from hub.wsgi.server import serve

        here = Path(__file__).resolve().parent
        serve("events:floor_app", host="127.0.0.1", port=args.floor_port, workers=args.workers, threads=4,
              working_dir=here)  # fmt: skip
        return
    with contextlib.ExitStack() as stack:
        data_dir = temp_dir(stack, "taskhub-bench-events-")
        env = {k: v for k, v in os.environ.items() if not k.startswith("TASKHUB_")}
        env["TASKHUB_DATA_DIR"] = str(data_dir)
        import subprocess

        for cmd, stdin in ((["db", "upgrade"], None), (["apply", "-f", "-", "-n", "ns1"], LISTENER)):
            subprocess.run([taskhub_command(), *cmd], input=stdin, env=env, check=True, capture_output=True, text=True)
        hub_port, floor_port = free_port(), free_port()
        hub_cmd = [taskhub_command(), "serve", "--host", "127.0.0.1", "--port", str(hub_port),
                   "--workers", str(args.workers)]  # fmt: skip
        proc = start_server(stack, hub_cmd, data_dir / "serve.log", env, signal.SIGTERM)
        hub = f"http://127.0.0.1:{hub_port}"
        wait_until_up(proc, hub + "/v1/listeners/ns1/bench/live", data_dir / "serve.log")
        floor_cmd = [sys.executable, __file__, "--floor-port", str(floor_port), "--workers", str(args.workers)]
        floor_proc = start_server(stack, floor_cmd, data_dir / "floor.log", dict(os.environ), signal.SIGTERM)
        floor = f"http://127.0.0.1:{floor_port}"
        _wait_floor(floor_proc, floor, data_dir / "floor.log")
        path = "/v1/listeners/ns1/bench"
        latencies(hub, path, 100)
        latencies(floor, path, 100)  # warm both
        n = args.events
        hub_lat, floor_lat = latencies(hub, path, n), latencies(floor, path, n)
        hub_rate, floor_rate = throughput(hub, path, n), throughput(floor, path, n)
        log(f"sink  202 p50 {pct(hub_lat, 0.5):.2f} ms  p99 {pct(hub_lat, 0.99):.2f} ms  {hub_rate:.0f} events/s")
        log(f"floor 202 p50 {pct(floor_lat, 0.5):.2f} ms  p99 {pct(floor_lat, 0.99):.2f} ms  {floor_rate:.0f} events/s")
        print(f"202 latency p50: {pct(hub_lat, 0.5) / pct(floor_lat, 0.5):.2f}x the floor (target <= 1.5x)")
        print(f"202 latency p99: {pct(hub_lat, 0.99) / pct(floor_lat, 0.99):.2f}x the floor")
        print(f"events accepted per second: {floor_rate / hub_rate:.2f}x fewer than the floor "
              f"({hub_rate:.0f} vs {floor_rate:.0f})")  # fmt: skip
        print(f"mean sink latency {statistics.mean(hub_lat) * 1000:.2f} ms over {n} events")
        print("event to the run's first step: not measured here (needs a worker running trigger-event and run jobs)")


def _wait_floor(proc, base: str, log_path: Path) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + 30
    while True:
        if proc.poll() is not None:
            sys.exit(f"the floor exited:\n{log_path.read_text()[-2000:]}")
        try:
            latencies(base, "/v1/listeners/ns1/bench", 1)
            return
        except (OSError, SystemExit):
            if time.monotonic() > deadline:
                sys.exit(f"the floor did not answer:\n{log_path.read_text()[-2000:]}")
            time.sleep(0.1)


if __name__ == "__main__":
    main()
