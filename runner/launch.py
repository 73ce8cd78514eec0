"""Launching a run, the one way the CLI and the API both use: record it, pin it, run it on a backend with its logs
going to the caller and to the record, and record how it ended (Succeeded, Failed, Cancelled), errors included.

`RunLauncher.execute` runs on the calling thread: `taskhub run`'s, or a worker's for a queued `run` job
(hub.services.RunService). A cancel is a `threading.Event` set by the caller, or a request stored on the record
(`RunRecords.request_cancel`) by any process, which the launching process sees within CANCEL_POLL_SECONDS.
"""

from __future__ import annotations

import json
import logging
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import yaml

from catalog.errors import InvalidRequest, TaskhubError
from catalog.manifests import ManifestError, load_documents
from runner.backends import LogSink, RunBackend
from runner.local import InvalidRunObject
from runner.models import CANCELLED, FAILED, SUCCEEDED
from runner.objects import InvalidObject
from runner.objects.documents import documents_of
from runner.pinning import ReferenceResolver, pin_run
from runner.records import LogWriter, RunRecords
from runner.run_details import status_of

log = logging.getLogger(__name__)

CANCEL_POLL_SECONDS = 1.0
RUN_KINDS = ("TaskRun", "PipelineRun")
_NAME = re.compile(r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$")
_GENERATE_NAME = re.compile(r"^[a-z0-9][-a-z0-9.]{0,240}$")
_NAMESPACE = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")


class InvalidRun(InvalidRequest):
    """A document that is not a TaskRun or PipelineRun taskhub can run."""

    reason = "invalid-run"


def parse_run(text: str, *, aliases: bool = True) -> dict[str, Any]:
    """The run in a YAML (or JSON) document, read by the hardened loader (catalog.manifests: no alias bombs,
    deep nesting, duplicate keys, Python tags or NUL) and checked with `check_run`. `aliases=False` refuses YAML
    anchors and aliases altogether."""
    if not aliases and "*" in text and "&" in text:
        try:
            if any(isinstance(event, yaml.AliasEvent) for event in yaml.parse(text, Loader=yaml.SafeLoader)):
                raise InvalidRun("not YAML this hub accepts: YAML aliases are not accepted")
        except yaml.YAMLError as exc:
            raise InvalidRun(f"not YAML: {' '.join(str(exc).split())}") from None
    try:
        documents = load_documents(text)
    except ManifestError as exc:
        raise InvalidRun(f"not YAML this hub accepts: {exc}") from None
    return check_run(documents[0] if len(documents) == 1 else None)


@dataclass
class RunFile:
    """A file as `kubectl create -f` takes it: its TaskRuns and PipelineRuns in order, and its other objects."""

    runs: list[dict[str, Any]]
    objects: list[dict[str, Any]]


def parse_run_file(text: str) -> RunFile:
    """The runs (each checked with `check_run`) and the other objects of a YAML or JSON text of any number of
    documents (`kind: List` expanded); InvalidRun when it is not one or holds no run."""
    try:
        documents = documents_of(text)
    except InvalidObject as exc:
        raise InvalidRun(str(exc)) from None
    runs = [check_run(doc) for doc in documents if doc.get("kind") in RUN_KINDS]
    if not runs:
        raise InvalidRun("not a run: no TaskRun or PipelineRun in it (`taskhub apply -f` keeps the other kinds)")
    return RunFile(runs, [doc for doc in documents if doc.get("kind") not in RUN_KINDS])


def check_run(obj: Any) -> dict[str, Any]:
    """obj if it is one tekton.dev TaskRun or PipelineRun whose names a cluster would accept; else InvalidRun."""
    if not isinstance(obj, dict) or obj.get("kind") not in RUN_KINDS:
        raise InvalidRun("not a run: expected one TaskRun or PipelineRun document")
    kind = obj["kind"]
    if not str(obj.get("apiVersion", "")).startswith("tekton.dev/"):
        raise InvalidRun(f"{kind} has apiVersion {obj.get('apiVersion')!r}: expected tekton.dev")
    meta, spec = obj.get("metadata", {}), obj.get("spec")
    if not isinstance(meta, dict):
        raise InvalidRun(f"{kind} metadata must be a mapping")
    if not isinstance(spec, dict):
        raise InvalidRun(f"{kind} spec must be a mapping")
    name, prefix, namespace = meta.get("name"), meta.get("generateName"), meta.get("namespace")
    if name is None and prefix is None:
        raise InvalidRun(f"{kind} needs metadata.name or metadata.generateName")
    for value, pattern, what in ((name, _NAME, "name"), (prefix, _GENERATE_NAME, "generateName"),
                                 (namespace, _NAMESPACE, "namespace")):  # fmt: skip
        if value is not None and not (isinstance(value, str) and pattern.match(value)):
            raise InvalidRun(f"{kind} metadata.{what} {str(value)[:80]!r} is not a valid Kubernetes name")
    if not isinstance(spec.get("params", []), list):
        raise InvalidRun(f"{kind} spec.params must be a list of {{name, value}}")
    try:
        encoded = json.dumps(obj, allow_nan=False)  # as the record will store it
    except (ValueError, TypeError, RecursionError) as exc:
        raise InvalidRun(f"{kind} cannot be stored as JSON: {exc}") from None
    if "\\u0000" in encoded:
        raise InvalidRun(f"{kind} contains a NUL character")
    return obj


@dataclass
class LaunchResult:
    """How a launched run ended; `object` is None when it never reached its backend (see `message`)."""

    run_id: int
    status: str
    reason: str
    message: str
    object: dict[str, Any] | None = None
    warnings: list[str] = field(default_factory=list)

    @property
    def succeeded(self) -> bool:
        return self.status == SUCCEEDED


class RunLauncher:
    """Records, pins and runs runs on one backend; see the module."""

    def __init__(self, records: RunRecords, resolve_ref: ReferenceResolver, backend: RunBackend) -> None:
        self.records, self.resolve_ref, self.backend = records, resolve_ref, backend

    def create(self, obj: dict[str, Any], *, created_by: str = "") -> int:
        """Records the run as Pending in the namespace it goes to (set in its metadata); `execute` runs it."""
        obj.setdefault("metadata", {})["namespace"] = self.backend.namespace_for(obj)
        return self.records.create(obj, backend=self.backend.name, created_by=created_by)

    def launch(self, obj: dict[str, Any], *, created_by: str = "", **options: Any) -> LaunchResult:
        """`create` and `execute` in one."""
        return self.execute(self.create(obj, created_by=created_by), obj, **options)

    def execute(
        self,
        run_id: int,
        obj: dict[str, Any],
        *,
        cancel: threading.Event | None = None,
        log: LogSink | None = None,
        on_event: Callable[[str], None] | None = None,
        on_started: Callable[[int, dict[str, Any]], None] | None = None,
        pass_through: bool = False,
    ) -> LaunchResult:
        """Pins and runs the recorded run `run_id`, recording each step; returns how it ended. Errors are recorded
        and returned (status Failed, `object` None); only an interrupt or an unexpected error is raised.
        `pass_through`: references only the cluster resolves are left to it (runner.pinning)."""
        cancel = cancel or threading.Event()
        ended = threading.Event()
        writer = self.records.log_writer(run_id)
        children = _Latest()
        threading.Thread(target=self._follow, args=(run_id, cancel, ended, writer, children), daemon=True).start()

        def both(task_run: str, container: str, text: str) -> None:
            writer.line(task_run, container, text)
            if log is not None:
                log(task_run, container, text)

        try:
            if cancel.is_set() or self.records.cancel_requested(run_id):
                return self._cancelled(run_id, "cancelled before it started")
            try:
                pinned, lock = pin_run(obj, self.resolve_ref, pass_through=pass_through)
            except TaskhubError as exc:
                return self._failed(run_id, "ResolutionFailed", str(exc))
            self.records.started(run_id, pinned, [entry.to_json() for entry in lock])
            if on_started is not None:
                on_started(run_id, pinned)
            try:
                done = self.backend.run(
                    pinned, lock, log=both, cancel=cancel, on_event=on_event, progress=children.set,
                    on_created=lambda created: self._created(run_id, created),
                )  # fmt: skip
            except InvalidRunObject as exc:
                return self._failed(run_id, "InvalidRun", str(exc))
            except TaskhubError as exc:
                if cancel.is_set():
                    return self._cancelled(run_id, f"cancelled; then the backend failed: {exc}")
                return self._failed(run_id, "BackendFailed", str(exc))
            writer.flush()
            self.records.finished(run_id, done.object, done.children, cancelled=cancel.is_set())
            status, reason, message = status_of(done.object)
            if cancel.is_set() and status == FAILED:
                status = CANCELLED
            return LaunchResult(run_id, status, reason, message, done.object, done.warnings)
        except BaseException as exc:  # an interrupt, or a bug: the record must not stay Running
            writer.flush()
            if isinstance(exc, KeyboardInterrupt | SystemExit):
                self.records.cancelled(run_id, "interrupted")
            else:
                self.records.failed(run_id, "InternalError", f"{type(exc).__name__}: {exc}")
            raise
        finally:
            ended.set()
            writer.flush()

    def _created(self, run_id: int, created: dict[str, Any]) -> None:
        try:
            self.records.created(run_id, created)
        except Exception:  # the run goes on; its end records its name again
            log.warning("could not record the name the backend gave run %s", run_id, exc_info=True)

    def _failed(self, run_id: int, reason: str, message: str) -> LaunchResult:
        self.records.failed(run_id, reason, message)
        return LaunchResult(run_id, FAILED, reason, message)

    def _cancelled(self, run_id: int, message: str) -> LaunchResult:
        self.records.cancelled(run_id, message)
        return LaunchResult(run_id, CANCELLED, "Cancelled", message)

    def _follow(
        self, run_id: int, cancel: threading.Event, ended: threading.Event, writer: LogWriter, children: _Latest
    ) -> None:
        """Every CANCEL_POLL_SECONDS while the run goes: store its new output and its child TaskRuns as they stand,
        so both can be read while the run goes, and set `cancel` once a cancel is requested on its record (by the
        API, from any process)."""
        while not ended.wait(CANCEL_POLL_SECONDS):
            try:
                writer.flush()
                changed = children.take()
                if changed is not None:
                    self.records.progress(run_id, changed)
                if not cancel.is_set() and self.records.cancel_requested(run_id):
                    cancel.set()
            except Exception:  # the database is away for a moment: try again later
                log.warning("could not store the logs or read the cancel request of run %s", run_id, exc_info=True)


class _Latest:
    """The newest list of child runs a backend reported, until it is taken."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._value: list[dict[str, Any]] | None = None

    def set(self, value: list[dict[str, Any]]) -> None:
        with self._lock:
            self._value = value

    def take(self) -> list[dict[str, Any]] | None:
        with self._lock:
            value, self._value = self._value, None
            return value
