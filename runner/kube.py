"""A Kubernetes cluster reached through a kubeconfig, as `kubectl` and `tkn` reach it: the tekton.dev versions it
serves, its Tekton Pipelines version, and the Tekton objects of one namespace. Every failure (no kubeconfig, an
unknown context, an unreachable server, 401, 403) is a ClusterError with a one-line message.
"""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import urllib3
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException
from kubernetes.config.config_exception import ConfigException
from kubernetes.watch.watch import iter_resp_lines

from catalog.errors import TaskhubError

GROUP = "tekton.dev"
PIPELINES_NAMESPACES = ("tekton-pipelines", "openshift-pipelines")
# (connect, read) seconds: a cluster that does not answer is an error quickly, not a hang.
REQUEST_TIMEOUT = (5, 30)
T = TypeVar("T")
SERVICE_ACCOUNT_NAMESPACE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")


class ClusterError(TaskhubError):
    """The cluster could not be reached or refused a request; the message says which and why. `status` is the
    API server's HTTP status, None when it was not reached."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


def default_kubeconfig() -> Path:
    """$KUBECONFIG (its first entry) or ~/.kube/config, as kubectl reads it."""
    env = os.environ.get("KUBECONFIG", "")
    first = next((p for p in env.split(os.pathsep) if p), "")
    return Path(first).expanduser() if first else Path.home() / ".kube" / "config"


def api_client_from_kubeconfig(kubeconfig: str | Path | None, context: str | None) -> tuple[client.ApiClient, str]:
    """An ApiClient for `context` (default: the current one) of `kubeconfig`; and that context's namespace.

    In a pod, with no kubeconfig given or found, the pod's ServiceAccount: its token, the cluster's CA and its
    namespace, as kubectl and client-go read them (kubernetes/client-go: rest/config.go, InClusterConfig)."""
    if _in_a_pod(kubeconfig, context):
        return _in_cluster()
    path, chosen = _kube_context(kubeconfig, context)
    try:
        cfg = client.Configuration()
        config.load_kube_config(
            config_file=str(path), context=chosen["name"], client_configuration=cfg, persist_config=False
        )
    except (ConfigException, ValueError, TypeError, KeyError, OSError) as exc:
        raise ClusterError(f"cannot use kubeconfig {path}: {exc}") from None
    cfg.retries = 0  # urllib3 would retry a refused connection three times; one clear error is better
    return client.ApiClient(cfg), _namespace_of(chosen)


def context_namespace(kubeconfig: str | Path | None, context: str | None) -> str:
    """The namespace of `context` (default: the current one) of `kubeconfig`, else "default", as kubectl and tkn
    take it when -n is absent (in a pod without a kubeconfig: its ServiceAccount's); read without reaching the
    cluster."""
    if _in_a_pod(kubeconfig, context):
        return _service_account_namespace()
    return _namespace_of(_kube_context(kubeconfig, context)[1])


def _in_a_pod(kubeconfig: str | Path | None, context: str | None) -> bool:
    path = Path(kubeconfig).expanduser() if kubeconfig else default_kubeconfig()
    return not kubeconfig and not path.is_file() and context is None and bool(os.environ.get("KUBERNETES_SERVICE_HOST"))


def _kube_context(kubeconfig: str | Path | None, context: str | None) -> tuple[Path, dict[str, Any]]:
    path = Path(kubeconfig).expanduser() if kubeconfig else default_kubeconfig()
    if not path.is_file():
        raise ClusterError(f"kubeconfig {path} not found: pass -k/--kubeconfig or set KUBECONFIG")
    try:
        contexts, current = config.list_kube_config_contexts(config_file=str(path))
    except (ConfigException, ValueError, TypeError, KeyError, OSError) as exc:
        raise ClusterError(f"cannot use kubeconfig {path}: {exc}") from None
    chosen = current if context is None else next((c for c in contexts if c.get("name") == context), None)
    if chosen is None:
        names = ", ".join(str(c.get("name")) for c in contexts)
        raise ClusterError(f"context {context!r} not found in {path} (it has: {names})")
    return path, dict(chosen)


def _namespace_of(context: dict[str, Any]) -> str:
    return str((context.get("context") or {}).get("namespace") or "default")


def _in_cluster() -> tuple[client.ApiClient, str]:
    cfg = client.Configuration()
    try:
        config.load_incluster_config(client_configuration=cfg)
    except ConfigException as exc:
        raise ClusterError(f"cannot use this pod's ServiceAccount: {exc}") from None
    cfg.retries = 0
    return client.ApiClient(cfg), _service_account_namespace()


def _service_account_namespace() -> str:
    try:
        return SERVICE_ACCOUNT_NAMESPACE.read_text().strip() or "default"
    except OSError:
        return "default"


class Cluster:
    """One namespace of a cluster; talks to the API server through the official client."""

    checks_pipelines_version = True

    def __init__(self, api: client.ApiClient, namespace: str) -> None:
        self.api = api
        self.namespace = namespace
        self.server = str(api.configuration.host)
        self.description = f"{namespace} namespace"
        self._resources: dict[str, dict[str, str]] | None = None  # kind -> {version: plural}

    @classmethod
    def from_kubeconfig(
        cls, kubeconfig: str | Path | None = None, context: str | None = None, namespace: str | None = None
    ) -> Cluster:
        """The cluster of a kubeconfig context, in `namespace` or else the context's namespace or "default"."""
        api, context_namespace = api_client_from_kubeconfig(kubeconfig, context)
        return cls(api, namespace or context_namespace)

    def close(self) -> None:
        """Release the connection pool."""
        self.api.close()

    # -- errors -------------------------------------------------------------------------------------------

    def call(self, what: str, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run one API call; turn transport and HTTP failures into a ClusterError saying `what` failed."""
        try:
            return fn(*args, _request_timeout=REQUEST_TIMEOUT, **kwargs)
        except ApiException as exc:
            raise self._api_error(what, exc) from None
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise ClusterError(f"cannot reach the Kubernetes API server at {self.server}: {_reason(exc)}") from None

    def _api_error(self, what: str, exc: ApiException) -> ClusterError:
        message = _status_message(exc)
        if exc.status == 401:
            return ClusterError(
                f"the Kubernetes API server at {self.server} refused the credentials (401 Unauthorized) "
                f"while trying to {what}: check the kubeconfig's user",
                401,
            )
        if exc.status == 403:
            return ClusterError(f"not allowed to {what} (403 Forbidden): {message}", 403)
        return ClusterError(f"could not {what}: {exc.status} {exc.reason}: {message}", exc.status)

    # -- discovery ----------------------------------------------------------------------------------------

    def _discover(self) -> dict[str, dict[str, str]]:
        if self._resources is None:
            groups = self.call("discover API groups", client.ApisApi(self.api).get_api_versions)
            group = next((g for g in groups.groups or [] if g.name == GROUP), None)
            if group is None:
                raise ClusterError(
                    f"the cluster at {self.server} does not serve {GROUP}: is Tekton Pipelines installed?"
                )
            # The preferred version first, so it wins when a kind is served in several.
            versions = [group.preferred_version.version] if group.preferred_version else []
            versions += [v.version for v in group.versions if v.version not in versions]
            found: dict[str, dict[str, str]] = {}
            objects = client.CustomObjectsApi(self.api)
            for version in versions:
                listing = self.call(f"discover {GROUP}/{version}", objects.get_api_resources, GROUP, version)
                for resource in listing.resources or []:
                    if "/" not in resource.name:  # skip subresources such as tasks/status
                        found.setdefault(resource.kind, {})[version] = resource.name
            self._resources = found
        return self._resources

    def served_versions(self, kind: str) -> list[str]:
        """The tekton.dev versions the cluster serves `kind` in, preferred first; [] when it does not."""
        return list(self._discover().get(kind, {}))

    def _plural(self, kind: str, version: str) -> str:
        plural = self._discover().get(kind, {}).get(version)
        if plural is None:
            raise ClusterError(f"the cluster at {self.server} does not serve {kind} in {GROUP}/{version}")
        return plural

    def pipelines_version(self) -> str | None:
        """The Tekton Pipelines version from the pipelines-info ConfigMap; None when it cannot be read."""
        core = client.CoreV1Api(self.api)
        for namespace in PIPELINES_NAMESPACES:
            try:
                config_map = core.read_namespaced_config_map(
                    "pipelines-info", namespace, _request_timeout=REQUEST_TIMEOUT
                )
            except ApiException as exc:
                if exc.status in (403, 404):
                    continue  # not there, or not ours to read: the version is unknown, as for tkn
                raise self._api_error("read the pipelines-info ConfigMap", exc) from None
            except (urllib3.exceptions.HTTPError, OSError) as exc:
                raise ClusterError(f"cannot reach the Kubernetes API server at {self.server}: {_reason(exc)}") from None
            version = (config_map.data or {}).get("version")
            if version:
                return str(version)
        return None

    # -- objects ------------------------------------------------------------------------------------------

    def get(self, kind: str, name: str) -> dict[str, Any] | None:
        """The `kind` object `name` in the namespace, in the first version it is served in; None if absent."""
        version = self._version(kind)
        objects = client.CustomObjectsApi(self.api)
        try:
            found = objects.get_namespaced_custom_object(
                GROUP, version, self.namespace, self._plural(kind, version), name, _request_timeout=REQUEST_TIMEOUT
            )
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise self._api_error(f"get {kind} {name} in {self.namespace} namespace", exc) from None
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise ClusterError(f"cannot reach the Kubernetes API server at {self.server}: {_reason(exc)}") from None
        return _as_dict(found)

    def list(self, kind: str) -> list[dict[str, Any]]:
        """Every `kind` object in the namespace."""
        version = self._version(kind)
        objects = client.CustomObjectsApi(self.api)
        listing = self.call(
            f"list {kind}s in {self.namespace} namespace",
            objects.list_namespaced_custom_object,
            GROUP,
            version,
            self.namespace,
            self._plural(kind, version),
        )
        return [_as_dict(item) for item in _as_dict(listing).get("items") or []]

    def create(self, obj: dict[str, Any]) -> dict[str, Any]:
        """Create `obj` (a tekton.dev object) in the namespace; returns what the server stored."""
        kind, version, name = _identity(obj)
        return _as_dict(
            self.call(
                f"create {kind} {name} in {self.namespace} namespace",
                client.CustomObjectsApi(self.api).create_namespaced_custom_object,
                GROUP,
                version,
                self.namespace,
                self._plural(kind, version),
                obj,
            )
        )

    def replace(self, obj: dict[str, Any]) -> dict[str, Any]:
        """Replace the stored object with `obj` (which carries the resourceVersion it was read at)."""
        kind, version, name = _identity(obj)
        return _as_dict(
            self.call(
                f"update {kind} {name} in {self.namespace} namespace",
                client.CustomObjectsApi(self.api).replace_namespaced_custom_object,
                GROUP,
                version,
                self.namespace,
                self._plural(kind, version),
                name,
                obj,
            )
        )

    def _version(self, kind: str) -> str:
        versions = self.served_versions(kind)
        if not versions:
            raise ClusterError(f"the cluster at {self.server} does not serve {kind} ({GROUP}): is the CRD installed?")
        return versions[0]


class ClusterObjects:
    """The Tasks, Pipelines and StepActions of one namespace of a cluster, as a run's plain-name references read
    them (runner.pinning.InstalledObjects). Connects at the first read, so that a wrong kubeconfig fails the run
    that needs it, not whoever prepares it; the connections go with the object."""

    def __init__(self, kubeconfig: str | Path | None, context: str | None, namespace: str) -> None:
        self.kubeconfig, self.context, self.namespace = kubeconfig, context, namespace
        self._cluster: Cluster | None = None

    @property
    def description(self) -> str:
        where = f" of the cluster at {self._cluster.server}" if self._cluster is not None else ""
        return f"{self.namespace} namespace{where}"

    def get(self, kind: str, name: str) -> dict[str, Any] | None:
        """The object as the cluster serves it in its preferred version, or None."""
        if self._cluster is None:
            self._cluster = Cluster.from_kubeconfig(self.kubeconfig, self.context, self.namespace)
        return self._cluster.get(kind, name)

    def uri_of(self, obj: dict[str, Any]) -> str:
        """The identifier Tekton's cluster resolver gives an object, `/apis/<group>/<version>/namespaces/<namespace>/
        <kind>/<name>@<uid>` (tektoncd/pipeline: pkg/resolution/resolver/cluster/resolver.go)."""
        meta = obj.get("metadata") or {}
        where = f"/apis/{obj.get('apiVersion')}/namespaces/{meta.get('namespace') or self.namespace}"
        return f"{where}/{str(obj.get('kind')).lower()}/{meta.get('name')}@{meta.get('uid')}"


def _as_dict(value: object) -> dict[str, Any]:
    """A custom-object answer, which the client types as `object`; it is always a JSON object."""
    if not isinstance(value, dict):
        raise ClusterError(f"the Kubernetes API server answered with a {type(value).__name__}, not an object")
    return value


def _identity(obj: dict[str, Any]) -> tuple[str, str, str]:
    return str(obj["kind"]), str(obj["apiVersion"]).partition("/")[2], str(obj["metadata"]["name"])


def api_error_line(exc: ApiException) -> str:
    """An API error in one line: status, reason and the message of the Status body (the client's own str() spans
    lines: headers and body)."""
    message = " ".join(_status_message(exc).split())
    head = f"{exc.status} {exc.reason or ''}".strip()
    return f"{head}: {message}" if message and message != exc.reason else head


def _status_message(exc: ApiException) -> str:
    """The `message` of the Status body the API server sends with errors, else the raw reason."""
    try:
        body = json.loads(exc.body or "")
    except (ValueError, TypeError):
        return str(exc.reason or "")
    return str(body.get("message") or exc.reason or "") if isinstance(body, dict) else str(exc.reason or "")


def _reason(exc: BaseException) -> str:
    """The innermost cause of a transport error, which is what a person can act on (refused, timed out, TLS)."""
    inner: BaseException = exc
    while True:
        nxt = getattr(inner, "reason", None)
        if isinstance(nxt, BaseException) and nxt is not inner:
            inner = nxt
            continue
        break
    text = str(inner)
    if "Connection refused" in text or isinstance(inner, ConnectionRefusedError):
        return "connection refused"
    if "timed out" in text.lower():
        return "timed out"
    if "CERTIFICATE_VERIFY_FAILED" in text:
        return "the server's TLS certificate is not trusted by the kubeconfig's certificate-authority"
    return text.split("] ")[-1] if "] " in text else text


def watch_events(response: Any) -> Iterator[tuple[str, dict[str, Any]]]:
    """(type, object) of each event a watch response carries, ERROR and BOOKMARK events included."""
    for line in iter_resp_lines(response):
        if line:
            event = json.loads(line)
            yield str(event.get("type")), event.get("object") or {}


def shut_socket(response: Any) -> None:
    """Wake a thread blocked reading a streaming response: close() alone does not interrupt a blocked recv(). Only
    the socket is shut, so this is safe in a signal handler on the reading thread; the reader closes the response."""
    sock = getattr(getattr(response, "connection", None), "sock", None)
    try:
        if sock is not None:
            sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
