"""Reading a Triggers manifest as the admission webhook admits it: defaults applied, every rule checked.

Rules and defaults: tektoncd/triggers: pkg/apis/triggers/v1beta1/{event_listener,trigger,trigger_binding,
trigger_template}_{defaults,validation}.go, pkg/apis/triggers/v1alpha1/{cluster_,}interceptor_{defaults,
validation}.go and the v1alpha1 -> v1beta1 conversions of the deprecated inline interceptors.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from triggers.fielderrors import Violations
from triggers.gojson import marshal
from triggers.headers import canonical_key
from triggers.listener_admission import check_listener_resources, read_listener
from triggers.resources import (
    CLUSTER_INTERCEPTOR,
    CLUSTER_TRIGGER_BINDING,
    GROUP,
    NAMESPACED_INTERCEPTOR,
    TRIGGER_BINDING,
    Interceptor,
    InterceptorRef,
    Meta,
    Param,
    ParamSpec,
    Resource,
    Trigger,
    TriggerBinding,
    TriggerInterceptor,
    TriggerSpec,
    TriggerSpecBinding,
    TriggerTemplate,
    TriggerTemplateSpec,
    WebhookInterceptor,
)

KINDS = {
    "EventListener": ("v1beta1", "v1alpha1"),
    "Trigger": ("v1beta1", "v1alpha1"),
    "TriggerBinding": ("v1beta1", "v1alpha1"),
    "ClusterTriggerBinding": ("v1beta1", "v1alpha1"),
    "TriggerTemplate": ("v1beta1", "v1alpha1"),
    "Interceptor": ("v1alpha1",),
    "ClusterInterceptor": ("v1alpha1",),
}
CLUSTER_SCOPED = frozenset({"ClusterTriggerBinding", "ClusterInterceptor"})
_DNS1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_TT_PARAM = re.compile(r"\$\(tt\.params\.([_a-zA-Z][_a-zA-Z0-9.-]*)\)")
_DEPRECATED_INTERCEPTORS = ("github", "gitlab", "bitbucket", "cel")


def is_triggers_manifest(obj: Mapping[str, Any]) -> bool:
    """Whether an object's apiVersion is the triggers.tekton.dev group (one of a multi-document file)."""
    api_version = obj.get("apiVersion")
    return isinstance(api_version, str) and api_version.startswith(GROUP + "/")


def parse_resource(obj: Mapping[str, Any], *, namespace: str = "default") -> Resource:
    """The admitted resource of a manifest (a decoded YAML/JSON object); InvalidResource naming every violation.
    `namespace` is used when a namespaced manifest sets none."""
    problems = Violations()
    kind = problems.string(obj.get("kind"), "kind")
    api_version = problems.string(obj.get("apiVersion"), "apiVersion")
    metadata = problems.mapping(obj.get("metadata"), "metadata")
    name = problems.string(metadata.get("name"), "metadata.name")
    if kind not in KINDS:
        problems.invalid(kind or "(none)", "kind", "not a Triggers kind")
        problems.check(kind or "object", name)
    version = api_version.removeprefix(GROUP + "/")
    if not api_version.startswith(GROUP + "/") or version not in KINDS[kind]:
        problems.invalid(api_version or "(none)", "apiVersion", f"{kind} is served as " + _versions(kind))
    meta = _meta(problems, metadata, None if kind in CLUSTER_SCOPED else namespace)
    spec = problems.mapping(obj.get("spec"), "spec")
    resource: Resource
    if kind == "EventListener":
        resource = read_listener(problems, meta, spec, _interceptors, _trigger_spec)
        check_listener_resources(problems, spec)
    elif kind == "Trigger":
        resource = Trigger(meta, _trigger_spec(problems, spec, "spec", legacy=version == "v1alpha1"))
    elif kind in (TRIGGER_BINDING, CLUSTER_TRIGGER_BINDING):
        resource = TriggerBinding(meta, _binding_params(problems, spec), cluster=kind == CLUSTER_TRIGGER_BINDING)
    elif kind == "TriggerTemplate":
        resource = TriggerTemplate(meta, _template_spec(problems, spec, "spec"))
    else:
        resource = _interceptor(problems, meta, spec, cluster=kind == CLUSTER_INTERCEPTOR)
    problems.check(kind, meta.name)
    return resource


