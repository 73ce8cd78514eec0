"""TriggerTemplate rendering (tektoncd/triggers: pkg/template/resource.go, pkg/resources/create.go).

Params are pasted into each resource template's JSON text, not into a parsed object, so a value that breaks
the JSON fails the trigger as it does upstream. `$(uid)` is one UUID per trigger execution, shared by all the
templates; the created objects get the Triggers labels and the Trigger's namespace when they name none.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from triggers.gojson import marshal
from triggers.jsonbody import BodyError, decode
from triggers.resources import LABEL_EVENT_ID, LABEL_EVENTLISTENER, LABEL_TRIGGER, TriggerTemplateSpec


class TemplateError(Exception):
    """A rendered template that is not a JSON object Kubernetes would take; the message is upstream's."""


@dataclass(frozen=True)
class RenderedResource:
    """One object a trigger creates: its manifest, and where it goes."""

    api_version: str
    kind: str
    namespace: str
    name: str
    generate_name: str
    manifest: Mapping[str, Any]


def substitute(text: str, params: Mapping[str, str], *, old_escape: bool) -> str:
    """`$(tt.params.NAME)` replaced in a template's JSON text, raw (with `"` escaped under old-escape-quotes)."""
    for name, value in params.items():
        text = text.replace(f"$(tt.params.{name})", value.replace('"', '\\"') if old_escape else value)
    return text


def render(
    spec: TriggerTemplateSpec,
    params: Mapping[str, str],
    *,
    old_escape: bool,
    new_uid: Callable[[], str],
    listener: str,
    trigger: str,
    event_id: str,
    namespace: str,
) -> list[RenderedResource]:
    """The objects a template makes for one trigger execution; TemplateError when one is not valid JSON."""
    uid = new_uid()
    out = []
    for template in spec.resourcetemplates:
        text = substitute(marshal(template), params, old_escape=old_escape).replace("$(uid)", uid)
        try:
            obj = decode(text.encode())
        except BodyError as exc:
            raise TemplateError(f"couldn't unmarshal json from the TriggerTemplate: {exc}") from None
        if not isinstance(obj, dict):
            raise TemplateError("couldn't unmarshal json from the TriggerTemplate: not an object")
        obj = json.loads(text)  # checked above as Go checks it; integers stay integers, as the API server keeps them
        meta = obj.setdefault("metadata", {})
        if not isinstance(meta, dict):
            raise TemplateError("couldn't unmarshal json from the TriggerTemplate: metadata is not an object")
        labels = meta.get("labels")
        if not isinstance(labels, dict):
            labels = meta["labels"] = {}
        labels.update({LABEL_EVENTLISTENER: listener, LABEL_TRIGGER: trigger, LABEL_EVENT_ID: event_id})
        given = meta.get("namespace")
        target = given if isinstance(given, str) and given else namespace
        meta["namespace"] = target
        out.append(
            RenderedResource(
                api_version=str(obj.get("apiVersion", "")),
                kind=str(obj.get("kind", "")),
                namespace=target,
                name=str(meta.get("name") or ""),
                generate_name=str(meta.get("generateName") or ""),
                manifest=obj,
            )
        )
    return out
