"""The hub's services, one per domain, all built by one factory from the settings (as pypi/warehouse builds its
services: `*_service_factory` in warehouse/packaging/services.py): syncs of catalogs and registries, publishing,
runs, and the Triggers events. The command line, the API and the worker call the same ones:

- the API checks a request and queues it (`request`, `submit`): a job a worker does;
- the command line does the work itself, in the foreground with progress (`sync_here`, `publish_here`,
  `launch_here`), recorded as a job under a lease all the same (jobs.foreground);
- the worker's handlers (`handle`) do the queued ones.
"""

from __future__ import annotations

import dataclasses
import functools
import threading
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from catalog.errors import BackendUnavailable, InvalidReference, InvalidRequest, NotFound, RegistryNotAllowed
from catalog.models import OCI, Catalog
from catalog.publish import PublishSummary, bundle_target, publish_catalog
from catalog.sync import SyncSummary, get_catalog
from hub.config import Settings
from hub.objects import object_store
from hub.registries import Resolvers, local_containers, publish_allowed, registry_client
from jobs import (
    CATALOG_SYNC,
    PUBLISH,
    REGISTRY_SYNC,
    RUN,
    TRIGGER_EVENT,
    Enqueued,
    Handler,
    JobCancelled,
    JobContext,
    JobFailed,
    JobKind,
    JobQueue,
    Periodic,
    QueueTimes,
    Worker,
)
from jobs.foreground import Outcome, run_here
from jobs.models import CANCELLED, QUEUED, Job
from jobs.scheduler import Scheduler
from jobs.syncs import CatalogSyncer
from runner.backends import LogSink, RunBackend, backend_named
from runner.launch import LaunchResult, RunLauncher
from runner.local_store import InstalledStore
from runner.models import CANCELLED as RUN_CANCELLED
from runner.models import SUCCEEDED
from runner.objects import ObjectStore
from runner.pinning import CatalogReferenceResolver, InstalledObjects
from runner.records import RunRecords

if TYPE_CHECKING:  # Triggers are imported by the services that use them
    from hub.triggers_service import TriggersService

# How often a worker's scheduler looks for catalogs due a sync (seconds); its lease outlives a few of these.
SCHEDULER_TICK_SECONDS = 15.0
# How often a worker drops the webhook delivery ids older than their window (TASKHUB_TRIGGERS_DEDUPE_SECONDS).
FORGET_DELIVERIES_SECONDS = 300.0

Report = Callable[[str], None]


def _both(context: JobContext, report: Report) -> Report:
    def both(line: str) -> None:
        context.report(line)
        report(line)

    return both


@dataclass(frozen=True)
class SyncService:
    """Syncs of catalogs and registries; a registry's is a registry-sync job, any other catalog's a catalog-sync."""

    queue: JobQueue
    syncer: CatalogSyncer

    def names(self, name: str | None = None, *, registries_only: bool = False) -> list[str]:
        """The catalog called `name` (NotFound when there is none, or when it is not a registry and only registries
        are asked for), or every catalog (registry), sorted."""
        with Session(self.syncer.engine) as session:
            if name is None:
                query = select(Catalog.name).order_by(Catalog.name)
                if registries_only:
                    query = query.where(Catalog.provider == OCI)
                return list(session.scalars(query))
            catalog = get_catalog(session, name)
            if registries_only and catalog.provider != OCI:
                raise NotFound(f"{catalog.name!r} is a catalog, not a registry: sync it as a catalog")
            return [catalog.name]

    def kind_of(self, name: str) -> JobKind:
        with Session(self.syncer.engine) as session:
            return REGISTRY_SYNC if get_catalog(session, name).provider == OCI else CATALOG_SYNC

    def request(self, name: str, *, created_by: str = "", full: bool = False) -> Enqueued:
        """Queues a sync of `name` (joining one already queued)."""
        payload = {"full": True} if full else None
        return self.queue.enqueue(self.kind_of(name), name, payload, created_by=created_by)

    def sync_here(
        self, name: str, *, full: bool = False, report: Report = lambda _: None, created_by: str = ""
    ) -> SyncSummary:
        """Syncs `name` on this thread (waiting for a sync of it elsewhere to end); a failure is recorded on the
        catalog and raised, and its previous index stays served."""

        def work(context: JobContext) -> SyncSummary:
            both = _both(context, report)
            return self.syncer.sync(name, context.worker, full=full, report=both, stop=context.cancel)

        payload = {"full": True} if full else None
        return run_here(self.queue, self.kind_of(name), name, work, payload=payload, created_by=created_by,
                        outcome=lambda summary: Outcome(summary.lines()))  # fmt: skip

    def handle(self, context: JobContext) -> list[str]:
        return self.syncer.handle(context)


