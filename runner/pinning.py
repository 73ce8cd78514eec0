"""Resolution and pinning of a TaskRun or PipelineRun: references inlined or pinned, and a lock of what they were.

`pin_run` makes a self-contained run: every `pipelineRef` and `taskRef` (hub, bundles, taskhub or an installed
name) is replaced by the spec it resolved to, converted to tekton.dev/v1. StepAction `ref`s stay references (the
executor merges a StepAction into its step, params and all), pinned to the exact version or digest;
`step_action_resolver` serves them from the lock's content. `pin_references_only` keeps every reference and only
pins it, for clusters that run Tekton's own resolvers. Both record the lock as JSON in the run's
``taskhub.dev/lock`` annotation.

References taskhub cannot resolve (git, cluster, http, any other resolver) are refused, unless `pass_through` is
set: then they, and `resolver: taskhub` ones (addressed to the cluster's `taskhub resolver serve`), are left as
they are for the cluster's resolvers and listed in the lock as passed through, without a digest.
"""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from catalog.convert import api_version_of, convert
from catalog.errors import TaskhubError
from catalog.manifests import ManifestError, decode_text, load_documents
from catalog.queries import CatalogIndex
from catalog.resolver import BundleResolver, HubResolver, Resolved, resolver_for

LOCK_ANNOTATION = "taskhub.dev/lock"
# The resolvers taskhub answers itself; "taskhub" is its own, as `taskhub resolver serve` answers it on a cluster.
RESOLVED_HERE = ("hub", "bundles", "taskhub")
PINNED_WHEN_PASSING_THROUGH = ("hub", "bundles")
_KIND_NAMES = {"task": "Task", "pipeline": "Pipeline", "stepaction": "StepAction"}

Json = dict[str, Any]


class PinningError(TaskhubError):
    """A run whose references cannot be resolved or pinned; the message names the reference."""


@dataclass(frozen=True)
class PinnedObject:
    """What one reference resolved to: the object, its exact identity, and the reference's pinned params."""

    object: Json
    kind: str
    name: str
    resolver: str  # "hub", "bundles", "taskhub" or "installed"
    version: str | None
    digest: str  # sha256 hex
    uri: str
    pinned_params: list[Json] = field(default_factory=list)  # empty for references by name


class ReferenceResolver(Protocol):
    """Resolves one Tekton reference to the object it names, pinned.

    `ref` is a `taskRef`, `pipelineRef` or step `ref` as written in a run: either `{"resolver": "hub" | "bundles" |
    "taskhub", "params": [{"name": ..., "value": ...}]}` or `{"name": ...}` for an installed object. `kind` is what the
    reference must name (Task, Pipeline or StepAction). Returns the object as stored (any tekton.dev version), its
    version and sha256 digest, where it came from, and the params that name exactly this object again (a bundle by
    `@sha256:` digest, a hub version without a range). Raises a TaskhubError when the reference cannot resolve.
    """

    def __call__(self, ref: Mapping[str, Any], kind: str) -> PinnedObject: ...


class InstalledObjects(Protocol):
    """Where a plain-name reference (`taskRef: {name: ...}`) is read: one namespace of the local store
    (runner.local_store.InstalledStore) or of the cluster a run goes to (runner.kube.ClusterObjects).

    `get` returns the object as stored, or None when there is none; `uri_of` says where a found object came from,
    for the lock; `description` names the place in messages ("team-a namespace of the local store").
    """

    namespace: str

    @property
    def description(self) -> str: ...

    def get(self, kind: str, name: str) -> dict[str, Any] | None: ...

    def uri_of(self, obj: dict[str, Any]) -> str: ...


@dataclass
class LockEntry:
    """One reference of a run and what it resolved to; a passed-through one has no version, digest or uri."""

    path: str
    resolver: str
    params: list[Json]
    kind: str
    name: str
    version: str | None
    digest: str
    uri: str
    object: Json = field(repr=False, compare=False, default_factory=dict)
    passed_through: bool = False

    def to_json(self) -> Json:
        entry = {
            "path": self.path,
            "resolver": self.resolver,
            "params": self.params,
            "kind": self.kind,
            "name": self.name,
            "version": self.version,
            "digest": f"sha256:{self.digest}" if self.digest else None,
            "uri": self.uri,
        }
        return {**entry, "passedThrough": True} if self.passed_through else entry


def param_values(ref: Mapping[str, Any]) -> dict[str, Any]:
    """A reference's `params` (Tekton's list of name/value pairs) as a mapping."""
    params = ref.get("params") or []
    if not isinstance(params, list) or not all(isinstance(p, dict) and "name" in p for p in params):
        raise PinningError("reference params must be a list of {name, value}")
    return {str(p["name"]): p.get("value") for p in params}


