"""Syncing a catalog or registry as a worker or the command line does it: under the catalog's lease (never two
syncs of one catalog at once, whichever hosts they run on), after clearing what a killed sync left in its git
checkout, recording the outcome and when the next sync is due."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from catalog.errors import NotFound, TaskhubError
from catalog.registry import Registry
from catalog.sources import recover_git_locks
from catalog.sync import SyncSummary, get_catalog, sync_by_name
from jobs.context import JobContext, JobFailed
from jobs.leases import Leases, catalog_lease
from jobs.scheduler import sync_ended

log = logging.getLogger(__name__)


@dataclass
class CatalogSyncer:
    """Syncs catalogs of one database into one work directory, reading registries through `registries(host)`."""

    engine: Engine
    work_dir: Path
    registries: Callable[[str], Registry]
    lease_seconds: float = 30.0
    jitter: float = 0.1

    def sync(
        self,
        name: str,
        holder: str,
        *,
        full: bool = False,
        report: Callable[[str], None] = lambda _: None,
        stop: threading.Event | None = None,
    ) -> SyncSummary:
        """Fetches and indexes catalog `name` holding its lease as `holder` (waiting for another sync of it to end);
        a failure is recorded on the catalog and raised, and the old index stays served."""
        with Session(self.engine) as session:
            name = get_catalog(session, name).name  # NotFound before any wait

        def waiting(other: str) -> None:
            report(f"waiting for the sync of {name} that {other} runs")

        with Leases(self.engine).hold(catalog_lease(name), holder, self.lease_seconds, waiting=waiting, stop=stop):
            removed = recover_git_locks(self.work_dir / name)
            if removed:
                log.warning("sync of %s: removed %s left by an interrupted sync", name, ", ".join(removed))
                report(f"removed {', '.join(removed)} left by an interrupted sync")
            try:
                summary = sync_by_name(self.engine, name, self.work_dir, self.registries, report, full=full)
            except TaskhubError as exc:
                self._ended(name, error=str(exc))
                raise
            self._ended(name)
            return summary

    def _ended(self, name: str, error: str | None = None) -> None:
        with Session(self.engine) as session, session.begin():
            catalog = get_catalog(session, name)
            if error is not None:
                catalog.last_error = error
            sync_ended(session, catalog, self.jitter)

    def handle(self, context: JobContext) -> list[str]:
        """The handler of catalog-sync and registry-sync jobs: the summary's lines as the result."""
        try:
            summary = self.sync(
                context.target,
                context.worker,
                full=bool(context.payload.get("full")),
                report=context.report,
                stop=context.cancel,
            )
        except NotFound as exc:
            raise JobFailed(str(exc), retry=False) from None
        except TaskhubError as exc:
            raise JobFailed(str(exc)) from None
        context.progress(summary.versions, summary.versions, f"indexed {summary.versions} versions")
        return summary.lines()
