"""Interceptors: the request/response protocol they share (tektoncd/triggers: pkg/apis/triggers/v1beta1/
interceptor_types.go) and the core ones Triggers ships, run in-process."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from triggers.gojson import marshal

# gRPC codes (google.golang.org/grpc/codes), which interceptors answer with as numbers.
CODES = {
    0: "OK", 1: "Canceled", 2: "Unknown", 3: "InvalidArgument", 4: "DeadlineExceeded", 5: "NotFound",
    6: "AlreadyExists", 7: "PermissionDenied", 8: "ResourceExhausted", 9: "FailedPrecondition", 10: "Aborted",
    11: "OutOfRange", 12: "Unimplemented", 13: "Internal", 14: "Unavailable", 15: "DataLoss", 16: "Unauthenticated",
}  # fmt: skip
INVALID_ARGUMENT, NOT_FOUND, FAILED_PRECONDITION, INTERNAL = 3, 5, 9, 13


@dataclass(frozen=True)
class RequestContext:
    event_url: str
    event_id: str
    trigger_id: str

    @property
    def namespace(self) -> str:
        """The namespace in `namespaces/<ns>/triggers/<name>` (ParseTriggerID: exactly 4 segments)."""
        parts = self.trigger_id.split("/")
        return parts[1] if len(parts) == 4 else ""


@dataclass(frozen=True)
class InterceptorRequest:
    """What an interceptor is given: the body as the raw text, every header value, the extensions so far."""

    body: str
    header: Mapping[str, list[str]]
    extensions: Mapping[str, Any]
    interceptor_params: Mapping[str, Any]
    context: RequestContext

    def to_json(self) -> bytes:
        """The JSON a custom interceptor receives (omitempty on body and extensions, as Go writes it)."""
        document: dict[str, Any] = {}
        if self.body:
            document["body"] = self.body
        document["header"] = {k: list(v) for k, v in self.header.items()}
        if self.extensions:
            document["extensions"] = dict(self.extensions)
        document["interceptor_params"] = dict(self.interceptor_params)
        document["context"] = {
            "event_url": self.context.event_url,
            "event_id": self.context.event_id,
            "trigger_id": self.context.trigger_id,
        }
        return _struct_order(document).encode()


def _struct_order(document: dict[str, Any]) -> str:
    """Go writes struct fields in declaration order (body, header, extensions, interceptor_params, context)."""
    parts = [f'"{key}":{marshal(value)}' for key, value in document.items()]
    return "{" + ",".join(parts) + "}"


@dataclass(frozen=True)
class InterceptorResponse:
    """`continue` says whether the trigger goes on; a stop carries a gRPC code and a message."""

    continue_: bool
    extensions: Mapping[str, Any] = field(default_factory=dict)
    code: int = 0
    message: str = ""

    def stop_reason(self) -> str:
        """The text upstream logs when an interceptor stops a trigger (tektoncd/triggers: pkg/sink/sink.go)."""
        name = CODES.get(self.code, f"Code({self.code})")
        return f"interceptor stopped trigger processing: rpc error: code = {name} desc = {self.message}"


def fail(code: int, message: str) -> InterceptorResponse:
    """A response that stops the trigger (tektoncd/triggers: pkg/interceptors/interceptors.go Fail)."""
    return InterceptorResponse(False, {}, code, message)


def proceed(extensions: Mapping[str, Any] | None = None) -> InterceptorResponse:
    return InterceptorResponse(True, dict(extensions or {}))
