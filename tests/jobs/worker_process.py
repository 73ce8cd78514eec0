"""A worker process for the tests, with handlers that show what ran where:

    python -m tests.jobs.worker_process DATABASE_URL LOG_FILE [--concurrency N] [--lease S] [--scheduler] ...

Each handler appends a line to LOG_FILE ("<event> <job id> <attempt> <worker>"), so a test can tell which jobs
ran, how often, and where. The worker logs to stderr; its first line names it ("worker NAME: taking ...").
"""

from __future__ import annotations

import argparse
import logging
import threading
from pathlib import Path

from catalog.db import make_engine
from jobs import JobContext, JobQueue, Periodic, QueueTimes, Worker
from jobs.scheduler import Scheduler
from jobs.syncs import CatalogSyncer


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("database_url")
    parser.add_argument("log_file", type=Path)
    parser.add_argument("--concurrency", type=int, default=1)
    parser.add_argument("--lease", type=float, default=30.0)
    parser.add_argument("--poll", type=float, default=1.0)
    parser.add_argument("--kinds", default="")
    parser.add_argument("--scheduler", type=float, default=0.0, help="scheduler tick interval; 0: no scheduler")
    parser.add_argument("--work-dir", type=Path, default=Path("catalogs"))
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    engine = make_engine(args.database_url)
    queue = JobQueue(engine, QueueTimes(lease=args.lease, retry_base=0))
    lock = threading.Lock()

    def record(event: str, context: JobContext) -> None:
        line = f"{event} {context.id} {context.claim.attempt} {context.worker}\n"
        with lock, args.log_file.open("a") as log:
            log.write(line)  # one append: whole lines, whatever the other workers write

    def noop(context: JobContext) -> str:
        record("ran", context)
        return "done"

    def hold_first(context: JobContext) -> str:
        """Holds its first attempt until the worker dies; later attempts succeed."""
        record("started", context)
        if context.claim.attempt == 1:
            context.cancel.wait()
        record("ran", context)
        return "done"

    def fail(context: JobContext) -> None:
        record("ran", context)
        raise RuntimeError(f"the registry refused the push (attempt {context.claim.attempt})")

    def no_registry(host: str) -> None:
        raise RuntimeError(f"no registry in these tests ({host})")

    syncer = CatalogSyncer(engine, args.work_dir, registries=no_registry, lease_seconds=args.lease)

    def sync(context: JobContext) -> list[str]:
        record("started", context)
        lines = syncer.handle(context)
        record("ran", context)
        return lines

    handlers = {"noop": noop, "hold-first": hold_first, "hold-run": hold_first, "fail": fail,
                "catalog-sync": sync}  # fmt: skip
    kinds = args.kinds.split(",") if args.kinds else None
    worker = Worker(queue, handlers, concurrency=args.concurrency, kinds=kinds, poll_interval=args.poll, grace=5)
    if args.scheduler:
        scheduler = Scheduler(queue, worker.name, lease_seconds=args.lease * 2, jitter=0.0)

        def schedule() -> None:
            scheduler.tick()

        worker.periodic = [Periodic(args.scheduler, schedule)]
    worker.install_signal_handlers()
    worker.run()


if __name__ == "__main__":
    main()
