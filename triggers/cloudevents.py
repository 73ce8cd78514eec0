"""CloudEvents, as upstream's sink speaks them (tektoncd/triggers: pkg/sink/sink.go, pkg/sink/cloudevent/
cloudevent.go, pkg/reconciler/events/event.go), in the HTTP binding's binary mode (cloudevents/spec:
cloudevents/bindings/http-protocol-binding.md):

- an incoming request that is a CloudEvent (a `Ce-Specversion` header of a known version, or a structured or
  batch `application/cloudevents...+json` body) is answered with a CloudEvent: type
  `dev.tekton.event.triggers.accepted.v1`, id the eventID, source the listener's name, subject
  `<namespace>.<name> accepted <eventID>`, and the sink's answer as its JSON data;
- a listener with `spec.cloudEventURI` is told how each event went: `started` (data: the request's headers),
  `successful` once per trigger that created its objects, `done`; id the eventID, source
  `/apis/triggers.tekton.dev/v1beta1/namespaces/<ns>/EventListener/<name>`, subject `<name> processing <eventID>`.
  Sent while the event is processed, by its job (upstream sends `started` before answering), each from a thread of
  its own as upstream's goroutines, so a slow receiver delays no run; retried with exponential backoff from 10 ms,
  10 times; a failure is logged, as upstream, and changes nothing else.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from triggers.ports import InterceptorHTTP, InterceptorTransportError

log = logging.getLogger(__name__)

SPEC_VERSIONS = ("1.0", "0.3")  # what the Go SDK knows; another Ce-Specversion is not a CloudEvent to it
ACCEPTED = "dev.tekton.event.triggers.accepted.v1"
STARTED = "dev.tekton.event.triggers.started.v1"
SUCCESSFUL = "dev.tekton.event.triggers.successful.v1"
DONE = "dev.tekton.event.triggers.done.v1"
RETRIES = 10
FIRST_BACKOFF = 0.01
RETRIED_STATUSES = frozenset({404, 413, 425, 429, 502, 503, 504})  # the Go SDK's retriable answers


def is_cloudevent(headers: Sequence[tuple[str, str]]) -> bool:
    """Whether a request is a CloudEvent in the binary, structured or batch mode of the HTTP binding."""
    for name, value in headers:
        lowered = name.lower()
        if lowered == "content-type":
            media = value.split(";", 1)[0].strip().lower()
            if media in ("application/cloudevents+json", "application/cloudevents-batch+json"):
                return True
        elif lowered == "ce-specversion" and value.strip() in SPEC_VERSIONS:
            return True
    return False


def binary_headers(event_id: str, event_type: str, source: str, subject: str) -> list[tuple[str, str]]:
    """The context attributes of a CloudEvent with JSON data, as binary-mode HTTP headers."""
    return [("Ce-Specversion", "1.0"), ("Ce-Id", event_id), ("Ce-Source", source), ("Ce-Type", event_type),
            ("Ce-Subject", subject)]  # fmt: skip


def headers_json(headers: Sequence[tuple[str, str]]) -> bytes:
    """Request headers as Go marshals an http.Header: canonical name -> every value, names sorted."""
    grouped: dict[str, list[str]] = {}
    for name, value in headers:
        grouped.setdefault(name, []).append(value)
    return json.dumps(grouped, sort_keys=True, separators=(",", ":")).encode()


@dataclass
class StatusEvents:
    """The CloudEvents one event's processing sends to its listener's cloudEventURI."""

    http: InterceptorHTTP
    uri: str
    namespace: str
    listener: str
    event_id: str
    sleep: Callable[[float], None] = field(default=time.sleep)

    def send(self, event_type: str, data: bytes = b"null") -> threading.Thread:
        """Sends one from a thread of its own; the thread is returned, started."""
        thread = threading.Thread(target=self._send, args=(event_type, data), name=f"cloudevent-{event_type}")
        thread.daemon = True
        thread.start()
        return thread

    def _send(self, event_type: str, data: bytes) -> None:
        source = f"/apis/triggers.tekton.dev/v1beta1/namespaces/{self.namespace}/EventListener/{self.listener}"
        headers = dict(binary_headers(self.event_id, event_type, source, f"{self.listener} processing {self.event_id}"))
        headers["Content-Type"] = "application/json"
        backoff, problem = FIRST_BACKOFF, ""
        for attempt in range(RETRIES + 1):
            try:
                reply = self.http.send("POST", self.uri, headers, data)
            except InterceptorTransportError as exc:
                problem = str(exc)
            else:
                if 200 <= reply.status < 300:
                    return
                problem = f"HTTP {reply.status}"
                if reply.status not in RETRIED_STATUSES:
                    break
            if attempt < RETRIES:
                self.sleep(backoff)
                backoff *= 2
        log.error("event %s: could not send %s to %s: %s", self.event_id, event_type, self.uri, problem)
