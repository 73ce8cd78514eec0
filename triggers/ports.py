"""What the Triggers engine needs from outside, as small Protocols the hub (or a cluster) implements.

The engine imports no database, web framework or Kubernetes client: the resources an EventListener refers to,
the Secrets interceptors read and the HTTP calls to custom interceptors all come through these.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol


class TriggersStore(Protocol):
    """The Triggers resources the engine may look up, as manifests (decoded JSON objects, as applied).

    `kind` is one of Trigger, TriggerBinding, ClusterTriggerBinding, TriggerTemplate, Interceptor,
    ClusterInterceptor. `namespace` is None for the cluster-scoped kinds. The engine admits (defaults and
    validates) what it gets, so a manifest the store holds in its applied form is fine.
    """

    def get(self, kind: str, namespace: str | None, name: str) -> Mapping[str, Any] | None:
        """The manifest of one resource, or None when there is none."""
        ...

    def list(self, kind: str, namespace: str | None) -> Iterable[Mapping[str, Any]]:
        """Every manifest of a kind in a namespace; namespace None lists every namespace (and the cluster
        scope)."""
        ...


class SecretStore(Protocol):
    """Secrets interceptors read: `secretRef`, `personalAccessToken`, CEL `compareSecret`.

    Always asked in the Trigger's namespace (tektoncd/triggers: pkg/interceptors/secret_getter.go).
    """

    def secret_data(self, namespace: str, name: str) -> Mapping[str, bytes] | None:
        """The data of a Secret (key -> bytes), or None when the Secret does not exist."""
        ...


@dataclass(frozen=True)
class HTTPReply:
    """An answer to an interceptor call: status, headers (lower-case names) and body bytes."""

    status: int
    body: bytes
    headers: Mapping[str, str] = field(default_factory=dict)


class InterceptorTransportError(Exception):
    """An interceptor call that got no HTTP answer: refused address, connection error, timeout, redirect,
    oversized response. The message says which."""


class InterceptorHTTP(Protocol):
    """The HTTP client for custom interceptors, legacy webhooks and GitHub's API (addChangedFiles).

    The real one (triggers.http_client.RequestsInterceptorHTTP) refuses redirects, enforces a timeout and a
    response size cap, and reaches only the addresses its allow-check passes.
    """

    def send(self, method: str, url: str, headers: Mapping[str, str], body: bytes = b"") -> HTTPReply:
        """One request; InterceptorTransportError when no acceptable answer came."""
        ...
