"""Syncs of one git catalog: concurrent ones, one killed mid-checkout, and the lock files a killed git leaves."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from catalog.errors import CatalogSourceError
from catalog.models import Catalog, Resource, ResourceVersion
from jobs import CATALOG_SYNC, JobQueue
from jobs.syncs import CatalogSyncer
from tests.catalog.factories import write_version
from tests.catalog.test_sync import git
from tests.conftest import register
from tests.jobs.processes import wait_until, workers


def git_catalog(tmp_path: Path, *versions: str) -> Path:
    repo = tmp_path / "repo"
    for version in versions:
        write_version(repo, "hello", version)
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "versions")
    return repo


def add_version(repo: Path, version: str) -> None:
    write_version(repo, "hello", version)
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", f"add {version}")


def indexed_versions(engine) -> list[str]:
    with Session(engine) as session:
        query = select(ResourceVersion.version).join(Resource).where(ResourceVersion.removed_at.is_(None))
        return sorted(session.scalars(query))


def syncer(engine, tmp_path: Path) -> CatalogSyncer:
    def no_registry(host: str):
        raise AssertionError("no registry here")

    return CatalogSyncer(engine, tmp_path / "work", no_registry, lease_seconds=30)


def test_three_concurrent_syncs_of_one_git_catalog_all_succeed(engine, tmp_path):
    repo = git_catalog(tmp_path, "0.1", "0.2")
    register(engine, "hello", f"file://{repo}")
    sync, outcomes, waits = syncer(engine, tmp_path), [], []

    def one(n: int) -> None:
        try:
            summary = sync.sync(
                "hello", f"cli-{n}", report=lambda line: waits.append(line) if "waiting" in line else None
            )
            outcomes.append(summary.versions)
        except Exception as exc:
            outcomes.append(exc)

    threads = [threading.Thread(target=one, args=(n,)) for n in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert outcomes == [2, 2, 2]
    assert indexed_versions(engine) == ["0.1", "0.2"]
    assert all(line.startswith("waiting for the sync of hello that cli-") for line in waits)


def test_lock_files_left_by_a_killed_git_are_removed_by_the_next_sync(engine, tmp_path):
    repo = git_catalog(tmp_path, "0.1")
    register(engine, "hello", f"file://{repo}")
    sync, reports = syncer(engine, tmp_path), []
    sync.sync("hello", "first")
    add_version(repo, "0.2")
    (tmp_path / "work" / "hello" / ".git" / "index.lock").write_text("")
    summary = sync.sync("hello", "second", report=reports.append)
    assert summary.versions == 2
    assert "removed index.lock left by an interrupted sync" in reports
    with Session(engine) as session:
        catalog = session.scalar(select(Catalog))
        assert catalog.last_error is None and catalog.next_sync_at > catalog.last_sync_at


def test_a_failed_sync_is_recorded_with_when_it_ended(engine, tmp_path):
    register(engine, "gone", f"file://{tmp_path}/no-such-repo")
    with pytest.raises(CatalogSourceError, match="git fetch failed"):
        syncer(engine, tmp_path).sync("gone", "cli")
    with Session(engine) as session:
        catalog = session.scalar(select(Catalog))
        assert "git fetch failed" in catalog.last_error and catalog.last_sync_at is not None


def process_ended(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] == "Z"  # ended, not yet reaped


SLOW_GIT = """#!/bin/sh
# git, except that a checkout takes the index lock and then hangs, as a checkout killed half-way leaves it
for arg in "$@"; do
  if [ "$arg" = checkout ]; then
    : > .git/index.lock
    echo $$ > "{marker}"
    exec sleep 600
  fi
done
exec /usr/bin/git "$@"
"""


def test_a_sync_whose_worker_is_killed_is_finished_by_another_and_the_index_stays(engine, database_url, tmp_path):
    repo = git_catalog(tmp_path, "0.1")
    register(engine, "hello", f"file://{repo}")
    syncer(engine, tmp_path).sync("hello", "first")
    add_version(repo, "0.2")
    marker, bin_dir = tmp_path / "checkout-started", tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "git").write_text(SLOW_GIT.format(marker=marker))
    (bin_dir / "git").chmod(0o755)
    queue, log = JobQueue(engine), tmp_path / "ran.log"
    job_id = queue.enqueue(CATALOG_SYNC, "hello").id
    options = {"lease": 1, "poll": 0.1, "work_dir": tmp_path / "work"}
    slow_path = {"PATH": f"{bin_dir}:{os.environ['PATH']}"}
    with workers(database_url, log, env=slow_path, **options) as (first,):
        git_pid = int(wait_until(lambda: marker.exists() and marker.read_text().strip(), "the checkout to hang"))
        first.kill()
        # Its git ends with it (it would otherwise go on writing the checkout the next sync takes over).
        wait_until(lambda: process_ended(git_pid), "the killed worker's git to end")
        assert indexed_versions(engine) == ["0.1"]  # the old index stays served meanwhile
        with workers(database_url, log, **options) as (second,):
            job = wait_until(lambda: (j := queue.get(job_id)).state == "succeeded" and j, "the sync to be finished")
    assert (job.attempts, job.worker) == (2, second.name)
    assert job.result[0].startswith("hello: 1 resources, 2 versions")
    assert indexed_versions(engine) == ["0.1", "0.2"]
    assert "removed index.lock left by an interrupted sync" in second.output()
