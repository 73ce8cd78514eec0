"""Triggers in a cluster (`taskhub triggers serve`): the Triggers resources and the Secrets interceptors read come
from the Kubernetes API (the Triggers CRDs, triggers.tekton.dev), and what templates render is created there, any
kind the credentials may create, as upstream's sink creates it (tektoncd/triggers: pkg/resources/create.go).

Resources are read when an event needs them, not cached: a change applied with kubectl is seen by the next event.
Unlike upstream, a Trigger's serviceAccountName is not impersonated: objects are created with the kubeconfig's
credentials.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeVar

from kubernetes import client

from runner.kube import Cluster, ClusterError
from triggers.processing import Created
from triggers.templates import RenderedResource

T = TypeVar("T")
GROUP = "triggers.tekton.dev"
# kind -> (version read, plural, namespaced): the storage versions of tektoncd/triggers: config/300-*.yaml.
KINDS: dict[str, tuple[str, str, bool]] = {
    "EventListener": ("v1beta1", "eventlisteners", True),
    "Trigger": ("v1beta1", "triggers", True),
    "TriggerBinding": ("v1beta1", "triggerbindings", True),
    "ClusterTriggerBinding": ("v1beta1", "clustertriggerbindings", False),
    "TriggerTemplate": ("v1beta1", "triggertemplates", True),
    "Interceptor": ("v1alpha1", "interceptors", True),
    "ClusterInterceptor": ("v1alpha1", "clusterinterceptors", False),
}


class ClusterTriggers:
    """The Triggers resources and Secrets of a cluster (triggers.ports.TriggersStore and SecretStore). `scope` is
    the namespace whose EventListeners are served, None for every namespace; the resources their triggers refer
    to are read wherever they are."""

    def __init__(self, api: client.ApiClient, scope: str | None) -> None:
        self.cluster = Cluster(api, scope or "default")
        self.scope = scope
        self.objects = client.CustomObjectsApi(api)
        self.core = client.CoreV1Api(api)

    def get(self, kind: str, namespace: str | None, name: str) -> dict[str, Any] | None:
        version, plural, namespaced = KINDS[kind]
        if kind == "EventListener" and self.scope is not None and namespace != self.scope:
            return None  # not served here
        if namespaced:
            where = f" in {namespace or 'default'} namespace"
            read: tuple[Any, ...] = (self.objects.get_namespaced_custom_object, GROUP, version, namespace or "default")
        else:
            where, read = "", (self.objects.get_cluster_custom_object, GROUP, version)
        return _absent_as_none(lambda: _object(self.cluster.call(f"get {kind} {name}{where}", *read, plural, name)))

    def list(self, kind: str, namespace: str | None) -> Iterable[Mapping[str, Any]]:
        version, plural, namespaced = KINDS[kind]
        if namespaced and namespace is not None:
            listing = self.cluster.call(
                f"list {kind}s in {namespace} namespace", self.objects.list_namespaced_custom_object,
                GROUP, version, namespace, plural,
            )  # fmt: skip
        else:
            listing = self.cluster.call(
                f"list {kind}s", self.objects.list_cluster_custom_object, GROUP, version, plural
            )
        return list(_object(listing).get("items") or [])

    def secret_data(self, namespace: str, name: str) -> dict[str, bytes] | None:
        what = f"read Secret {name} in {namespace} namespace"
        secret = _absent_as_none(lambda: self.cluster.call(what, self.core.read_namespaced_secret, name, namespace))
        if secret is None:
            return None
        try:
            return {key: base64.b64decode(value) for key, value in (secret.data or {}).items()}
        except (binascii.Error, ValueError) as exc:
            raise ClusterError(f"Secret {name} in {namespace} namespace: data that is not base64: {exc}") from None


def _absent_as_none(read: Callable[[], T]) -> T | None:
    """What `read` returns; None when the API server says the object does not exist (404)."""
    try:
        return read()
    except ClusterError as exc:
        if exc.status == 404:
            return None
        raise


class ClusterCreator:
    """Creates what templates render in the cluster (triggers.processing.ResourceCreator): any kind the API server
    serves, found by discovery as upstream finds it, namespaced or not."""

    def __init__(self, api: client.ApiClient) -> None:
        self.api = api
        self.cluster = Cluster(api, "default")
        self._resources: dict[str, dict[str, tuple[str, bool]]] = {}  # apiVersion -> kind -> (plural, namespaced)

    def create(self, resource: RenderedResource, manifest: dict[str, Any], *, created_by: str) -> Created:
        plural, namespaced = self._resource(resource.api_version, resource.kind)
        meta = dict(manifest.get("metadata") or {})
        if namespaced:
            meta["namespace"] = resource.namespace
        else:
            meta.pop("namespace", None)
        body = {**manifest, "metadata": meta}
        where = f"/namespaces/{resource.namespace}/{plural}" if namespaced else f"/{plural}"
        what = f"create {resource.kind} {meta.get('name')}" + (
            f" in {resource.namespace} namespace" if namespaced else ""
        )
        stored = _object(self._call(what, "POST", _base(resource.api_version) + where, body)).get("metadata") or {}
        return Created(resource.kind, str(stored.get("namespace") or ""), str(stored.get("name") or meta.get("name")))

    def _resource(self, api_version: str, kind: str) -> tuple[str, bool]:
        if api_version not in self._resources:
            listing = _absent_as_none(lambda: self._call(f"discover {api_version}", "GET", _base(api_version)))
            if listing is None:
                raise ClusterError(f"the cluster does not serve {api_version}")
            resources = _object(listing).get("resources") or []
            self._resources[api_version] = {
                str(r["kind"]): (str(r["name"]), bool(r.get("namespaced"))) for r in resources if "/" not in r["name"]
            }
        found = self._resources[api_version].get(kind)
        if found is None:
            raise ClusterError(f"the cluster does not serve {kind} in {api_version}")
        return found

    def _call(self, what: str, method: str, path: str, body: dict[str, Any] | None = None) -> object:
        return self.cluster.call(what, self._request, method, path, body)

    def _request(self, method: str, path: str, body: dict[str, Any] | None, _request_timeout: Any) -> object:
        """One request to any path of the API (the generated clients know only their own kinds), its JSON answer;
        ApiException for an error status, as theirs."""
        headers = {"Accept": "application/json", "Content-Type": "application/json"}
        request = self.api.param_serialize(
            method, path, header_params=headers, body=body, auth_settings=["BearerToken"]
        )
        response = self.api.call_api(*request, _request_timeout=_request_timeout)
        response.read()
        return self.api.response_deserialize(response, {"200": "object", "201": "object"}).data


def _base(api_version: str) -> str:
    """The API path of a group version: the core group's is /api/v1."""
    return "/api/v1" if api_version == "v1" else f"/apis/{api_version}"


def _object(value: object) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ClusterError(f"the Kubernetes API server answered with a {type(value).__name__}, not an object")
    return value
