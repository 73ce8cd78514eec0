"""The scheduler as an operator gets it: catalogs added with --refresh, two `taskhub worker` processes, exactly one
of which queues the syncs that are due, and `taskhub catalog list` saying how each ended and when the next is."""

from __future__ import annotations

import signal
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from jobs import JobQueue
from jobs.leases import Leases
from jobs.scheduler import SCHEDULER_LEASE
from tests.catalog.factories import write_version
from tests.jobs.processes import wait_until
from tests.test_cli import TASKHUB, run  # noqa: F401 (the fixture)
from tests.test_cli_worker import engine  # noqa: F401 (the fixture)


@contextmanager
def taskhub_workers(run, tmp_path: Path, count: int) -> Iterator[list[tuple[str, Path]]]:  # noqa: F811
    """`count` `taskhub worker` processes; yields each one's name (from its first log line) and log."""
    env = {**run.env, "TASKHUB_JOB_POLL_SECONDS": "0.1"}
    started = []
    try:
        for number in range(count):
            log = tmp_path / f"worker-{number}.log"
            with log.open("wb") as out:
                started.append((subprocess.Popen([TASKHUB, "worker"], env=env, stdout=out, stderr=out), log))

        def name(log: Path) -> str:
            line = wait_until(lambda: next((ln for ln in log.read_text().splitlines() if ": taking " in ln), None),
                              "the worker to start")  # fmt: skip
            return (
                line.split("worker ", 1)[1].split(":", 3)[:3] and line.split("worker ", 1)[1].rsplit(": taking", 1)[0]
            )

        yield [(name(log), log) for _, log in started]
    finally:
        for process, _ in started:
            process.send_signal(signal.SIGTERM)
        for process, log in started:
            assert process.wait(timeout=60) == 0, log.read_text()


def test_two_workers_one_scheduler_each_due_catalog_synced_once(run, engine, tmp_path):  # noqa: F811
    for name in ("alpha", "beta"):
        write_version(tmp_path / name, f"hello-{name}", "0.1")
        run("catalog", "add", name, str(tmp_path / name), "--refresh", "1h")
    write_version(tmp_path / "off", "hello-off", "0.1")
    run("catalog", "add", "off", str(tmp_path / "off"), "--refresh", "never")
    queue = JobQueue(engine)

    def synced() -> list:
        jobs = queue.list(kind="catalog-sync", limit=100)[0]
        return jobs if len([j for j in jobs if j.state == "succeeded"]) == 2 else []

    with taskhub_workers(run, tmp_path, 2) as workers:
        jobs = wait_until(synced, "the scheduler to queue, and a worker to do, the two syncs that are due")
        holder = Leases(engine).holder(SCHEDULER_LEASE)
        names = [name for name, _ in workers]
        assert holder in names
        # Both workers tick the scheduler; only the holder of its lease queued anything, once per catalog.
        assert sorted((j.target, j.created_by) for j in jobs) == [("alpha", f"scheduler@{holder}"),
                                                                  ("beta", f"scheduler@{holder}")]  # fmt: skip
    listed = {line.split("\t")[0]: line.split("\t")[3:] for line in run("catalog", "list").stdout.splitlines()}
    for name in ("alpha", "beta"):
        refresh, last, following = listed[name]
        assert refresh == "refresh 1h" and last.endswith(" UTC succeeded") and following != "next sync due now"
    assert listed["off"] == ["refresh never", "last sync never synced", "next sync never"]
