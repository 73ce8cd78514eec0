"""The EventListener rules of the admission webhook (tektoncd/triggers: pkg/apis/triggers/v1beta1/
event_listener_validation.go, event_listener_defaults.go, pkg/apis/triggers/validation.go)."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from triggers.fielderrors import Violations
from triggers.resources import (
    PAYLOAD_VALIDATION,
    EventListener,
    EventListenerTrigger,
    LabelSelector,
    Meta,
    TriggerGroup,
    TriggerSpec,
)

MAX_LISTENER_NAME = 60  # the Service is el-<name>, and Service names stop at 63
DEFAULT_SERVICE_ACCOUNT = "default"  # config-defaults-triggers default-service-account
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
_POD_FIELDS = frozenset(
    {
        "serviceAccountName", "nodeSelector", "tolerations", "containers", "affinity",
        "topologySpreadConstraints", "imagePullSecrets", "securityContext",
    }
)  # fmt: skip
_CONTAINER_FIELDS = {
    "kubernetesResource": frozenset({"resources", "env", "readinessProbe", "livenessProbe", "startupProbe",
                                     "securityContext"}),
    "customResource": frozenset({"resources", "env", "securityContext"}),
}  # fmt: skip
_SELECTOR_OPERATORS = ("In", "NotIn", "Exists", "DoesNotExist")


def read_listener(
    problems: Violations,
    meta: Meta,
    spec: Mapping[str, Any],
    read_interceptors: Callable[..., Any],
    read_trigger_spec: Callable[..., TriggerSpec],
) -> EventListener:
    """The EventListener of a manifest, defaulted; violations recorded in `problems`."""
    if len(meta.name) > MAX_LISTENER_NAME:
        problems.invalid(meta.name, "metadata.name", f"must be no more than {MAX_LISTENER_NAME} characters long")
    validation = meta.annotations.get(PAYLOAD_VALIDATION)
    if validation is not None and validation not in ("true", "false"):
        problems.invalid(validation, f"metadata.annotations.{PAYLOAD_VALIDATION}", 'must be "true" or "false"')
    triggers = []
    for i, raw in enumerate(problems.sequence(spec.get("triggers"), "spec.triggers")):
        path = f"spec.triggers[{i}]"
        item = problems.mapping(raw, path)
        name = problems.string(item.get("name"), f"{path}.name")
        if len(name) > 63 or not _LABEL_VALUE.match(name):
            problems.invalid(name, f"{path}.name", "a valid label value")
        ref = problems.string(item.get("triggerRef"), f"{path}.triggerRef")
        if ref:
            for key in ("template", "bindings", "interceptors"):
                if item.get(key):
                    problems.both(f"{path}.triggerRef", f"{path}.{key}")
            triggers.append(EventListenerTrigger(name, trigger_ref=ref))
            continue
        if item.get("template") is None:
            problems.neither(f"{path}.template", f"{path}.triggerRef")
            continue
        triggers.append(EventListenerTrigger(name, spec=read_trigger_spec(problems, item, path, legacy=False)))
    groups = []
    for i, raw in enumerate(problems.sequence(spec.get("triggerGroups"), "spec.triggerGroups")):
        path = f"spec.triggerGroups[{i}]"
        item = problems.mapping(raw, path)
        selector = problems.mapping(item.get("triggerSelector"), f"{path}.triggerSelector")
        names = _namespace_names(problems, selector.get("namespaceSelector"), f"{path}.triggerSelector")
        labels = _label_selector(problems, selector.get("labelSelector"), f"{path}.triggerSelector.labelSelector")
        if selector.get("namespaceSelector") is None and labels is None:
            problems.missing(f"{path}.triggerSelector.labelSelector", f"{path}.triggerSelector.namespaceSelector")
        interceptors = read_interceptors(problems, item.get("interceptors"), f"{path}.interceptors")
        if not interceptors:
            problems.missing(f"{path}.interceptors")
        name = problems.string(item.get("name"), f"{path}.name")
        groups.append(TriggerGroup(name, interceptors, names, labels))
    names = _namespace_names(problems, spec.get("namespaceSelector"), "spec")
    labels = _label_selector(problems, spec.get("labelSelector"), "spec.labelSelector")
    if not (triggers or groups or spec.get("namespaceSelector") or spec.get("labelSelector")):
        problems.found.append(
            "expected at least one, got none: spec.labelSelector, spec.namespaceSelector, spec.triggerGroups, "
            "spec.triggers"
        )
    service_account = problems.string(spec.get("serviceAccountName"), "spec.serviceAccountName")
    return EventListener(
        meta=meta,
        service_account_name=service_account or DEFAULT_SERVICE_ACCOUNT,
        triggers=tuple(triggers),
        trigger_groups=tuple(groups),
        namespace_names=names,
        label_selector=labels,
        cloud_event_uri=problems.string(spec.get("cloudEventURI"), "spec.cloudEventURI"),
        resources=problems.mapping(spec.get("resources"), "spec.resources"),
    )


def _namespace_names(problems: Violations, raw: Any, path: str) -> tuple[str, ...]:
    selector = problems.mapping(raw, f"{path}.namespaceSelector")
    names = problems.sequence(selector.get("matchNames"), f"{path}.namespaceSelector.matchNames")
    return tuple(problems.string(n, f"{path}.namespaceSelector.matchNames[{i}]") for i, n in enumerate(names))


def _label_selector(problems: Violations, raw: Any, path: str) -> LabelSelector | None:
    if raw is None:
        return None
    body = problems.mapping(raw, path)
    labels = {k: problems.string(v, f"{path}.matchLabels.{k}") for k, v in
              problems.mapping(body.get("matchLabels"), f"{path}.matchLabels").items()}  # fmt: skip
    expressions = []
    for i, entry in enumerate(problems.sequence(body.get("matchExpressions"), f"{path}.matchExpressions")):
        where = f"{path}.matchExpressions[{i}]"
        item = problems.mapping(entry, where)
        operator = problems.string(item.get("operator"), f"{where}.operator")
        values = tuple(str(v) for v in problems.sequence(item.get("values"), f"{where}.values"))
        if operator not in _SELECTOR_OPERATORS:
            problems.invalid(operator, f"{where}.operator", "In, NotIn, Exists or DoesNotExist")
        elif (operator in ("In", "NotIn")) != bool(values):
            problems.invalid(list(values), f"{where}.values", f"values and operator {operator} do not agree")
        expressions.append((problems.string(item.get("key"), f"{where}.key"), operator, values))
    return LabelSelector(labels, tuple(expressions))


def check_listener_resources(problems: Violations, spec: Mapping[str, Any]) -> None:
    """The limits on `spec.resources`: one of kubernetesResource or customResource, and only the pod and
    container fields the sink's Deployment takes."""
    resources = problems.mapping(spec.get("resources"), "spec.resources")
    present = [key for key in ("kubernetesResource", "customResource") if resources.get(key) is not None]
    if len(present) == 2:
        problems.both("spec.resources.kubernetesResource", "spec.resources.customResource")
    for key in present:
        path = f"spec.resources.{key}"
        body = problems.mapping(resources.get(key), path)
        replicas = body.get("replicas")
        if replicas is not None and (not isinstance(replicas, int) or isinstance(replicas, bool) or replicas < 0):
            problems.invalid(replicas, f"{path}.replicas", "must be a non-negative integer")
        template = problems.mapping(problems.mapping(body.get("spec"), f"{path}.spec").get("template"),
                                    f"{path}.spec.template")  # fmt: skip
        pod = problems.mapping(template.get("spec"), f"{path}.spec.template.spec")
        for field_name in sorted(set(pod) - _POD_FIELDS):
            problems.disallowed(f"{path}.spec.template.spec.{field_name}")
        containers = problems.sequence(pod.get("containers"), f"{path}.spec.template.spec.containers")
        if len(containers) > 1:
            problems.invalid(len(containers), f"{path}.spec.template.spec.containers", "at most one container")
        for i, raw in enumerate(containers):
            where = f"{path}.spec.template.spec.containers[{i}]"
            container = problems.mapping(raw, where)
            for field_name in sorted(set(container) - _CONTAINER_FIELDS[key]):
                problems.disallowed(f"{where}.{field_name}")
            _check_env(problems, container.get("env"), f"{where}.env")


def _check_env(problems: Violations, raw: Any, path: str) -> None:
    names = set()
    for i, entry in enumerate(problems.sequence(raw, path)):
        item = problems.mapping(entry, f"{path}[{i}]")
        names.add(item.get("name"))
        if "value" in item:
            problems.disallowed(f"{path}[{i}].value")
        source = problems.mapping(item.get("valueFrom"), f"{path}[{i}].valueFrom")
        if not source.get("secretKeyRef"):
            problems.missing(f"{path}[{i}].valueFrom.secretKeyRef")
    if ("TLS_CERT" in names) != ("TLS_KEY" in names):
        problems.missing(f"{path}.TLS_CERT", f"{path}.TLS_KEY")