@dataclass(frozen=True)
class PublishService:
    """Catalogs pushed to a registry as bundles."""

    settings: Settings
    engine: Engine
    queue: JobQueue

    def check(self, name: str, target: str) -> None:
        """What the API checks before queueing: a target that reads as host[:port]/prefix, a catalog that exists,
        and a registry the operator lets the API push to (RegistryNotAllowed: no request was made to it)."""
        try:
            bundle_target(target)
        except InvalidReference as exc:
            raise InvalidRequest(str(exc), reason="invalid-payload") from None
        with Session(self.engine) as session:
            get_catalog(session, name)
            if not publish_allowed(self.settings, session, target):
                raise RegistryNotAllowed(
                    f"{target} is not under a registry added to this hub (taskhub registry add) nor under "
                    "TASKHUB_PUBLISH_REGISTRIES; no request was made to it"
                )

    def request(self, name: str, target: str, *, created_by: str = "") -> Enqueued:
        return self.queue.enqueue(PUBLISH, name.lower(), {"registry": target}, created_by=created_by)

    def publish_here(
        self,
        name: str,
        target: str,
        *,
        credentials: tuple[str, str] | None = None,
        report: Report = lambda _: None,
        created_by: str = "",
    ) -> PublishSummary:
        """Publishes on this thread; a summary with failures is recorded as a failed job and returned."""
        bundle_target(target)
        with Session(self.engine) as session:
            name = get_catalog(session, name).name  # NotFound before any job is recorded

        def work(context: JobContext) -> PublishSummary:
            return self._publish(name, target, credentials, _both(context, report))

        # Pushed with the caller's own credentials, it is not one for a worker to push again if this process dies.
        kind = dataclasses.replace(PUBLISH, idempotent=False) if credentials else PUBLISH
        return run_here(self.queue, kind, name, work, payload={"registry": target}, created_by=created_by,
                        outcome=_publish_outcome)  # fmt: skip

    def handle(self, context: JobContext) -> list[str]:
        try:
            summary = self._publish(context.target, str(context.payload.get("registry", "")), None, context.report)
        except NotFound as exc:
            raise JobFailed(str(exc), retry=False) from None
        ended = _publish_outcome(summary)
        if ended.error is not None:
            raise JobFailed("\n".join([ended.error, *summary.lines()]))
        return summary.lines()

    def _publish(self, name: str, target: str, credentials: tuple[str, str] | None, report: Report) -> PublishSummary:
        host, _ = bundle_target(target)
        registry = registry_client(self.settings, self.engine, host, credentials)
        with Session(self.engine) as session, session.begin():
            return publish_catalog(session, get_catalog(session, name), registry, target, report)


def _publish_outcome(summary: PublishSummary) -> Outcome:
    if summary.failed or summary.stopped:
        return Outcome(summary.lines(), error=summary.stopped or "some versions were not published")
    return Outcome(summary.lines())


def _run_outcome(result: LaunchResult) -> Outcome:
    """A run job succeeds with its run, and fails or is cancelled with it."""
    summary = {"run": result.run_id, "status": result.status, "reason": result.reason}
    if result.status == SUCCEEDED:
        return Outcome(summary)
    message = f"run {result.run_id} {result.status.lower()}: {result.reason}" + (
        f": {result.message}" if result.message else ""
    )
    return Outcome(summary, error=message, cancelled=result.status == RUN_CANCELLED)


