"""Benchmark of the job queue on PostgreSQL, each figure against a floor measured in the same run.

1. Throughput: 500 no-op jobs drained by 1, 2 and 4 worker processes, as a ratio to a bare loop doing the same
   claim-and-complete statements (JobQueue.claim then JobQueue.succeed, one job at a time) on the same database
   (target: at most 1.5x at 1 worker; 4 workers not slower than 1).
2. Latency from a job being queued (what POST /v1/... does before it answers 202) to its handler starting on an
   idle worker, p50 and p99, as a ratio to the wake-up floor: the round trip of a LISTEN/NOTIFY on the same server,
   from before the notifying transaction commits to the listener reading it (target: p99 at most 2x).

Run it with ``.venv/bin/python bench/jobs.py``. PostgreSQL is started on a free loopback port in a temp dir
(TASKHUB_TEST_PG_BIN, default /usr/lib/postgresql/15/bin) and removed at exit. Progress goes to stderr; the
table goes to stdout.
"""

from __future__ import annotations

import argparse
import select
import statistics
import subprocess
import sys
import time
from pathlib import Path

# This file is bench/jobs.py, and Python puts bench/ first on the path: it would stand for the jobs package.
sys.path[0] = str(Path(__file__).resolve().parent.parent)
sys.path.append(str(Path(__file__).resolve().parent))  # after the repository: for pg_server

from pg_server import postgres  # noqa: E402
from sqlalchemy import func, insert, text  # noqa: E402
from sqlalchemy import select as sql_select  # noqa: E402

from catalog.db import make_engine, upgrade  # noqa: E402
from jobs import JobContext, JobKind, JobQueue, Worker  # noqa: E402
from jobs.models import Job  # noqa: E402
from jobs.wakeup import CHANNEL  # noqa: E402

NOOP = JobKind("noop")
STAMP = JobKind("stamp")
FLOOR_STAMP = JobKind("stamp-floor")


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def queue_many(queue: JobQueue, count: int) -> None:
    """`count` no-op jobs in one statement, and one NOTIFY: the workers start from a full queue."""
    with queue.engine.begin() as conn:
        rows = [{"kind": NOOP.name, "target": str(n), "payload": {}, "state": "queued", "idempotent": True,
                 "attempts": 0, "max_attempts": 1, "cancel_requested": False, "progress_done": 0,
                 "progress_message": "", "created_by": "bench"} for n in range(count)]  # fmt: skip
        now = func.statement_timestamp()
        conn.execute(insert(Job).values(run_after=now, created_at=now), rows)
        conn.execute(text("SELECT pg_notify(:c, 'noop')"), {"c": CHANNEL})


def drained_seconds(queue: JobQueue) -> float:
    """From the jobs' queueing to the last one's end, on the database's clock."""
    with queue.engine.connect() as conn:
        first, last = conn.execute(sql_select(func.min(Job.created_at), func.max(Job.finished_at))).one()
        conn.execute(text("DELETE FROM jobs"))
        conn.commit()
    return (last - first).total_seconds()


def bare_loop(queue: JobQueue, count: int) -> float:
    queue_many(queue, count)
    while claims := queue.claim("bare-loop", ["noop"], limit=1):
        queue.succeed(claims[0], "done")
    return drained_seconds(queue)


def with_workers(url: str, queue: JobQueue, count: int, workers: int) -> float:
    processes = [
        subprocess.Popen([sys.executable, __file__, "--worker", url], stderr=subprocess.PIPE, text=True)
        for _ in range(workers)
    ]
    try:
        for process in processes:
            assert process.stderr is not None
            process.stderr.readline()  # "ready"
        queue_many(queue, count)
        while queue.list(kind="noop", state="succeeded", limit=1)[1] < count:
            time.sleep(0.05)
    finally:
        for process in processes:
            process.terminate()
            process.wait()
    return drained_seconds(queue)


