"""The scheduler's rules: refresh intervals, who acts, what is queued when."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from catalog.errors import InvalidRequest
from catalog.models import OCI, Catalog
from jobs import JobQueue
from jobs.scheduler import Scheduler, format_refresh, next_sync, parse_refresh, set_refresh, sync_schedule
from tests.conftest import register


@pytest.mark.parametrize(("text", "seconds"), [("30m", 1800), ("5m", 300), ("1h", 3600), ("2d", 172800),
                                               ("never", 0), (" NEVER ", 0), ("90s", 90)])  # fmt: skip
def test_refresh_intervals_read_as_people_write_them(text, seconds):
    assert parse_refresh(text) == seconds
    assert parse_refresh(format_refresh(seconds)) == seconds


@pytest.mark.parametrize("text", ["", "30", "5x", "-5m", "10s", "soon"])
def test_a_bad_refresh_interval_says_what_is_expected(text):
    with pytest.raises(InvalidRequest, match="expected 'never' or a number of minutes"):
        parse_refresh(text)


def test_the_next_sync_is_the_interval_give_or_take_the_jitter():
    now = datetime(2026, 1, 1, tzinfo=UTC)
    times = [next_sync(now, 1800, jitter=0.1) for _ in range(200)]
    assert all(timedelta(seconds=1620) <= t - now <= timedelta(seconds=1980) for t in times)
    assert len(set(times)) > 1
    assert next_sync(now, 0) is None


def test_due_catalogs_are_queued_once_by_the_holder_of_the_scheduler_lease(engine, tmp_path):
    for name in ("due", "later", "off"):
        register(engine, name, tmp_path)
    register(engine, "oci-due", "127.0.0.1:5000/tekton", repositories=["task/hello"])
    with engine.begin() as conn:
        conn.execute(update(Catalog).where(Catalog.name == "later").values(
            next_sync_at=datetime.now(UTC) + timedelta(hours=1)))  # fmt: skip
        conn.execute(update(Catalog).where(Catalog.name == "off").values(refresh_seconds=0))
    queue = JobQueue(engine)
    first, second = Scheduler(queue, "worker-a"), Scheduler(queue, "worker-b")
    assert len(second.tick()) == 2  # it took the free lease
    assert first.tick() == []  # while the lease is second's, first does nothing
    jobs = queue.list(limit=10)[0]
    assert sorted((j.kind, j.target) for j in jobs) == [("catalog-sync", "due"), ("registry-sync", "oci-due")]
    assert first.tick() == [] and second.tick() == []  # queued already, and next_sync_at moved on
    with Session(engine) as session:
        due = session.scalar(select(Catalog).where(Catalog.name == "due"))
        assert due.next_sync_at > datetime.now(UTC) + timedelta(minutes=25)
        assert session.scalar(select(Catalog.provider).where(Catalog.name == "oci-due")) == OCI


def test_a_changed_interval_counts_from_the_last_sync_and_never_stops_the_syncs():
    last = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
    catalog = Catalog(name="c", refresh_seconds=1800, last_sync_at=last, next_sync_at=last + timedelta(minutes=30))
    set_refresh(catalog, 300, jitter=0.0)
    assert catalog.next_sync_at == last + timedelta(minutes=5)
    assert sync_schedule(catalog, last).next_text == "2026-01-01 12:05 UTC"
    assert sync_schedule(catalog, last + timedelta(minutes=6)).next_text == "due now"  # overdue: the next tick
    set_refresh(catalog, 0)
    assert catalog.next_sync_at is None and sync_schedule(catalog, last).next_text == "never"
    never_synced = Catalog(name="new", refresh_seconds=1800)
    set_refresh(never_synced, 3600)
    assert never_synced.next_sync_at is None and sync_schedule(never_synced, last).last_text == "never synced"


def test_the_last_sync_reads_with_its_outcome_and_error():
    ended = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
    ok = Catalog(name="ok", refresh_seconds=1800, last_sync_at=ended)
    assert sync_schedule(ok, ended).last_text == "2026-01-01 12:00 UTC succeeded"
    bad = Catalog(name="bad", refresh_seconds=0, last_sync_at=ended, last_error="git fetch failed: no such repository")
    assert sync_schedule(bad, ended).last_text == "2026-01-01 12:00 UTC failed: git fetch failed: no such repository"
