"""The per-event work of an EventListener: select triggers, run interceptor chains, resolve bindings, render
templates (tektoncd/triggers: pkg/sink/sink.go HandleEvent, processTriggerGroups, processTrigger).

`TriggersEngine.process_event` returns, for every trigger the event reached, what became of it: which
interceptor stopped it and why (upstream's message), or the rendered objects to create. It never raises for
anything an event or a resource holds; creating the objects is the caller's job.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from triggers.admission import parse_resource
from triggers.bindings import BindingError, event_object, merged_binding_params, resolve_params
from triggers.chain import ChainServices, run_chain
from triggers.fielderrors import InvalidResource
from triggers.headers import Headers, canonical_headers
from triggers.interceptors import RequestContext
from triggers.interceptors.common import GITHUB_API, CoreServices
from triggers.ports import InterceptorHTTP, SecretStore, TriggersStore
from triggers.resources import (
    CLUSTER_TRIGGER_BINDING,
    OLD_ESCAPE,
    EventListener,
    Param,
    Trigger,
    TriggerBinding,
    TriggerTemplate,
)
from triggers.selection import Selected, listener_triggers, select
from triggers.templates import RenderedResource, TemplateError, render

Status = Literal["created", "stopped", "failed"]
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class EventRequest:
    """An HTTP request to a sink: method, path with query, headers (any case, repeated names kept), raw body."""

    method: str
    url: str
    headers: Headers
    body: bytes

    @classmethod
    def from_pairs(cls, method: str, url: str, headers: list[tuple[str, str]], body: bytes) -> EventRequest:
        """A request from header (name, value) pairs as a server receives them; names are canonicalised."""
        return cls(method, url, canonical_headers(headers), body)


@dataclass(frozen=True)
class TriggerOutcome:
    """What one trigger (or a trigger group's chain) did with an event.

    `status` is "created" (the `resources` are to be created), "stopped" (an interceptor answered
    continue: false) or "failed" (an interceptor error, a missing resource, a binding or template error).
    `interceptor` names the chain entry that stopped or failed it; `reason` is upstream's message.
    """

    trigger: str
    namespace: str
    trigger_id: str
    status: Status
    reason: str = ""
    interceptor: str = ""
    group: str = ""
    service_account_name: str = ""
    params: Mapping[str, str] = field(default_factory=dict)
    extensions: Mapping[str, Any] = field(default_factory=dict)
    resources: tuple[RenderedResource, ...] = ()


@dataclass(frozen=True)
class EventOutcome:
    """Everything one event did, for the event record."""

    event_id: str
    listener: str
    namespace: str
    listener_uid: str
    triggers: tuple[TriggerOutcome, ...]

    @property
    def resources(self) -> list[RenderedResource]:
        return [r for t in self.triggers for r in t.resources]


class TriggersEngine:
    """Evaluates events against Triggers resources; collaborators come in through the ports."""

    def __init__(
        self,
        store: TriggersStore,
        secrets: SecretStore,
        http: InterceptorHTTP | None = None,
        *,
        new_uid: Callable[[], str] = lambda: str(uuid.uuid4()),
        github_api: str = GITHUB_API,
    ) -> None:
        self.store = store
        self.new_uid = new_uid
        self.services = ChainServices(store, CoreServices(secrets, http, github_api), http)

    def process_event(self, listener: EventListener, request: EventRequest, event_id: str) -> EventOutcome:
        """Run every trigger of the listener on one event (after the sink answered 202)."""
        namespace = listener.meta.namespace or "default"
        outcomes = [self._run(listener, selected, request, event_id, {}, "") for selected in
                    listener_triggers(listener, self.store)]  # fmt: skip
        for group in listener.trigger_groups:
            group_id = f"namespaces/{namespace}/triggerGroups/{group.name}"
            chain = run_chain(
                group.interceptors,
                body=request.body,
                headers=request.headers,
                extensions={},
                context=RequestContext(request.url, event_id, group_id),
                listener_namespace=namespace,
                services=self.services,
            )
            if chain.stopped_by:
                status: Status = "failed" if chain.failed else "stopped"
                outcomes.append(TriggerOutcome(group.name, namespace, group_id, status, chain.reason,
                                               chain.stopped_by, group=group.name))  # fmt: skip
                continue
            # The group's triggers get the original body (a legacy webhook's rewrite is not passed on).
            for selected in select(self.store, namespace, group.namespace_names, group.label_selector):
                outcomes.append(self._run(listener, selected, request, event_id, chain.extensions, group.name))
        return EventOutcome(event_id, listener.meta.name, namespace, listener.meta.uid, tuple(outcomes))

    def _run(
        self,
        listener: EventListener,
        selected: Selected,
        request: EventRequest,
        event_id: str,
        extensions: Mapping[str, Any],
        group: str,
    ) -> TriggerOutcome:
        try:
            return self._run_trigger(listener, selected, request, event_id, extensions, group)
        except Exception as exc:  # a bug must cost one trigger, not the event: record it and go on
            log.exception("trigger %s of event %s failed", selected.name, event_id)
            trigger_id = f"namespaces/{selected.namespace}/triggers/{selected.name}"
            return TriggerOutcome(selected.name, selected.namespace, trigger_id, "failed",
                                  f"internal error: {type(exc).__name__}: {exc}", group=group)  # fmt: skip

    def _run_trigger(
        self,
        listener: EventListener,
        selected: Selected,
        request: EventRequest,
        event_id: str,
        extensions: Mapping[str, Any],
        group: str,
    ) -> TriggerOutcome:
        trigger_id = f"namespaces/{selected.namespace}/triggers/{selected.name}"
        base = TriggerOutcome(selected.name, selected.namespace, trigger_id, "failed", group=group)
        if selected.trigger is None:
            return replace(base, reason=selected.error)
        trigger = selected.trigger
        base = replace(base, service_account_name=trigger.spec.service_account_name or listener.service_account_name)
        chain = run_chain(
            trigger.spec.interceptors,
            body=request.body,
            headers=request.headers,
            extensions=extensions,
            context=RequestContext(request.url, event_id, trigger_id),
            listener_namespace=listener.meta.namespace or "default",
            services=self.services,
        )
        if chain.stopped_by:
            status: Status = "failed" if chain.failed else "stopped"
            return replace(base, status=status, reason=chain.reason, interceptor=chain.stopped_by,
                           extensions=chain.extensions)  # fmt: skip
        values: Mapping[str, str] = {}
        try:
            params, template = self._bindings_and_template(trigger)
            event = event_object(chain.body, chain.headers, chain.extensions, event_id)
            values = resolve_params(params, template.spec.params, event)
            resources = render(
                template.spec,
                values,
                old_escape=OLD_ESCAPE in template.meta.annotations,
                new_uid=self.new_uid,
                listener=listener.meta.name,
                trigger=selected.name,
                event_id=event_id,
                namespace=selected.namespace,
            )
        except (BindingError, TemplateError) as exc:  # a template's error keeps the params that broke it
            return replace(base, reason=str(exc), extensions=chain.extensions, params=values)
        return replace(base, status="created", params=values, extensions=chain.extensions,
                       resources=tuple(resources))  # fmt: skip

    def _bindings_and_template(self, trigger: Trigger) -> tuple[list[Param], TriggerTemplate]:
        namespace = trigger.meta.namespace or "default"
        groups: list[tuple[Param, ...]] = []
        for binding in trigger.spec.bindings:
            if binding.name and binding.value is not None:
                groups.append((Param(binding.name, binding.value),))
                continue
            cluster = binding.kind == CLUSTER_TRIGGER_BINDING
            found = self._lookup(binding.kind, None if cluster else namespace, binding.ref)
            if not isinstance(found, TriggerBinding):
                raise BindingError(f"failed to resolve bindings: error getting {binding.kind} {binding.ref}: {found}")
            groups.append(found.params)
        params = merged_binding_params(groups)
        if trigger.spec.template_spec is not None:
            return params, TriggerTemplate(trigger.meta, trigger.spec.template_spec)
        name = trigger.spec.template_ref or ""
        template = self._lookup("TriggerTemplate", namespace, name)
        if not isinstance(template, TriggerTemplate):
            raise BindingError(f"error getting TriggerTemplate {name}: {template}")
        return params, template

    def _lookup(self, kind: str, namespace: str | None, name: str) -> TriggerBinding | TriggerTemplate | str:
        """The admitted resource, or why there is none (worded as the Kubernetes API words it)."""
        manifest = self.store.get(kind, namespace, name)
        if manifest is None:
            return f'{kind.lower()}s.triggers.tekton.dev "{name}" not found'
        try:
            resource = parse_resource(manifest, namespace=namespace or "default")
        except InvalidResource as exc:
            return str(exc)
        if not isinstance(resource, TriggerBinding | TriggerTemplate):
            return f"{name} is not a {kind}"
        return resource


__all__ = ["EventOutcome", "EventRequest", "RenderedResource", "TriggerOutcome", "TriggersEngine"]