def start_latencies(url: str, queue: JobQueue, samples: int) -> tuple[list[float], list[float], list[float]]:
    """From just before an enqueue to: the NOTIFY read by a bare listener; that listener's claim returned (the
    floor); an idle worker process's handler started. Floor and worker samples alternate, so both see the same
    machine. The clocks are this host's."""
    engine = make_engine(url)
    bare = JobQueue(engine)
    raw = engine.raw_connection()
    listener = raw.driver_connection
    raw.detach()
    listener.autocommit = True
    listener.execute(f"LISTEN {CHANNEL}")
    listener.execute("LISTEN bench_started")

    def notification(channel: str) -> str:
        while True:
            select.select([listener.fileno()], [], [], 10)
            for note in listener.notifies(timeout=0):
                if note.channel == channel:
                    return str(note.payload)

    worker = subprocess.Popen([sys.executable, __file__, "--worker", url], stderr=subprocess.PIPE, text=True)
    woken: list[float] = []
    floor: list[float] = []
    started: list[float] = []
    try:
        assert worker.stderr is not None
        worker.stderr.readline()
        for _ in range(samples + 5):
            before = time.time()
            queue.enqueue(FLOOR_STAMP)
            notification(CHANNEL)
            woke = time.time()
            (claim,) = bare.claim("floor", [FLOOR_STAMP.name])
            claimed = time.time()
            bare.succeed(claim, claimed)
            woken.append(woke - before)
            floor.append(claimed - before)
            before = time.time()
            job_id = queue.enqueue(STAMP).id
            started.append(float(notification("bench_started")) - before)
            while queue.get(job_id).state != "succeeded":  # the worker is idle again
                time.sleep(0.005)
    finally:
        worker.terminate()
        worker.wait()
        listener.close()
        engine.dispose()
    return woken[5:], floor[5:], started[5:]  # the first ones warm up connection pools


def run_worker(url: str) -> None:
    engine = make_engine(url)
    queue = JobQueue(engine)

    def noop(context: JobContext) -> str:
        return "done"

    def stamp(context: JobContext) -> float:
        started = time.time()
        with engine.begin() as conn:
            conn.execute(text("SELECT pg_notify('bench_started', :t)"), {"t": repr(started)})
        return started

    worker = Worker(queue, {"noop": noop, "stamp": stamp}, poll_interval=1.0)
    worker.install_signal_handlers()
    print("ready", file=sys.stderr, flush=True)
    worker.run()


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(int(len(ordered) * fraction), len(ordered) - 1)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=500)
    parser.add_argument("--samples", type=int, default=200)
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        run_worker(args.worker)
        return
    with postgres() as url:
        engine = make_engine(url)
        upgrade(engine)
        queue = JobQueue(engine)
        bare_loop(queue, 50)  # warm-up
        runs: dict[int, list[float]] = {0: [], 1: [], 2: [], 4: []}  # 0: the bare loop
        for round_ in range(3):  # rounds, so that every configuration sees the machine as it is
            for workers in runs:
                log(f"round {round_ + 1}: {workers or 'bare loop,'} worker(s), {args.jobs} jobs")
                runs[workers].append(
                    with_workers(url, queue, args.jobs, workers) if workers else bare_loop(queue, args.jobs)
                )
        log(f"wake-up: {args.samples} samples of the floor and of an idle worker, alternating")
        woken, floor_start, start = start_latencies(url, queue, args.samples)
        engine.dispose()
    floor = statistics.median(runs[0])
    print(f"throughput, {args.jobs} no-op jobs (median of 3)     seconds   jobs/s   ratio to the bare loop")
    print(f"  bare claim-and-complete loop          {floor:8.3f} {args.jobs / floor:8.0f}   1.00")
    for workers in (1, 2, 4):
        seconds = statistics.median(runs[workers])
        print(f"  {workers} worker process(es)                 {seconds:8.3f} {args.jobs / seconds:8.0f}   "
              f"{seconds / floor:.2f}")  # fmt: skip
    print("latency from just before the enqueue, ms (200 samples)    p50      p99")
    rows = [("NOTIFY round trip (informative)", woken), ("floor: bare listener, NOTIFY then claim", floor_start),
            ("an idle worker's handler started", start)]  # fmt: skip
    for label, values in rows:
        print(f"  {label:<42} {percentile(values, 0.5) * 1000:8.2f} {percentile(values, 0.99) * 1000:8.2f}")
    p50 = percentile(start, 0.5) / percentile(floor_start, 0.5)
    p99 = percentile(start, 0.99) / percentile(floor_start, 0.99)
    print(f"  ratio to the floor: p50 {p50:.2f}, p99 {p99:.2f}")


if __name__ == "__main__":
    main()
