"""The sink's HTTP answers (tektoncd/triggers: pkg/sink/sink.go Response, pkg/sink/validate_payload.go,
pkg/adapter/adapter.go): 202 with the event's ids before any interceptor runs, 400 for a body that is not a
JSON object unless payload validation is off, 500 with an empty body when the EventListener is missing."""

from __future__ import annotations

from dataclasses import dataclass

from triggers.cloudevents import ACCEPTED, binary_headers
from triggers.gojson import quote
from triggers.jsonbody import BodyError, decode_object
from triggers.resources import EventListener


@dataclass(frozen=True)
class SinkAnswer:
    """What the sink answers; `accepted` says whether the event is to be processed."""

    status: int
    body: bytes
    content_type: str = "application/json"
    accepted: bool = False
    headers: tuple[tuple[str, str], ...] = ()  # more headers: a CloudEvent's attributes


def _object(fields: list[tuple[str, str]]) -> bytes:
    """A JSON object as Go's json.Encoder writes a struct: fields in order, HTML-safe, then a newline."""
    return ("{" + ",".join(f"{quote(k)}:{quote(v)}" for k, v in fields) + "}\n").encode()


def answer_event(listener: EventListener, body: bytes, event_id: str, *, cloudevent: bool = False) -> SinkAnswer:
    """The answer to an event for an existing listener; to a CloudEvent (`cloudevent`), a CloudEvent whose data is
    the answer's JSON (triggers.cloudevents)."""
    name, namespace = listener.meta.name, listener.meta.namespace or "default"
    if listener.payload_validation:
        try:
            decode_object(body)
        except BodyError as exc:
            message = f"Invalid event body format : {exc}"
            fields = [("eventListener", name), ("namespace", namespace), ("eventListenerUID", ""),
                      ("errorMessage", message)]  # fmt: skip
            return SinkAnswer(400, _object(fields))
    fields = [("eventListener", name), ("namespace", namespace), ("eventListenerUID", listener.meta.uid),
              ("eventID", event_id)]  # fmt: skip
    if cloudevent:  # the data as json.Marshal writes it: no newline
        attributes = binary_headers(event_id, ACCEPTED, name, f"{namespace}.{name} accepted {event_id}")
        return SinkAnswer(202, _object(fields).rstrip(b"\n"), accepted=True, headers=tuple(attributes))
    return SinkAnswer(202, _object(fields), accepted=True)


def refusal(status: int, name: str, namespace: str, message: str) -> SinkAnswer:
    """An error answer in the shape of upstream's 400 (taskhub's 404 and 413 too): the listener and the reason."""
    fields = [("eventListener", name), ("namespace", namespace), ("eventListenerUID", ""), ("errorMessage", message)]
    return SinkAnswer(status, _object(fields))


def listener_missing() -> SinkAnswer:
    """No such EventListener: 500 with an empty body, as upstream."""
    return SinkAnswer(500, b"", content_type="text/plain")


def live() -> SinkAnswer:
    """`/live`: 200 `ok`."""
    return SinkAnswer(200, b"ok", content_type="text/plain")
