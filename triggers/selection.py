"""Which triggers an event runs (tektoncd/triggers: pkg/sink/sink.go selectTriggers, merge,
processTriggerGroups): the EventListener's own entries, Trigger resources its selectors pick, and per trigger
group the Trigger resources the group's selector picks. Nothing is de-duplicated, as upstream."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from triggers.admission import parse_resource
from triggers.fielderrors import InvalidResource
from triggers.ports import TriggersStore
from triggers.resources import EventListener, LabelSelector, Meta, Trigger


@dataclass(frozen=True)
class Selected:
    """A trigger to run, or (trigger None) a reference that could not be read and why."""

    name: str
    namespace: str
    trigger: Trigger | None
    error: str = ""


def listener_triggers(listener: EventListener, store: TriggersStore) -> list[Selected]:
    """The triggers of `spec.triggers` (inline ones become Triggers in the listener's namespace), then those
    `spec.namespaceSelector` / `spec.labelSelector` select."""
    namespace = listener.meta.namespace or "default"
    out = []
    for entry in listener.triggers:
        if not entry.trigger_ref:
            out.append(Selected(entry.name, namespace, Trigger(Meta(entry.name, namespace), entry.spec)))
            continue
        manifest = store.get("Trigger", namespace, entry.trigger_ref)
        if manifest is None:
            error = (
                f"Error getting Trigger {entry.trigger_ref} in Namespace {namespace}: "
                f'triggers.triggers.tekton.dev "{entry.trigger_ref}" not found'
            )
            out.append(Selected(entry.trigger_ref, namespace, None, error))
            continue
        out.append(_admitted(manifest, entry.trigger_ref, namespace))
    if listener.namespace_names or listener.label_selector is not None:
        out.extend(select(store, namespace, listener.namespace_names, listener.label_selector))
    return out


def select(
    store: TriggersStore, listener_namespace: str, names: tuple[str, ...], labels: LabelSelector | None
) -> list[Selected]:
    """Trigger resources in the named namespaces (`*`: all; none named: the listener's) matching the labels."""
    manifests: Iterable[Mapping[str, Any]]
    if names == ("*",):
        manifests = list(store.list("Trigger", None))
    else:
        manifests = [m for ns in names or (listener_namespace,) for m in store.list("Trigger", ns)]
    out = []
    for manifest in manifests:
        metadata = manifest.get("metadata") or {}
        name = str(metadata.get("name", ""))
        namespace = str(metadata.get("namespace") or listener_namespace)
        if labels is not None and not labels.matches(metadata.get("labels") or {}):
            continue
        out.append(_admitted(manifest, name, namespace))
    return out


def _admitted(manifest: Mapping[str, Any], name: str, namespace: str) -> Selected:
    try:
        trigger = parse_resource(manifest, namespace=namespace)
    except InvalidResource as exc:
        return Selected(name, namespace, None, f"Error getting Trigger {name} in Namespace {namespace}: {exc}")
    if not isinstance(trigger, Trigger):
        return Selected(name, namespace, None, f"Error getting Trigger {name}: not a Trigger")
    return Selected(trigger.meta.name, trigger.meta.namespace or namespace, trigger)