def _versions(kind: str) -> str:
    return " or ".join(f"{GROUP}/{v}" for v in KINDS[kind])


def _meta(problems: Violations, metadata: Mapping[str, Any], namespace: str | None) -> Meta:
    name = problems.string(metadata.get("name"), "metadata.name")
    if not name:
        problems.missing("metadata.name")
    elif len(name) > 253 or not _DNS1123_SUBDOMAIN.match(name):
        problems.invalid(name, "metadata.name", "a lowercase RFC 1123 subdomain")
    if namespace is not None:
        namespace = problems.string(metadata.get("namespace"), "metadata.namespace") or namespace
    labels = _string_map(problems, metadata.get("labels"), "metadata.labels")
    annotations = _string_map(problems, metadata.get("annotations"), "metadata.annotations")
    uid = problems.string(metadata.get("uid"), "metadata.uid")
    return Meta(name, namespace, uid, labels, annotations)


def _string_map(problems: Violations, value: Any, path: str) -> dict[str, str]:
    out = {}
    for key, item in problems.mapping(value, path).items():
        out[key] = problems.string(item, f"{path}.{key}")
    return out


def _has_balanced_expressions(value: str) -> bool:
    """Every `$(` closed by a matching `)` (tektoncd/triggers: trigger_binding_validation.go)."""
    for piece in value.split("$(")[1:]:
        depth = 1
        for char in piece:
            depth += {"(": 1, ")": -1}.get(char, 0)
            if depth == 0:
                break
        if depth:
            return False
    return True


def _binding_params(problems: Violations, spec: Mapping[str, Any]) -> tuple[Param, ...]:
    if not spec:
        problems.missing("spec")
    params, seen = [], set()
    for i, raw in enumerate(problems.sequence(spec.get("params"), "spec.params")):
        path = f"spec.params[{i}]"
        item = problems.mapping(raw, path)
        name = problems.string(item.get("name"), f"{path}.name")
        value = problems.string(item.get("value"), f"{path}.value")
        if not name:
            problems.missing(f"{path}.name")
        if name in seen:
            problems.invalid(name, f"{path}.name", "duplicate param name")
        seen.add(name)
        if not _has_balanced_expressions(value):
            problems.invalid(value, f"{path}.value", "a $( without its closing )")
        params.append(Param(name, value))
    return tuple(params)


def _template_spec(problems: Violations, spec: Mapping[str, Any], path: str) -> TriggerTemplateSpec:
    if not spec:
        problems.missing(path)
    params, seen = [], set()
    for i, raw in enumerate(problems.sequence(spec.get("params"), f"{path}.params")):
        item = problems.mapping(raw, f"{path}.params[{i}]")
        name = problems.string(item.get("name"), f"{path}.params[{i}].name")
        if not name:
            problems.missing(f"{path}.params[{i}].name")
        if name in seen:
            problems.invalid(name, f"{path}.params[{i}].name", "duplicate param name")
        seen.add(name)
        default = item.get("default")
        if default is not None:
            default = problems.string(default, f"{path}.params[{i}].default")
        description = problems.string(item.get("description"), f"{path}.params[{i}].description")
        params.append(ParamSpec(name, description, default))
    templates = problems.sequence(spec.get("resourcetemplates"), f"{path}.resourcetemplates")
    if not templates:
        problems.missing(f"{path}.resourcetemplates")
    for i, raw in enumerate(templates):
        where = f"{path}.resourcetemplates[{i}]"
        item = problems.mapping(raw, where)
        for key in ("apiVersion", "kind"):
            if not isinstance(item.get(key), str) or not item.get(key):
                problems.missing(f"{where}.{key}")
        for used in _TT_PARAM.findall(marshal(item)):
            if used not in seen:
                problems.found.append(f"undeclared param '$(tt.params.{used})': {where}")
    return TriggerTemplateSpec(tuple(params), tuple(problems.mapping(t, "") for t in templates))


