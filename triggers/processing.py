"""The `trigger-event` job: what an accepted event does once its 202 has gone out. The listener's triggers run
(triggers.engine), and what their templates render is created: PipelineRuns and TaskRuns through the runner, as
`run` jobs on the hub's configured backend, with upstream's labels; other kinds (ConfigMaps, ...) only where a
cluster holds them (`taskhub triggers serve`, `ClusterCreator`), refused with the reason by the hub's runner.

As upstream (tektoncd/triggers: pkg/resources/create.go), the first object that cannot be created stops that
trigger's remaining ones, and earlier ones stay; nothing is retried.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any, Protocol

from catalog.errors import TaskhubError
from jobs import JobContext, JobFailed
from triggers.admission import parse_resource
from triggers.cloudevents import DONE, STARTED, SUCCESSFUL, StatusEvents, headers_json
from triggers.engine import EventOutcome, EventRequest, TriggerOutcome, TriggersEngine
from triggers.events import EventLog
from triggers.fielderrors import InvalidResource
from triggers.ports import InterceptorHTTP
from triggers.resources import EventListener
from triggers.templates import RenderedResource

log = logging.getLogger(__name__)
RUN_KINDS = ("PipelineRun", "TaskRun")
# The apiserver's generateName suffix: 5 characters of this alphabet (k8s.io/apiserver: pkg/storage/names).
_NAME_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"


def generated_name(prefix: str) -> str:
    """A name from `generateName` as the Kubernetes API server makes it: the prefix cut to 58, then 5 characters."""
    return prefix[:58] + "".join(secrets.choice(_NAME_ALPHABET) for _ in range(5))


@dataclass(frozen=True)
class Created:
    """An object a trigger created: where, and the run record (and its job) when it is a run."""

    kind: str
    namespace: str
    name: str
    run: int | None = None
    job: int | None = None


class ResourceCreator(Protocol):
    """Creates what a template rendered: the hub's runner, or a cluster in `taskhub triggers serve`."""

    def create(self, resource: RenderedResource, manifest: dict[str, Any], *, created_by: str) -> Created:
        """Creates one object; a TaskhubError says why it could not be (upstream: `problem creating obj`)."""
        ...


class NotCreatedHere(TaskhubError):
    """A kind this creator does not create; the message says where it would be."""


class RunSubmitter(Protocol):
    def submit(self, obj: dict[str, Any], *, created_by: str = "") -> tuple[int, int]:
        """Records a run Pending and queues its job; (run id, job id)."""
        ...


@dataclass
class RunnerCreator:
    """The hub's way: runs through the runner as jobs; other kinds refused (the local runner keeps no cluster)."""

    runs: RunSubmitter

    def create(self, resource: RenderedResource, manifest: dict[str, Any], *, created_by: str) -> Created:
        if resource.kind not in RUN_KINDS or not resource.api_version.startswith("tekton.dev/"):
            raise NotCreatedHere(
                f"{resource.kind} {manifest['metadata']['name']}: the hub's runner creates only PipelineRuns and "
                "TaskRuns; other kinds are created on a cluster (`taskhub triggers serve`)"
            )
        run_id, job_id = self.runs.submit(manifest, created_by=created_by)
        return Created(resource.kind, resource.namespace, manifest["metadata"]["name"], run_id, job_id)


@dataclass
class EventProcessor:
    """Runs accepted events: the engine evaluates, the creator creates, the log records."""

    events: EventLog
    engine: TriggersEngine
    creator: ResourceCreator
    listener_of: Callable[[str, str], dict[str, Any] | None]
    # How CloudEvents reach a listener's cloudEventURI (the interceptors' client: allowed addresses only).
    http: InterceptorHTTP | None = None

    def handle(self, context: JobContext) -> dict[str, Any]:
        """The handler of `trigger-event` jobs: the target is the event's eventID (its number, for jobs queued
        before the sink queued the job ahead of its event)."""
        return self.process(context.target)

    def process(self, key: int | str) -> dict[str, Any]:
        started = self.events.start(key)
        if started is None:
            raise JobFailed(f"event {key} is not waiting to be processed", retry=False)
        row, headers = started
        event = row.id
        manifest = self.listener_of(row.namespace, row.name)
        if manifest is None:
            reason = f'EventListener "{row.name}" in namespace "{row.namespace}" was deleted before the event ran'
            self.events.finish(event, [], failed=reason)
            return {"event": event, "failed": reason}
        try:
            listener = parse_resource(manifest, namespace=row.namespace)
        except InvalidResource as exc:
            self.events.finish(event, [], failed=str(exc))
            return {"event": event, "failed": str(exc)}
        assert isinstance(listener, EventListener)
        status = None
        if listener.cloud_event_uri and self.http is not None:
            status = StatusEvents(self.http, listener.cloud_event_uri, row.namespace, row.name, row.event_id)
            status.send(STARTED, headers_json(headers))
        try:
            request = EventRequest.from_pairs(row.method, row.url, headers, row.body)
            outcome = self.engine.process_event(listener, request, row.event_id)
            recorded = self._create_all(outcome)
        except Exception as exc:  # recorded, never lost: the job fails with the same words
            log.exception("event %s failed", event)
            self.events.finish(event, [], failed=f"internal error: {type(exc).__name__}: {exc}")
            raise
        self.events.finish(event, recorded)
        if status is not None:
            for entry in recorded:
                if entry["status"] == "created":
                    status.send(SUCCESSFUL)
            status.send(DONE)
        created = sum(len(o["created"]) for o in recorded)
        return {"event": event, "triggers": len(recorded), "created": created}

    def _create_all(self, outcome: EventOutcome) -> list[dict[str, Any]]:
        out = []
        for trigger in outcome.triggers:
            entry = _outcome_json(trigger)
            created_by = f"el:{outcome.namespace}/{outcome.listener}"[:63]
            for resource in trigger.resources:
                manifest = _named(resource)
                try:
                    made = self.creator.create(resource, manifest, created_by=created_by)
                except TaskhubError as exc:
                    entry["status"] = "failed"
                    entry["reason"] = f"problem creating obj: {exc}"
                    break
                entry["created"].append(asdict(made))
            out.append(entry)
        return out


def _named(resource: RenderedResource) -> dict[str, Any]:
    manifest = dict(resource.manifest)
    meta = dict(manifest.get("metadata") or {})
    if not meta.get("name") and resource.generate_name:
        meta["name"] = generated_name(resource.generate_name)
        meta.pop("generateName", None)
    manifest["metadata"] = meta
    return manifest


def _outcome_json(trigger: TriggerOutcome) -> dict[str, Any]:
    return {
        "trigger": trigger.trigger, "namespace": trigger.namespace, "triggerID": trigger.trigger_id,
        "group": trigger.group, "status": trigger.status, "interceptor": trigger.interceptor,
        "reason": trigger.reason, "params": dict(trigger.params), "created": [],
    }  # fmt: skip