@dataclass
class RunService:
    """Runs on either backend: queued for a worker (the API, Triggers) or launched here (`taskhub run`)."""

    settings: Settings
    records: RunRecords
    queue: JobQueue
    resolvers: Resolvers
    objects: ObjectStore
    _backends: dict[str, RunBackend] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def backend(self, name: str | None = None) -> RunBackend:
        """The backend `name` (default: TASKHUB_RUN_BACKEND) as the settings configure it, built once."""
        name = name or self.settings.run_backend
        with self._lock:
            if name not in self._backends:
                self._backends[name] = backend_named(
                    name, self.settings.data_dir, self.settings.run_namespace or None, objects=self.objects,
                    kubeconfig=self.settings.kubeconfig or None,
                    containers=lambda: local_containers(self.settings, self.records.engine)[0],  # when a run needs them
                )  # fmt: skip
            return self._backends[name]

    def check_accepted(self, backend: RunBackend) -> None:
        """BackendUnavailable when the operator keeps queued runs off this backend or this host cannot run them."""
        settings = self.settings
        if backend.name not in settings.accepted_backends():
            raise BackendUnavailable(
                f"this hub does not run {backend.name} runs through the API (TASKHUB_API_RUN_BACKENDS="
                f"{settings.api_run_backends}, listening on {settings.listen_host}): local runs execute the caller's "
                "commands on the hub's host, so they are off unless the hub listens on loopback or the operator "
                "lists local"
            )
        reason = backend.unavailable_reason()
        if reason is not None:
            raise BackendUnavailable(reason)

    def submit(
        self, obj: dict[str, Any], *, created_by: str = "", base_url: str = "", pass_through: bool = False
    ) -> tuple[int, int]:
        """Records the run Pending on the configured backend and queues its job: (run id, job id). The backend
        must be one the operator accepts (Settings.accepted_backends). `pass_through` (a cluster's backend only):
        references only the cluster resolves are left to it (runner.pinning)."""
        backend = self.backend()
        self.check_accepted(backend)
        if pass_through and backend.name == "local":
            raise InvalidRequest(
                "passThrough leaves references to a cluster's resolvers, and this hub runs API runs locally "
                "(TASKHUB_RUN_BACKEND=local)",
                reason="invalid-params",
            )
        obj.setdefault("metadata", {})["namespace"] = backend.namespace_for(obj)
        run_id = self.records.create(obj, backend=backend.name, created_by=created_by)
        payload: dict[str, Any] = {"baseURL": base_url, **({"passThrough": True} if pass_through else {})}
        job = self.queue.enqueue(RUN, str(run_id), payload, created_by=created_by)
        return run_id, job.id

    def reference_resolver(self, store: InstalledObjects, base_url: str = "") -> CatalogReferenceResolver:
        """How a run's references are resolved: this hub's catalogs (named by base_url in the lock), its bundles,
        and the objects installed where the run goes."""
        bundles, hub = self.resolvers.bundles, self.resolvers.hub
        return CatalogReferenceResolver(self.records.engine, bundles, hub, store, base_url or self.settings.hub_url)

    def installed(self, backend: RunBackend, namespace: str, pending: list[dict[str, Any]]) -> InstalledObjects:
        """The objects a run in `namespace` reads: a file's own `pending` ones first (`taskhub run`)."""
        return InstalledStore(self.objects, namespace, pending) if pending else backend.installed_objects(namespace)

    def launch_here(
        self,
        obj: dict[str, Any],
        backend: RunBackend,
        *,
        pending: list[dict[str, Any]] | None = None,
        created_by: str = "",
        cancel: threading.Event | None = None,
        log: LogSink | None = None,
        on_event: Report | None = None,
        on_started: Callable[[int, dict[str, Any]], None] | None = None,
        pass_through: bool = False,
    ) -> LaunchResult:
        """Records and runs `obj` on this thread (its namespace already chosen), under a run job's lease."""
        store = self.installed(backend, obj["metadata"]["namespace"], pending or [])
        launcher = RunLauncher(self.records, self.reference_resolver(store), backend)
        run_id = launcher.create(obj, created_by=created_by)

        def work(context: JobContext) -> LaunchResult:
            return launcher.execute(run_id, obj, cancel=context.cancel, log=log, on_event=on_event,
                                    on_started=on_started, pass_through=pass_through)  # fmt: skip

        return run_here(self.queue, RUN, str(run_id), work, created_by=created_by, cancel=cancel,
                        outcome=_run_outcome)  # fmt: skip

    def handle(self, context: JobContext) -> dict[str, Any]:
        """The handler of `run` jobs: the run recorded Pending by `submit`, pinned and run on its backend."""
        run_id = int(context.target)
        detail = self.records.get(run_id)
        if detail is None:
            raise JobFailed(f"run {run_id} not found", retry=False)
        if detail.finished:  # cancelled while it was queued
            return {"run": run_id, "status": detail.status, "reason": detail.reason}
        backend = self.backend(detail.backend)
        store = backend.installed_objects(detail.namespace)
        base_url = str(context.payload.get("baseURL", ""))
        launcher = RunLauncher(self.records, self.reference_resolver(store, base_url), backend)
        result = launcher.execute(run_id, detail.object, cancel=context.cancel, on_event=context.report,
                                  pass_through=bool(context.payload.get("passThrough")))  # fmt: skip
        ended = _run_outcome(result)
        if ended.cancelled:
            raise JobCancelled(ended.error or "cancelled")
        if ended.error is not None:
            raise JobFailed(ended.error, retry=False)
        return dict(ended.result)

    def cancel(self, run_id: int) -> str | None:
        """Asks the run to stop; one still queued ends at once. Its status (None: no such run)."""
        status = self.records.request_cancel(run_id)
        if status is None:
            return None
        with Session(self.records.engine) as session:
            queued = session.scalar(
                select(Job.id).where(Job.kind == RUN.name, Job.target == str(run_id), Job.state == QUEUED)
            )
        if queued is not None and self.queue.cancel(queued) == CANCELLED:
            self.records.cancelled(run_id, "cancelled before it started")
        return status