def _trigger_spec(problems: Violations, spec: Mapping[str, Any], path: str, *, legacy: bool) -> TriggerSpec:
    bindings = tuple(
        _spec_binding(problems, raw, f"{path}.bindings[{i}]", legacy=legacy)
        for i, raw in enumerate(problems.sequence(spec.get("bindings"), f"{path}.bindings"))
    )
    template = problems.mapping(spec.get("template"), f"{path}.template")
    ref = problems.string(template.get("ref") or (template.get("name") if legacy else None), f"{path}.template.ref")
    inline = template.get("spec")
    if ref and inline is not None:
        problems.both(f"{path}.template.ref", f"{path}.template.spec")
    elif not ref and inline is None:
        problems.neither(f"{path}.template.ref", f"{path}.template.spec")
    template_version = problems.string(template.get("apiversion"), f"{path}.template.apiversion")
    if template_version and template_version not in ("v1alpha1", "v1beta1"):
        problems.invalid(template_version, f"{path}.template.apiversion", "v1alpha1 or v1beta1")
    template_spec = None
    if inline is not None:
        template_spec = _template_spec(
            problems, problems.mapping(inline, f"{path}.template.spec"), f"{path}.template.spec"
        )
    return TriggerSpec(
        bindings=bindings,
        template_ref=ref or None,
        template_spec=template_spec,
        interceptors=_interceptors(problems, spec.get("interceptors"), f"{path}.interceptors", legacy=legacy),
        service_account_name=problems.string(spec.get("serviceAccountName"), f"{path}.serviceAccountName"),
    )


def _spec_binding(problems: Violations, raw: Any, path: str, *, legacy: bool) -> TriggerSpecBinding:
    item = problems.mapping(raw, path)
    name = problems.string(item.get("name"), f"{path}.name")
    ref = problems.string(item.get("ref"), f"{path}.ref")
    kind = problems.string(item.get("kind"), f"{path}.kind") or TRIGGER_BINDING
    value = item.get("value")
    if value is not None:
        value = problems.string(value, f"{path}.value")
    if legacy and name and value is None and not ref:  # v1alpha1's reference by name
        name, ref = "", name
    if ref and name:
        problems.both(f"{path}.ref", f"{path}.name")
    elif not ref and not name:
        problems.neither(f"{path}.ref", f"{path}.name")
    elif name and value is None:
        problems.missing(f"{path}.value")
    if kind not in (TRIGGER_BINDING, CLUSTER_TRIGGER_BINDING):
        problems.invalid(kind, f"{path}.kind", "TriggerBinding or ClusterTriggerBinding")
    if value is not None and not _has_balanced_expressions(value):
        problems.invalid(value, f"{path}.value", "a $( without its closing )")
    return TriggerSpecBinding(name=name, value=value, ref=ref, kind=kind)


def _interceptors(problems: Violations, raw: Any, path: str, *, legacy: bool = False) -> tuple[TriggerInterceptor, ...]:
    out = []
    for i, entry in enumerate(problems.sequence(raw, path)):
        where = f"{path}[{i}]"
        item = dict(problems.mapping(entry, where))
        if legacy:
            item = _convert_deprecated(item)
        name = problems.string(item.get("name"), f"{where}.name")
        ref = problems.mapping(item.get("ref"), f"{where}.ref")
        webhook = item.get("webhook")
        params = []
        for j, param in enumerate(problems.sequence(item.get("params"), f"{where}.params")):
            body = problems.mapping(param, f"{where}.params[{j}]")
            param_name = problems.string(body.get("name"), f"{where}.params[{j}].name")
            if not param_name:
                problems.missing(f"{where}.params[{j}].name")
            params.append((param_name, body.get("value")))
        interceptor_ref = None
        if ref:
            kind = problems.string(ref.get("kind"), f"{where}.ref.kind") or CLUSTER_INTERCEPTOR
            if kind not in (CLUSTER_INTERCEPTOR, NAMESPACED_INTERCEPTOR):
                problems.invalid(kind, f"{where}.ref.kind", "ClusterInterceptor or NamespacedInterceptor")
            ref_name = problems.string(ref.get("name"), f"{where}.ref.name")
            if not ref_name:
                problems.missing(f"{where}.ref.name")
            api_version = problems.string(ref.get("apiVersion"), f"{where}.ref.apiVersion")
            interceptor_ref = InterceptorRef(ref_name, kind, api_version)
        if ref and webhook is not None:
            problems.both(f"{where}.ref", f"{where}.webhook")
        elif not ref and webhook is None:
            problems.neither(f"{where}.ref", f"{where}.webhook")
        hook = _webhook(problems, webhook, f"{where}.webhook") if webhook is not None else None
        out.append(TriggerInterceptor(name, interceptor_ref, tuple(params), hook))
    return tuple(out)


