"""The answer to one ResolutionRequest, whichever way it went: the resolved bytes as Tekton's resolvers write them
into the request's status, or the failure message Tekton's resolution framework would write
(tektoncd/pipeline: pkg/resolution/resolver/framework/reconciler.go). Nothing here speaks Kubernetes;
runner.cluster_resolver.requests does."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from catalog.errors import InvalidRequest, TaskhubError
from catalog.resolver import Resolved, resolver_for

# The names Tekton's own resolvers give themselves in messages (`error getting "Hub" ...`).
TEKTON_NAMES = {"bundles": "bundleresolver", "hub": "Hub"}
FAILED_REASON = "ResolutionFailed"


class ReferenceResolver(Protocol):
    """What answers a request: one of taskhub's resolvers, given the request's params.

    `resolver` is "bundles" or "hub" (see resolver_for). `params` is the request's `spec.params` as stored:
    Tekton's list of `{name, value}`. Returns the resolved resource, or raises a TaskhubError whose message is
    the resolver's own (Tekton's wording where Tekton has one). An InvalidRequest about the params
    (reason "invalid-params" or "invalid-payload") is what Tekton calls a validation error; anything else is a
    failure to resolve. Called from several threads at once.
    """

    def resolve(self, resolver: str, params: Any) -> Resolved: ...


def is_pending(obj: dict[str, Any]) -> bool:
    """Whether a request still waits for its answer: no data yet, and Succeeded absent or Unknown."""
    status = obj.get("status") or {}
    if status.get("data"):
        return False
    condition = next((c for c in status.get("conditions") or [] if c.get("type") == "Succeeded"), None)
    return condition is None or condition.get("status") not in ("True", "False")


@dataclass(frozen=True)
class Answer:
    """What a request was answered with: the resolved resource, or Tekton's failure message."""

    namespace: str
    name: str
    resolver: str
    resolved: Resolved | None = None
    message: str = ""

    @property
    def succeeded(self) -> bool:
        return self.resolved is not None

    def line(self) -> str:
        """One log line: the request, what it resolved to and the digest, or why it failed."""
        if self.resolved is None:
            return f"{self.namespace}/{self.name}: failed: {self.message}"
        r = self.resolved
        version = f" {r.version}" if r.version else ""
        return f"{self.namespace}/{self.name}: {r.resolver} {r.kind} {r.name}{version} from {r.uri} sha256:{r.digest}"

    def status(self, now: datetime) -> dict[str, Any]:
        """The status to merge into the request (tektoncd/pipeline:
        pkg/apis/resolution/v1beta1/resolution_request_types.go)."""
        stamp = now.strftime("%Y-%m-%dT%H:%M:%SZ")
        if self.resolved is None:
            condition = {"type": "Succeeded", "status": "False", "lastTransitionTime": stamp,
                         "reason": FAILED_REASON, "message": self.message}  # fmt: skip
            return {"conditions": [condition]}
        source = self.resolved.ref_source
        return {
            "annotations": self.resolved.annotations or None,
            "data": base64.b64encode(self.resolved.data).decode(),
            "source": source,
            "refSource": source,
            "conditions": [{"type": "Succeeded", "status": "True", "lastTransitionTime": stamp}],
        }


def answer_request(resolver: ReferenceResolver, request: dict[str, Any]) -> Answer:
    """Resolve one request's params; a failure becomes the message Tekton's framework would write."""
    meta = request.get("metadata") or {}
    namespace, name = str(meta.get("namespace") or ""), str(meta.get("name") or "")
    params = (request.get("spec") or {}).get("params") or []
    which = resolver_for(params)
    key = f"{namespace}/{name}"
    try:
        return Answer(namespace, name, which, resolved=resolver.resolve(which, params))
    except InvalidRequest as exc:
        if exc.reason not in ("invalid-params", "invalid-payload"):
            message = f'error getting "{TEKTON_NAMES[which]}" "{key}": {exc}'
        else:
            message = f'invalid resource request "{key}": {_validation_prefix(which, str(exc))}{exc}'
    except TaskhubError as exc:
        message = f'error getting "{TEKTON_NAMES[which]}" "{key}": {exc}'
    except Exception as exc:  # a bug must not leave the request waiting for the global timeout
        message = f'error getting "{TEKTON_NAMES[which]}" "{key}": {type(exc).__name__}: {exc}'
    return Answer(namespace, name, which, message=message)


def _validation_prefix(resolver: str, message: str) -> str:
    """Tekton's hub resolver prefixes its validation errors by the step that found them."""
    if resolver != "hub":
        return ""
    if message.startswith("failed to resolve catalog name"):
        return "failed to populate default params: "
    return "failed to validate params: "