class CatalogReferenceResolver:
    """The real ReferenceResolver: `resolver: hub` from this hub's index, `resolver: bundles` from OCI registries,
    `resolver: taskhub` by whichever of the two its params are for (as `taskhub resolver serve` answers it), a
    plain name from where the run's installed objects are (the local store, or the cluster it goes to)."""

    def __init__(
        self, engine: Engine, bundles: BundleResolver, hub: HubResolver, store: InstalledObjects, base_url: str
    ) -> None:
        self.engine, self.bundles, self.hub, self.store, self.base_url = engine, bundles, hub, store, base_url

    def __call__(self, ref: Mapping[str, Any], kind: str) -> PinnedObject:
        resolver = ref.get("resolver")
        if not resolver:
            return self._installed(ref, kind)
        if resolver not in RESOLVED_HERE:
            raise PinningError(
                f'{kind} reference uses resolver "{resolver}", which only a cluster resolves: taskhub resolves '
                f"{', '.join(RESOLVED_HERE)}; pass it through to the cluster's resolvers instead"
            )
        params = param_values(ref)
        which = resolver_for(ref.get("params")) if resolver == "taskhub" else resolver
        if which == "hub":
            with Session(self.engine) as session:
                resolved = self.hub.resolve(CatalogIndex(session), params, self.base_url)
            pinned = {**params, "version": resolved.version}
        else:
            resolved = self.bundles.resolve(params)
            pinned = {**params, "bundle": f"{resolved.uri}@sha256:{resolved.digest}"}
        document = _document(resolved)
        return PinnedObject(
            object=document,
            kind=str(document.get("kind") or _KIND_NAMES.get(resolved.kind.lower(), resolved.kind)),
            name=resolved.name,
            resolver=str(resolver),
            version=resolved.version,
            digest=resolved.digest,
            uri=resolved.uri,
            pinned_params=[{"name": k, "value": v} for k, v in pinned.items()],
        )

    def _installed(self, ref: Mapping[str, Any], kind: str) -> PinnedObject:
        name = str(ref.get("name") or "")
        if not name:
            raise PinningError(f"{kind} reference has neither a resolver nor a name")
        obj = self.store.get(kind, name)
        if obj is None:
            raise PinningError(f'{kind.lower()} "{name}" not found in the {self.store.description}')
        labels = (obj.get("metadata") or {}).get("labels") or {}
        canonical = json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()
        return PinnedObject(
            object=obj,
            kind=kind,
            name=name,
            resolver="installed",
            version=labels.get("app.kubernetes.io/version"),
            digest=hashlib.sha256(canonical).hexdigest(),
            uri=self.store.uri_of(obj),
        )


def _document(resolved: Resolved) -> Json:
    try:
        documents = load_documents(decode_text(resolved.data))
    except ManifestError as exc:
        raise PinningError(f"{resolved.kind} {resolved.name} from {resolved.uri} is refused: {exc}") from None
    obj = documents[0] if len(documents) == 1 else None
    if not isinstance(obj, dict):
        raise PinningError(f"{resolved.kind} {resolved.name} from {resolved.uri} is not a Tekton object")
    return obj


def pin_run(obj: Json, resolve_ref: ReferenceResolver, *, pass_through: bool = False) -> tuple[Json, list[LockEntry]]:
    """The run with every Task and Pipeline reference inlined (StepAction refs pinned), and its lock;
    `pass_through`: what only a cluster resolves is left to it (see the module)."""
    return _Walk(resolve_ref, inline=True, pass_through=pass_through).run(obj)


def pin_references_only(
    obj: Json, resolve_ref: ReferenceResolver, *, pass_through: bool = False
) -> tuple[Json, list[LockEntry]]:
    """The run with its references kept but pinned: bundles by `@sha256:` digest, hub versions exact."""
    return _Walk(resolve_ref, inline=False, pass_through=pass_through).run(obj)


def step_action_resolver(
    lock: list[LockEntry], fallback: Callable[[dict[str, Any], str], dict[str, Any]]
) -> Callable[[dict[str, Any], str], dict[str, Any]]:
    """An executor `resolve(ref, kind)` that answers pinned StepAction refs with the locked content."""
    actions = [e for e in lock if e.kind == "StepAction" and not e.passed_through]
    pinned = {_ref_key(e.resolver, e.params, e.name): e.object for e in actions}

    def resolve(ref: dict[str, Any], kind: str) -> dict[str, Any]:
        if kind == "StepAction":
            resolver = str(ref.get("resolver") or "installed")
            params = ref.get("params") or []
            found = pinned.get(_ref_key(resolver, params, "" if ref.get("resolver") else str(ref.get("name"))))
            if found is not None:
                return copy.deepcopy(found)
        return fallback(ref, kind)

    return resolve


def _ref_key(resolver: str, params: list[Json], name: str) -> str:
    return json.dumps([resolver, name if resolver == "installed" else "", params], sort_keys=True)