def _convert_deprecated(item: dict[str, Any]) -> dict[str, Any]:
    """v1alpha1's `github: {...}` and friends become `ref` + `params` (tektoncd/triggers:
    pkg/apis/triggers/v1alpha1/trigger_conversion.go)."""
    for kind in _DEPRECATED_INTERCEPTORS:
        body = item.get(kind)
        if isinstance(body, Mapping):
            params = [{"name": key, "value": value} for key, value in body.items()]
            rest = {k: v for k, v in item.items() if k != kind}
            return {**rest, "ref": {"name": kind, "kind": CLUSTER_INTERCEPTOR}, "params": params}
    return item


def _webhook(problems: Violations, raw: Any, path: str) -> WebhookInterceptor:
    body = problems.mapping(raw, path)
    url = problems.string(body.get("url"), f"{path}.url")
    ref = problems.mapping(body.get("objectRef"), f"{path}.objectRef")
    if not ref and not url:
        problems.missing(f"{path}.objectRef")
    if ref:
        if ref.get("kind") != "Service":
            problems.invalid(ref.get("kind"), f"{path}.objectRef.kind", "must be Service")
        if ref.get("apiVersion") != "v1":
            problems.invalid(ref.get("apiVersion"), f"{path}.objectRef.apiVersion", "must be v1")
    headers: list[tuple[str, str | tuple[str, ...]]] = []
    for i, raw_header in enumerate(problems.sequence(body.get("header"), f"{path}.header")):
        header = problems.mapping(raw_header, f"{path}.header[{i}]")
        name = problems.string(header.get("name"), f"{path}.header[{i}].name")
        if not name:
            problems.missing(f"{path}.header[{i}].name")
        elif canonical_key(name) != name:
            problems.invalid(name, f"{path}.header[{i}].name", "header names must be canonical")
        value = header.get("value")
        if isinstance(value, list):
            headers.append((name, tuple(str(v) for v in value)))
        else:
            headers.append((name, problems.string(value, f"{path}.header[{i}].value")))
    service_name = problems.string(ref.get("name"), f"{path}.objectRef.name") or None
    service_namespace = problems.string(ref.get("namespace"), f"{path}.objectRef.namespace") or None
    return WebhookInterceptor(url or None, service_name, service_namespace, tuple(headers))


def _interceptor(problems: Violations, meta: Meta, spec: Mapping[str, Any], *, cluster: bool) -> Interceptor:
    config = problems.mapping(spec.get("clientConfig"), "spec.clientConfig")
    url = problems.string(config.get("url"), "spec.clientConfig.url")
    service = problems.mapping(config.get("service"), "spec.clientConfig.service")
    ca_bundle = problems.string(config.get("caBundle"), "spec.clientConfig.caBundle")
    if url and service:
        problems.both("spec.clientConfig.url", "spec.clientConfig.service")
    elif not url and not service:
        problems.neither("spec.clientConfig.url", "spec.clientConfig.service")
    if service:
        name = problems.string(service.get("name"), "spec.clientConfig.service.name")
        namespace = problems.string(service.get("namespace"), "spec.clientConfig.service.namespace")
        if not name:
            problems.missing("spec.clientConfig.service.name")
        if not namespace:
            problems.missing("spec.clientConfig.service.namespace")
        port = service.get("port")
        if port is not None and not (isinstance(port, int) and 0 < port < 65536):
            problems.invalid(port, "spec.clientConfig.service.port", "a port number")
        svc_path = problems.string(service.get("path"), "spec.clientConfig.service.path")
        # tektoncd/triggers: pkg/apis/triggers/v1alpha1/cluster_interceptor_types.go ResolveAddress
        scheme, default_port = ("https", 8443) if ca_bundle else ("http", 80)
        if svc_path and not svc_path.startswith("/"):
            svc_path = "/" + svc_path  # Go's url.URL.String adds the slash
        url = f"{scheme}://{name}.{namespace}.svc:{port or default_port}{svc_path}"
    labels = dict(meta.labels)
    if labels.get("server/type") not in ("http", "https"):
        labels = {"server/type": "http"}  # the defaulter replaces the whole label map
    meta = Meta(meta.name, meta.namespace, meta.uid, labels, meta.annotations)
    return Interceptor(meta, url, ca_bundle, cluster)
