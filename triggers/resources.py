"""The Triggers resources as taskhub holds them once admitted: typed, defaulted, validated (see admission.py).

Field names follow triggers.tekton.dev/v1beta1 (tektoncd/triggers: pkg/apis/triggers/v1beta1/*_types.go) and
v1alpha1 for Interceptor and ClusterInterceptor (pkg/apis/triggers/v1alpha1/*interceptor_types.go).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

GROUP = "triggers.tekton.dev"
CLUSTER_INTERCEPTOR = "ClusterInterceptor"
NAMESPACED_INTERCEPTOR = "NamespacedInterceptor"
TRIGGER_BINDING = "TriggerBinding"
CLUSTER_TRIGGER_BINDING = "ClusterTriggerBinding"
PAYLOAD_VALIDATION = "tekton.dev/payload-validation"
OLD_ESCAPE = "triggers.tekton.dev/old-escape-quotes"

# The labels put on every object a trigger creates (tektoncd/triggers: pkg/resources/create.go).
LABEL_EVENTLISTENER = GROUP + "/eventlistener"
LABEL_TRIGGER = GROUP + "/trigger"
LABEL_EVENT_ID = GROUP + "/triggers-eventid"


@dataclass(frozen=True)
class Meta:
    """The metadata Triggers reads."""

    name: str
    namespace: str | None
    uid: str = ""
    labels: Mapping[str, str] = field(default_factory=dict)
    annotations: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Param:
    """A binding param: a name and a value that may hold `$(...)` expressions."""

    name: str
    value: str


@dataclass(frozen=True)
class ParamSpec:
    """A TriggerTemplate param; `default` None means none was declared (an empty string is a default)."""

    name: str
    description: str = ""
    default: str | None = None


@dataclass(frozen=True)
class LabelSelector:
    """metav1.LabelSelector: every matchLabels pair and every matchExpressions requirement must hold."""

    match_labels: Mapping[str, str] = field(default_factory=dict)
    match_expressions: tuple[tuple[str, str, tuple[str, ...]], ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        if any(labels.get(key) != value for key, value in self.match_labels.items()):
            return False
        for key, operator, values in self.match_expressions:
            present = key in labels
            if operator == "In" and not (present and labels[key] in values):
                return False
            if operator == "NotIn" and present and labels[key] in values:
                return False
            if operator == "Exists" and not present:
                return False
            if operator == "DoesNotExist" and present:
                return False
        return True


@dataclass(frozen=True)
class InterceptorRef:
    name: str
    kind: str = CLUSTER_INTERCEPTOR
    api_version: str = ""


@dataclass(frozen=True)
class WebhookInterceptor:
    """The legacy `webhook` interceptor: a Service reference or a URL, plus headers to set."""

    url: str | None
    service_name: str | None
    service_namespace: str | None
    headers: tuple[tuple[str, str | tuple[str, ...]], ...] = ()


@dataclass(frozen=True)
class TriggerInterceptor:
    """One entry of an interceptor chain; `params` keeps each param's JSON value in declaration order."""

    name: str
    ref: InterceptorRef | None
    params: tuple[tuple[str, Any], ...] = ()
    webhook: WebhookInterceptor | None = None

    @property
    def label(self) -> str:
        """How an outcome names this entry: its name, else the interceptor it refers to."""
        if self.name:
            return self.name
        if self.ref:
            return self.ref.name
        return "webhook"

    def param_map(self) -> dict[str, Any]:
        return dict(self.params)


@dataclass(frozen=True)
class TriggerSpecBinding:
    """An embedded binding (name + value) or a reference (ref + kind)."""

    name: str = ""
    value: str | None = None
    ref: str = ""
    kind: str = TRIGGER_BINDING


@dataclass(frozen=True)
class TriggerTemplateSpec:
    params: tuple[ParamSpec, ...]
    resourcetemplates: tuple[Mapping[str, Any], ...]


@dataclass(frozen=True)
class TriggerSpec:
    bindings: tuple[TriggerSpecBinding, ...] = ()
    template_ref: str | None = None
    template_spec: TriggerTemplateSpec | None = None
    interceptors: tuple[TriggerInterceptor, ...] = ()
    service_account_name: str = ""


@dataclass(frozen=True)
class Trigger:
    meta: Meta
    spec: TriggerSpec


@dataclass(frozen=True)
class EventListenerTrigger:
    """An entry of `spec.triggers`: inline (`spec`) or a reference to a Trigger (`trigger_ref`)."""

    name: str
    trigger_ref: str = ""
    spec: TriggerSpec = TriggerSpec()


@dataclass(frozen=True)
class TriggerGroup:
    name: str
    interceptors: tuple[TriggerInterceptor, ...]
    namespace_names: tuple[str, ...] = ()
    label_selector: LabelSelector | None = None


@dataclass(frozen=True)
class EventListener:
    meta: Meta
    service_account_name: str
    triggers: tuple[EventListenerTrigger, ...] = ()
    trigger_groups: tuple[TriggerGroup, ...] = ()
    namespace_names: tuple[str, ...] = ()
    label_selector: LabelSelector | None = None
    cloud_event_uri: str = ""
    resources: Mapping[str, Any] = field(default_factory=dict)

    @property
    def payload_validation(self) -> bool:
        """Whether the sink refuses bodies that are not JSON objects (annotation tekton.dev/payload-validation)."""
        return self.meta.annotations.get(PAYLOAD_VALIDATION, "true") != "false"


@dataclass(frozen=True)
class TriggerBinding:
    """A TriggerBinding, or a ClusterTriggerBinding when `cluster` (then `meta.namespace` is None)."""

    meta: Meta
    params: tuple[Param, ...]
    cluster: bool = False


@dataclass(frozen=True)
class TriggerTemplate:
    meta: Meta
    spec: TriggerTemplateSpec


@dataclass(frozen=True)
class Interceptor:
    """An Interceptor, or a ClusterInterceptor when `cluster`; `url` is the address the sink calls."""

    meta: Meta
    url: str
    ca_bundle: str = ""
    cluster: bool = False


Resource = EventListener | Trigger | TriggerBinding | TriggerTemplate | Interceptor
