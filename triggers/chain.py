"""Running a trigger's (or a trigger group's) interceptor chain (tektoncd/triggers: pkg/sink/sink.go
ExecuteInterceptors, pkg/interceptors/interceptors.go, pkg/interceptors/webhook/webhook.go).

Core interceptors (cel, github, gitlab, bitbucket, slack) run in-process; Interceptor and ClusterInterceptor
resources and legacy webhooks are called over the InterceptorHTTP port with the InterceptorRequest protocol.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote_plus, urlsplit

from triggers.admission import parse_resource
from triggers.fielderrors import InvalidResource
from triggers.gojson import marshal
from triggers.headers import Headers, canonical_headers, first_value
from triggers.interceptors import CODES, InterceptorRequest, InterceptorResponse, RequestContext
from triggers.interceptors.cel import cel
from triggers.interceptors.common import CoreServices
from triggers.interceptors.github import github
from triggers.interceptors.scm import bitbucket, gitlab, slack
from triggers.jsonbody import BodyError, decode
from triggers.ports import InterceptorHTTP, InterceptorTransportError, TriggersStore
from triggers.resources import NAMESPACED_INTERCEPTOR, Interceptor, TriggerInterceptor

CORE: dict[str, Callable[[InterceptorRequest, CoreServices], InterceptorResponse]] = {
    "cel": cel, "github": github, "gitlab": gitlab, "bitbucket": bitbucket, "slack": slack,
}  # fmt: skip
CORE_SERVICE_HOST = "tekton-triggers-core-interceptors."
FORM = "application/x-www-form-urlencoded"
_CODE_NAMES = {re.sub(r"(?<=[a-z])(?=[A-Z])", "_", name).upper(): code for code, name in CODES.items()}


@dataclass
class ChainResult:
    """The event after a chain: body and headers (changed only by legacy webhooks or the form conversion),
    merged extensions, and who stopped it: `stopped_by` names the entry, `failed` tells an error from a
    `continue: false`."""

    body: bytes
    headers: Headers
    extensions: dict[str, Any] = field(default_factory=dict)
    stopped_by: str = ""
    reason: str = ""
    failed: bool = False


@dataclass(frozen=True)
class ChainServices:
    store: TriggersStore
    core: CoreServices
    http: InterceptorHTTP | None


class _ChainError(Exception):
    pass


def form_as_json(body: bytes) -> bytes | None:
    """A form body with more than one key as the JSON `{"key": ["v", ...]}` the sink makes of it (Go's
    url.ParseQuery: pairs with a `;` are dropped), or None when it keeps its bytes."""
    form: dict[str, list[str]] = {}
    for pair in body.decode("utf-8", "replace").split("&"):
        if not pair or ";" in pair:
            continue
        key, _, value = pair.partition("=")
        form.setdefault(unquote_plus(key), []).append(unquote_plus(value))
    return marshal(form).encode() if len(form) > 1 else None


def run_chain(
    interceptors: Sequence[TriggerInterceptor],
    *,
    body: bytes,
    headers: Headers,
    extensions: Mapping[str, Any],
    context: RequestContext,
    listener_namespace: str,
    services: ChainServices,
) -> ChainResult:
    """Run each interceptor in order, stopping at the first that does not continue."""
    result = ChainResult(body, {k: list(v) for k, v in headers.items()}, dict(extensions))
    if not interceptors:
        return result
    starts_with_webhook = interceptors[0].webhook is not None
    if first_value(headers, "Content-Type") == FORM and (not starts_with_webhook or extensions):
        converted = form_as_json(body)
        if converted is not None:
            result.body = converted
    for entry in interceptors:
        try:
            if entry.webhook is not None:
                _call_webhook(entry, result, context, services)
                continue
            response = _call(entry, result, context, listener_namespace, services)
        except _ChainError as exc:
            result.stopped_by, result.reason, result.failed = entry.label, str(exc), True
            return result
        if not response.continue_:
            result.stopped_by, result.reason = entry.label, response.stop_reason()
            return result
        result.extensions.update(response.extensions)
    return result


def _call(
    entry: TriggerInterceptor, state: ChainResult, context: RequestContext, listener_ns: str, services: ChainServices
) -> InterceptorResponse:
    assert entry.ref is not None
    request = InterceptorRequest(
        body=state.body.decode("utf-8", "replace"),
        header=state.headers,
        extensions=dict(state.extensions),
        interceptor_params=entry.param_map(),
        context=context,
    )
    name = entry.ref.name
    namespaced = entry.ref.kind == NAMESPACED_INTERCEPTOR
    kind = "Interceptor" if namespaced else "ClusterInterceptor"
    manifest = services.store.get(kind, listener_ns if namespaced else None, name)
    if manifest is None:
        if not namespaced and name in CORE:
            return CORE[name](request, services.core)
        plural = "interceptors" if namespaced else "clusterinterceptors"
        raise _ChainError(
            f'url resolution failed for interceptor {name} with: {plural}.triggers.tekton.dev "{name}" not found'
        )
    try:
        resource = parse_resource(manifest, namespace=listener_ns)
    except InvalidResource as exc:
        raise _ChainError(f"url resolution failed for interceptor {name} with: {exc}") from None
    assert isinstance(resource, Interceptor)
    parts = urlsplit(resource.url)
    core_name = parts.path.strip("/").lower()
    if parts.hostname and (parts.hostname + ".").startswith(CORE_SERVICE_HOST) and core_name in CORE:
        return CORE[core_name](request, services.core)
    return _post_interceptor(resource.url, request, services.http)


def _post_interceptor(url: str, request: InterceptorRequest, http: InterceptorHTTP | None) -> InterceptorResponse:
    if http is None:
        raise _ChainError(f"interceptor at {url}: calls to custom interceptors are not enabled on this hub")
    try:
        reply = http.send("POST", url, {"Content-Type": "application/json"}, request.to_json())
    except InterceptorTransportError as exc:
        raise _ChainError(f'Post "{url}": {exc}') from None
    if reply.status != 200:
        raise _ChainError(f"interceptor response was not 200: {reply.body.decode('utf-8', 'replace')[:1000]}")
    return parse_response(reply.body)


def parse_response(data: bytes) -> InterceptorResponse:
    """An InterceptorResponse as the sink decodes it: `continue` missing is false; `status.code` a number
    below 17 or an upper-snake gRPC name."""
    try:
        document = decode(data)
        if not isinstance(document, dict):
            raise BodyError("json: cannot unmarshal into Go value of type v1beta1.InterceptorResponse")
    except BodyError as exc:
        raise _ChainError(f"failed to decode response from interceptor: {exc}") from None
    extensions = document.get("extensions") or {}
    status = document.get("status") or {}
    if not isinstance(extensions, dict) or not isinstance(status, dict):
        raise _ChainError("failed to decode response from interceptor: extensions and status must be objects")
    code = status.get("code", 0)
    if isinstance(code, str) and code in _CODE_NAMES:
        code = _CODE_NAMES[code]
    if not isinstance(code, float | int) or isinstance(code, bool) or not 0 <= code < 17 or code != int(code):
        raise _ChainError(f"failed to decode response from interceptor: invalid code {json.dumps(code)}")
    return InterceptorResponse(document.get("continue") is True, extensions, int(code), str(status.get("message", "")))


def _call_webhook(
    entry: TriggerInterceptor, state: ChainResult, context: RequestContext, services: ChainServices
) -> None:
    """The legacy webhook interceptor: its 200 answer replaces the body and headers."""
    hook = entry.webhook
    assert hook is not None
    namespace = hook.service_namespace or context.namespace
    url = hook.url or f"http://{hook.service_name}.{namespace}.svc/"
    body = state.body
    if state.extensions:
        try:
            document = decode(body) if body else {}
        except BodyError as exc:
            raise _ChainError(f"failed to merge extensions into the body: {exc}") from None
        if not isinstance(document, dict):
            document = {}
        body = marshal({**document, "extensions": state.extensions}).encode()
    headers = {k: list(v) for k, v in state.headers.items()}
    for name, value in hook.headers:
        headers[name] = list(value) if isinstance(value, tuple) else [value]
    headers["Eventlistener-Request-Url"] = [context.event_url]
    if services.http is None:
        raise _ChainError(f"webhook at {url}: calls to custom interceptors are not enabled on this hub")
    flat = {name: ", ".join(values) for name, values in headers.items()}
    try:
        reply = services.http.send("POST", url, flat, body)
    except InterceptorTransportError as exc:
        raise _ChainError(f'Post "{url}": {exc}') from None
    if reply.status != 200:
        raise _ChainError(f"request rejected; status: {reply.status}")
    state.body = reply.body
    state.headers = canonical_headers(list(reply.headers.items()))
