"""The scheduler: queues a sync of every catalog and registry whose refresh interval has passed.

Any worker may run it (as a periodic task of its control thread), but only the holder of the "scheduler" lease
acts, so however many workers run, each catalog is queued once per interval. The next sync is set at the interval
from the end of the last one, stretched or shrunk by a random `jitter` fraction so that catalogs added together
do not stay synced together.
"""

from __future__ import annotations

import logging
import random
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import exists, func, or_, select, update
from sqlalchemy.orm import Session

from catalog.errors import InvalidRequest
from catalog.models import OCI, Catalog
from jobs.clock import database_now
from jobs.kinds import CATALOG_SYNC, REGISTRY_SYNC
from jobs.leases import Leases
from jobs.models import QUEUED, RUNNING, Job
from jobs.queue import Enqueued, JobQueue

log = logging.getLogger(__name__)

SCHEDULER_LEASE = "scheduler"
_INTERVAL = re.compile(r"^(\d+)([smhd])$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
MIN_REFRESH_SECONDS = 60


def parse_refresh(text: str) -> int:
    """A refresh interval as given on the command line or to the API ("30m", "5m", "1h", "never") in seconds;
    0 for never."""
    value = text.strip().lower()
    if value == "never":
        return 0
    match = _INTERVAL.match(value)
    seconds = int(match[1]) * _UNIT_SECONDS[match[2]] if match else -1
    if seconds < MIN_REFRESH_SECONDS:
        raise InvalidRequest(
            f"refresh interval {text!r}: expected 'never' or a number of minutes, hours or days of at least 1m "
            "(30m, 5m, 1h, 1d)",
            reason="invalid-refresh",
        )
    return seconds


def format_refresh(seconds: int) -> str:
    """The interval as parse_refresh reads it back."""
    if seconds <= 0:
        return "never"
    for unit in ("d", "h", "m"):
        if seconds % _UNIT_SECONDS[unit] == 0:
            return f"{seconds // _UNIT_SECONDS[unit]}{unit}"
    return f"{seconds}s"


def next_sync(now: datetime, refresh_seconds: int, jitter: float = 0.1) -> datetime | None:
    """When a catalog synced at `now` is synced again: the interval, give or take `jitter` of it."""
    if refresh_seconds <= 0:
        return None
    return now + timedelta(seconds=refresh_seconds * random.uniform(1 - jitter, 1 + jitter))


def set_refresh(catalog: Catalog, seconds: int, jitter: float = 0.1) -> None:
    """Changes how often `catalog` is synced, counting the new interval from its last sync (a catalog never synced
    is due at once); 0 stops the syncs."""
    catalog.refresh_seconds = seconds
    last = catalog.last_sync_at
    catalog.next_sync_at = next_sync(last, seconds, jitter) if last is not None else None


@dataclass(frozen=True)
class SyncSchedule:
    """What a person reads of a catalog's syncs: how often, the last one and how it ended, and the next one."""

    refresh: str  # "30m", or "never"
    last_at: datetime | None  # when the last sync ended (None: never, or not recorded)
    outcome: str  # "succeeded", "failed", or "never synced"
    error: str | None  # why the last sync failed, as the sync said it
    next_at: datetime | None  # when the scheduler queues the next one; None with refresh "never" or when due now
    syncing: str | None = None  # "queued" or "running": a sync of it is waiting for a worker, or under way

    @property
    def next_text(self) -> str:
        if self.syncing:
            return f"{self.syncing} now"
        if self.refresh == "never":
            return "never"
        return "due now" if self.next_at is None else self.next_at.strftime("%Y-%m-%d %H:%M UTC")

    @property
    def last_text(self) -> str:
        if self.outcome == "never synced":
            return "never synced"
        when = f"{self.last_at:%Y-%m-%d %H:%M UTC} " if self.last_at else ""
        return f"{when}{self.outcome}" + (f": {self.error}" if self.error else "")


def sync_schedules(session: Session, catalogs: Sequence[Catalog]) -> list[SyncSchedule]:
    """The schedule of each catalog on the database's clock, with the sync of it queued or running now, if any."""
    now = database_now(session)
    kinds, names = (CATALOG_SYNC.name, REGISTRY_SYNC.name), [c.name for c in catalogs]
    active = select(Job.target, func.max(Job.state))  # "running" sorts after "queued"
    active = active.where(Job.kind.in_(kinds), Job.state.in_((QUEUED, RUNNING)), Job.target.in_(names))
    syncing = dict(session.execute(active.group_by(Job.target)).tuples().all())
    return [sync_schedule(c, now, syncing.get(c.name)) for c in catalogs]


def sync_schedule(catalog: Catalog, now: datetime, syncing: str | None = None) -> SyncSchedule:
    """`catalog`'s schedule as of `now`; `syncing`: the state of its sync queued or running now."""
    last = catalog.last_sync_at or catalog.synced_at
    outcome = "failed" if catalog.last_error else "succeeded" if last else "never synced"
    due = catalog.next_sync_at
    return SyncSchedule(
        refresh=format_refresh(catalog.refresh_seconds),
        last_at=last,
        outcome=outcome,
        error=catalog.last_error,
        next_at=None if catalog.refresh_seconds <= 0 or due is None or due <= now else due,
        syncing=syncing,
    )


def sync_ended(session: Session, catalog: Catalog, jitter: float = 0.1) -> None:
    """Records that a sync of `catalog` just ended, whatever its outcome, and when the next one is due."""
    now = database_now(session)
    catalog.last_sync_at = now
    catalog.next_sync_at = next_sync(now, catalog.refresh_seconds, jitter)


@dataclass
class Scheduler:
    queue: JobQueue
    holder: str
    # How long the scheduler lease lasts unless renewed (seconds): the longest a dead scheduler's turn waits.
    lease_seconds: float = 60.0
    jitter: float = 0.1

    def tick(self) -> list[Enqueued]:
        """If this process holds (or takes) the scheduler lease, queues the syncs that are due; else nothing."""
        if not Leases(self.queue.engine).acquire(SCHEDULER_LEASE, self.holder, self.lease_seconds):
            return []
        kinds = (CATALOG_SYNC.name, REGISTRY_SYNC.name)
        busy = exists().where(Job.kind.in_(kinds), Job.target == Catalog.name, Job.state.in_((QUEUED, RUNNING)))
        with Session(self.queue.engine) as session:
            now = database_now(session)
            due = session.execute(
                select(Catalog.id, Catalog.name, Catalog.provider, Catalog.refresh_seconds).where(
                    Catalog.refresh_seconds > 0, or_(Catalog.next_sync_at.is_(None), Catalog.next_sync_at <= now), ~busy
                )
            ).all()
        queued = []
        for catalog_id, name, provider, refresh in due:
            kind = REGISTRY_SYNC if provider == OCI else CATALOG_SYNC
            queued.append(self.queue.enqueue(kind, name, created_by=f"scheduler@{self.holder}"))
            with Session(self.queue.engine) as session, session.begin():
                later = next_sync(now, refresh, self.jitter)
                session.execute(update(Catalog).where(Catalog.id == catalog_id).values(next_sync_at=later))
            log.info("scheduler: queued a sync of %s (every %s)", name, format_refresh(refresh))
        return queued
