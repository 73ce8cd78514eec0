"""Admission of Triggers manifests: the defaults and each rule of the validating webhook, each violation named
with its field."""

from __future__ import annotations

import pytest

from catalog.manifests import load_documents
from triggers.admission import parse_resource
from triggers.fielderrors import InvalidResource
from triggers.resources import EventListener, Interceptor, Trigger, TriggerTemplate


def admit(text: str):
    (document,) = load_documents(text)
    return parse_resource(document, namespace="ns1")


def violations(text: str) -> list[str]:
    with pytest.raises(InvalidResource) as caught:
        admit(text)
    return caught.value.violations


EL = "apiVersion: triggers.tekton.dev/v1beta1\nkind: EventListener\nmetadata: {name: el}\n"
TT = "apiVersion: triggers.tekton.dev/v1beta1\nkind: TriggerTemplate\nmetadata: {name: tt}\n"
TB = "apiVersion: triggers.tekton.dev/v1beta1\nkind: TriggerBinding\nmetadata: {name: tb}\n"
TR = "apiVersion: triggers.tekton.dev/v1beta1\nkind: Trigger\nmetadata: {name: tr}\n"
TEMPLATE_REF = "template: {ref: tt}"


def test_listener_defaults():
    listener = admit(EL + "spec: {triggers: [{name: t, template: {ref: tt}}]}")
    assert isinstance(listener, EventListener)
    assert (listener.meta.namespace, listener.service_account_name, listener.payload_validation) == (
        "ns1", "default", True,
    )  # fmt: skip
    trigger = listener.triggers[0].spec
    assert trigger.template_ref == "tt"
    off = admit(EL.replace("{name: el}", "{name: el, annotations: {tekton.dev/payload-validation: 'false'}}")
                + "spec: {triggers: [{name: t, template: {ref: tt}}]}")  # fmt: skip
    assert off.payload_validation is False


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (EL.replace("name: el", "name: " + "e" * 61) + "spec: {labelSelector: {}}",
         "must be no more than 60 characters long"),
        (EL + "spec: {}", "expected at least one, got none: spec.labelSelector, spec.namespaceSelector"),
        (EL + "spec: {triggers: [{name: t}]}",
         "expected exactly one, got neither: spec.triggers[0].template, spec.triggers[0].triggerRef"),
        (EL + "spec: {triggers: [{name: t, triggerRef: x, template: {ref: tt}}]}",
         "expected exactly one, got both: spec.triggers[0].triggerRef, spec.triggers[0].template"),
        (EL + "spec: {triggers: [{name: 'bad name!', template: {ref: tt}}]}", "spec.triggers[0].name"),
        (EL + "spec: {triggerGroups: [{name: g, interceptors: [{ref: {name: cel}}]}]}",
         "missing field(s): spec.triggerGroups[0].triggerSelector.labelSelector"),
        (EL + "spec: {triggerGroups: [{name: g, triggerSelector: {labelSelector: {}}}]}",
         "missing field(s): spec.triggerGroups[0].interceptors"),
        (EL.replace("{name: el}", "{name: el, annotations: {tekton.dev/payload-validation: 'no'}}")
         + "spec: {labelSelector: {}}", "invalid value: no: metadata.annotations.tekton.dev/payload-validation"),
        (EL + "spec: {labelSelector: {}, resources: {kubernetesResource: {replicas: -1}}}",
         "spec.resources.kubernetesResource.replicas"),
        (EL + "spec: {labelSelector: {}, resources: {kubernetesResource: {}, customResource: {}}}",
         "expected exactly one, got both: spec.resources.kubernetesResource, spec.resources.customResource"),
        (EL + "spec: {labelSelector: {}, resources: {kubernetesResource: {spec: {template: {spec: "
         "{hostNetwork: true, containers: [{image: x}]}}}}}}",
         "must not set the field(s): spec.resources.kubernetesResource.spec.template.spec.hostNetwork"),
        (EL + "spec: {labelSelector: {}, resources: {kubernetesResource: {spec: {template: {spec: "
         "{containers: [{env: [{name: TLS_CERT, value: x}]}]}}}}}}",
         "must not set the field(s): spec.resources.kubernetesResource.spec.template.spec.containers[0].env[0].value"),
        (EL + "spec: {labelSelector: {matchExpressions: [{key: a, operator: Near}]}}",
         "invalid value: Near: spec.labelSelector.matchExpressions[0].operator"),
        (TT + "spec: {}", "missing field(s): spec"),
        (TT + "spec: {params: [{name: a}]}", "missing field(s): spec.resourcetemplates"),
        (TT + "spec: {resourcetemplates: [{kind: ConfigMap}]}",
         "missing field(s): spec.resourcetemplates[0].apiVersion"),
        (TT + "spec: {resourcetemplates: [{apiVersion: v1, kind: ConfigMap, data: {a: $(tt.params.nope)}}]}",
         "undeclared param '$(tt.params.nope)': spec.resourcetemplates[0]"),
        (TB + "spec: {}", "missing field(s): spec"),
        (TB + "spec: {params: [{name: a, value: x}, {name: a, value: y}]}", "duplicate param name"),
        (TB + "spec: {params: [{name: a, value: $(body.a}]}", "invalid value: $(body.a: spec.params[0].value"),
        (TR + "spec: {}", "expected exactly one, got neither: spec.template.ref, spec.template.spec"),
        (TR + f"spec: {{{TEMPLATE_REF}, bindings: [{{name: a}}]}}", "missing field(s): spec.bindings[0].value"),
        (TR + f"spec: {{{TEMPLATE_REF}, bindings: [{{name: a, value: x, ref: b}}]}}",
         "expected exactly one, got both: spec.bindings[0].ref, spec.bindings[0].name"),
        (TR + f"spec: {{{TEMPLATE_REF}, bindings: [{{ref: b, kind: Other}}]}}", "spec.bindings[0].kind"),
        (TR + "spec: {template: {ref: tt, apiversion: v2}}", "invalid value: v2: spec.template.apiversion"),
        (TR + f"spec: {{{TEMPLATE_REF}, interceptors: [{{name: x}}]}}",
         "expected exactly one, got neither: spec.interceptors[0].ref, spec.interceptors[0].webhook"),
        (TR + f"spec: {{{TEMPLATE_REF}, interceptors: [{{ref: {{name: x, kind: Other}}}}]}}",
         "spec.interceptors[0].ref.kind"),
        (TR + f"spec: {{{TEMPLATE_REF}, interceptors: [{{webhook: {{objectRef: {{kind: Pod, apiVersion: v1, "
         "name: s}, header: [{name: x-lower, value: v}]}}]}",
         "header names must be canonical"),
        ("apiVersion: triggers.tekton.dev/v1alpha1\nkind: ClusterInterceptor\nmetadata: {name: ci}\n"
         "spec: {clientConfig: {}}", "expected exactly one, got neither: spec.clientConfig.url"),
        ("apiVersion: triggers.tekton.dev/v1alpha1\nkind: ClusterInterceptor\nmetadata: {name: ci}\n"
         "spec: {clientConfig: {service: {name: s}}}", "missing field(s): spec.clientConfig.service.namespace"),
        ("apiVersion: triggers.tekton.dev/v1beta1\nkind: ClusterInterceptor\nmetadata: {name: ci}\n"
         "spec: {clientConfig: {url: 'http://x'}}", "ClusterInterceptor is served as triggers.tekton.dev/v1alpha1"),
        ("apiVersion: triggers.tekton.dev/v1beta1\nkind: Trigger\nmetadata: {name: Not_A_Name}\n"
         "spec: {template: {ref: tt}}", "invalid value: Not_A_Name: metadata.name"),
    ],
)  # fmt: skip
def test_each_rule_names_the_field(text, expected):
    assert any(expected in v for v in violations(text)), violations(text)