class _Walk:
    def __init__(self, resolve_ref: ReferenceResolver, *, inline: bool, pass_through: bool) -> None:
        self.resolve_ref, self.inline, self.pass_through = resolve_ref, inline, pass_through
        self.lock: list[LockEntry] = []

    def run(self, obj: Json) -> tuple[Json, list[LockEntry]]:
        if not isinstance(obj, dict) or obj.get("kind") not in ("TaskRun", "PipelineRun"):
            raise PinningError("not a run: expected a tekton.dev TaskRun or PipelineRun")
        run = convert(obj, "v1") if api_version_of(obj) not in ("v1", "") else copy.deepcopy(obj)
        if api_version_of(run) != "v1":
            raise PinningError(f"{run['kind']} has apiVersion {run.get('apiVersion')!r}: expected tekton.dev/v1")
        spec = run.get("spec")
        if not isinstance(spec, dict):
            raise PinningError(f"{run['kind']} has no spec")
        if run["kind"] == "PipelineRun":
            self._owner(spec, "pipelineRef", "pipelineSpec", "Pipeline", "spec", self._pipeline_spec)
        else:
            self._owner(spec, "taskRef", "taskSpec", "Task", "spec", self._task_spec)
        annotations = run.setdefault("metadata", {}).setdefault("annotations", {})
        annotations[LOCK_ANNOTATION] = json.dumps([e.to_json() for e in self.lock], separators=(",", ":"))
        return run, self.lock

    def _owner(
        self, holder: Json, ref_key: str, spec_key: str, kind: str, where: str, walk_spec: Callable[[Json, str], None]
    ) -> None:
        """Pins holder[ref_key] (inlining it as holder[spec_key]) or walks the inline holder[spec_key]."""
        ref = holder.get(ref_key)
        if isinstance(ref, dict) and ref.get("apiVersion"):
            return  # a custom task: not Tekton's to resolve
        if isinstance(ref, dict) and self._passed_through(ref, kind, f"{where}.{ref_key}"):
            return
        if isinstance(ref, dict):
            pinned = self._pin(ref, kind, f"{where}.{ref_key}")
            if self.inline:
                del holder[ref_key]
                holder[spec_key] = _spec_of(pinned, kind)
                walk_spec(holder[spec_key], f"{where}.{spec_key}")
        elif isinstance(holder.get(spec_key), dict):
            walk_spec(holder[spec_key], f"{where}.{spec_key}")

    def _pipeline_spec(self, spec: Json, where: str) -> None:
        for section in ("tasks", "finally"):
            for task in spec.get(section) or []:
                if isinstance(task, dict):
                    at = f"{where}.{section}[{task.get('name', '')}]"
                    self._owner(task, "taskRef", "taskSpec", "Task", at, self._task_spec)

    def _task_spec(self, spec: Json, where: str) -> None:
        for index, step in enumerate(spec.get("steps") or []):
            if isinstance(step, dict) and isinstance(step.get("ref"), dict):
                path = f"{where}.steps[{step.get('name') or index}].ref"
                if not self._passed_through(step["ref"], "StepAction", path):
                    self._pin(step["ref"], "StepAction", path)

    def _passed_through(self, ref: Json, kind: str, path: str) -> bool:
        """Whether `ref` is left to the cluster's resolvers as it is (then it is in the lock, unpinned)."""
        resolver = ref.get("resolver")
        if not self.pass_through or not resolver or resolver in PINNED_WHEN_PASSING_THROUGH:
            return False
        given = ref.get("params")
        params: list[Json] = [p for p in given if isinstance(p, dict)] if isinstance(given, list) else []
        named = next((p.get("value") for p in params if p.get("name") == "name"), "")
        self.lock.append(
            LockEntry(path=path, resolver=str(resolver), params=copy.deepcopy(params), kind=kind,
                      name=str(named or ""), version=None, digest="", uri="", passed_through=True)
        )  # fmt: skip
        return True

    def _pin(self, ref: Json, kind: str, path: str) -> PinnedObject:
        try:
            pinned = self.resolve_ref(ref, kind)
        except TaskhubError as exc:
            raise PinningError(f"{path}: {exc}") from None
        if pinned.kind != kind:
            raise PinningError(f"{path}: expected a {kind}, the reference names a {pinned.kind}")
        if pinned.pinned_params:
            ref["params"] = pinned.pinned_params
        self.lock.append(
            LockEntry(
                path=path,
                resolver=pinned.resolver,
                params=copy.deepcopy(ref.get("params") or []),
                kind=pinned.kind,
                name=pinned.name,
                version=pinned.version,
                digest=pinned.digest,
                uri=pinned.uri,
                object=pinned.object,
            )
        )
        return pinned


def _spec_of(pinned: PinnedObject, kind: str) -> Json:
    obj = pinned.object
    if kind in ("Task", "Pipeline") and api_version_of(obj) != "v1":
        obj = convert(obj, "v1")
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        raise PinningError(f"{kind} {pinned.name} from {pinned.uri} has no spec")
    return copy.deepcopy(spec)