@dataclass
class Services:
    """Every service of one hub (or worker, or command), built from its settings on first use."""

    settings: Settings
    engine: Engine

    @functools.cached_property
    def queue(self) -> JobQueue:
        return JobQueue(self.engine, QueueTimes(lease=self.settings.job_lease_seconds))

    @functools.cached_property
    def resolvers(self) -> Resolvers:
        return Resolvers(self.settings, self.engine)

    @functools.cached_property
    def objects(self) -> ObjectStore:
        return object_store(self.settings, self.engine)

    @functools.cached_property
    def syncs(self) -> SyncService:
        settings = self.settings
        syncer = CatalogSyncer(
            self.engine,
            settings.catalogs_dir,
            lambda host: registry_client(settings, self.engine, host),
            lease_seconds=settings.job_lease_seconds,
        )
        return SyncService(self.queue, syncer)

    @functools.cached_property
    def publish(self) -> PublishService:
        return PublishService(self.settings, self.engine, self.queue)

    @functools.cached_property
    def runs(self) -> RunService:
        return RunService(self.settings, RunRecords(self.engine), self.queue, self.resolvers, self.objects)

    @functools.cached_property
    def triggers(self) -> TriggersService:
        from hub.triggers_service import TriggersService

        spool = self.settings.spool_directory()
        return TriggersService(self.settings, self.engine, self.objects, self.queue, self.runs, spool=spool)

    def handlers(self) -> dict[str, Handler]:
        """The handler of every kind of job."""
        return {
            CATALOG_SYNC.name: self.syncs.handle,
            REGISTRY_SYNC.name: self.syncs.handle,
            PUBLISH.name: self.publish.handle,
            RUN.name: self.runs.handle,
            TRIGGER_EVENT.name: lambda context: self.triggers.processor.handle(context),
        }

    def worker(self, *, concurrency: int | None = None, kinds: Collection[str] | None = None) -> Worker:
        """A worker taking `kinds` (default: every kind), `concurrency` at a time, that also runs the scheduler
        (only the holder of the scheduler lease acts, however many workers run)."""
        settings = self.settings
        worker = Worker(
            self.queue,
            self.handlers(),
            concurrency=concurrency or settings.worker_concurrency,
            kinds=kinds,
            poll_interval=settings.job_poll_seconds,
            grace=settings.shutdown_grace_seconds,
        )
        scheduler = Scheduler(self.queue, worker.name, lease_seconds=max(settings.job_lease_seconds * 2, 60.0))

        def schedule() -> None:
            scheduler.tick()

        def forget() -> None:
            from triggers.events import forget_deliveries

            forget_deliveries(self.engine, settings.triggers_dedupe_seconds)

        worker.periodic = [Periodic(SCHEDULER_TICK_SECONDS, schedule), Periodic(FORGET_DELIVERIES_SECONDS, forget)]
        return worker

    def cancel_job(self, job_id: int) -> str:
        """Cancels a queued job at once (a queued run's record with it), or asks a running one to stop; the state
        it is in now (NotFound; Conflict once it ended)."""
        job = self.queue.get(job_id)
        state = self.queue.cancel(job_id)
        if job is not None and job.kind == RUN.name and job.state == QUEUED and state == CANCELLED:
            self.runs.records.cancelled(int(job.target), "cancelled before it started")
        return state