def test_all_violations_are_reported_at_once():
    found = violations(TR + "spec: {bindings: [{name: a}, {ref: b, kind: X}]}")
    assert len(found) == 3
    with pytest.raises(InvalidResource, match=r"^Trigger 'tr' is invalid: "):
        admit(TR + "spec: {}")


def test_wrong_types_are_violations_not_crashes():
    found = violations(TR + "spec: {bindings: {a: 1}, template: [1], interceptors: 3}")
    assert any("spec.bindings" in v for v in found)
    assert any("spec.template" in v for v in found)


def test_template_keeps_its_params_and_defaults():
    template = admit(
        TT + "spec: {params: [{name: a, default: ''}, {name: b}], resourcetemplates: "
        "[{apiVersion: v1, kind: ConfigMap, data: {a: $(tt.params.a), p: $(params.other)}}]}"
    )
    assert isinstance(template, TriggerTemplate)
    assert [(p.name, p.default) for p in template.spec.params] == [("a", ""), ("b", None)]


def test_interceptor_addresses():
    service = admit(
        "apiVersion: triggers.tekton.dev/v1alpha1\nkind: Interceptor\nmetadata: {name: i}\n"
        "spec: {clientConfig: {service: {name: svc, namespace: ns2, path: /check}}}"
    )
    assert isinstance(service, Interceptor)
    assert (service.url, service.meta.labels, service.cluster) == (
        "http://svc.ns2.svc:80/check", {"server/type": "http"}, False,
    )  # fmt: skip
    tls = admit(
        "apiVersion: triggers.tekton.dev/v1alpha1\nkind: ClusterInterceptor\nmetadata: {name: i}\n"
        "spec: {clientConfig: {caBundle: Zm9v, service: {name: svc, namespace: ns2}}}"
    )
    assert (tls.url, tls.meta.namespace, tls.cluster) == ("https://svc.ns2.svc:8443", None, True)


def test_v1alpha1_inline_interceptors_and_binding_names_convert():
    trigger = admit(
        "apiVersion: triggers.tekton.dev/v1alpha1\nkind: Trigger\nmetadata: {name: t}\n"
        "spec:\n  template: {name: tt}\n  bindings: [{name: tb}]\n"
        "  interceptors: [{cel: {filter: 'true'}}, {github: {eventTypes: [push]}}]\n"
    )
    assert isinstance(trigger, Trigger)
    assert trigger.spec.template_ref == "tt"
    assert [(b.ref, b.kind) for b in trigger.spec.bindings] == [("tb", "TriggerBinding")]
    assert [(i.ref.name, i.ref.kind, i.params) for i in trigger.spec.interceptors] == [
        ("cel", "ClusterInterceptor", (("filter", "true"),)),
        ("github", "ClusterInterceptor", (("eventTypes", ["push"]),)),
    ]


def test_missing_interceptor_kind_defaults_to_cluster_interceptor():
    trigger = admit(TR + "spec: {template: {ref: tt}, interceptors: [{ref: {name: github}}]}")
    assert trigger.spec.interceptors[0].ref.kind == "ClusterInterceptor"


def test_not_a_triggers_kind():
    found = violations("apiVersion: tekton.dev/v1\nkind: Task\nmetadata: {name: t}\n")
    assert found == ["invalid value: Task: kind (not a Triggers kind)"]
