"""What the core interceptors share: their services, params, Secret reads and HMAC signatures."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from triggers.headers import first_value
from triggers.interceptors import (
    FAILED_PRECONDITION,
    INVALID_ARGUMENT,
    InterceptorRequest,
    InterceptorResponse,
    fail,
)
from triggers.ports import InterceptorHTTP, SecretStore

_HASHES = {"sha1": hashlib.sha1, "sha256": hashlib.sha256, "sha512": hashlib.sha512}
GITHUB_API = "https://api.github.com/"


@dataclass(frozen=True)
class CoreServices:
    """The collaborators of the core interceptors: Secrets, and HTTP for the GitHub API (None: no calls)."""

    secrets: SecretStore
    http: InterceptorHTTP | None = None
    github_api: str = GITHUB_API


class ParamsError(ValueError):
    """Interceptor params of the wrong shape (upstream: `failed to parse interceptor params: ...`)."""


class SecretError(Exception):
    """A Secret or key that is not there, worded as the Kubernetes API and the secret getter word it."""


def secret_ref(params: Mapping[str, Any], name: str) -> dict[str, str] | None:
    """A `{secretName, secretKey}` param, or None when absent."""
    value = params.get(name)
    if value is None:
        return None
    if not isinstance(value, dict) or any(not isinstance(value.get(k, ""), str) for k in ("secretName", "secretKey")):
        raise ParamsError(f"json: cannot unmarshal {name} into a SecretRef")
    return {"secretName": value.get("secretName", ""), "secretKey": value.get("secretKey", "")}


def string_list(params: Mapping[str, Any], name: str) -> list[str] | None:
    value = params.get(name)
    if value is None:
        return None
    if not isinstance(value, list) or any(not isinstance(v, str) for v in value):
        raise ParamsError(
            f"json: cannot unmarshal {json.dumps(value)[:60]} into Go struct field .{name} of type []string"
        )
    return value


def read_secret(services: CoreServices, namespace: str, ref: Mapping[str, str]) -> bytes:
    """The value of a Secret key in the trigger's namespace (tektoncd/triggers: pkg/interceptors/secret_getter.go)."""
    data = services.secrets.secret_data(namespace, ref["secretName"])
    if data is None:
        raise SecretError(f'secrets "{ref["secretName"]}" not found')
    value = data.get(ref["secretKey"])
    if value is None:
        raise SecretError(f"cannot find {ref['secretKey']} key in secret {ref['secretName']}")
    return value


def check_signature(signature: str, payload: bytes, secret: bytes) -> str | None:
    """go-github's ValidateSignature: None when `<algo>=<hex>` is the HMAC of the payload, else its error text.
    The prefix picks the hash, so `sha1=` in X-Hub-Signature-256 is checked with SHA-1 (as upstream)."""
    algo, sep, digest = signature.partition("=")
    if not sep:
        return f"error parsing signature {json.dumps(signature)}"
    hash_function = _HASHES.get(algo)
    if hash_function is None:
        return f"unknown hash type prefix: {json.dumps(algo)}"
    try:
        expected = bytes.fromhex(digest)
    except ValueError:
        return f"error decoding signature {json.dumps(signature)}: encoding/hex: invalid byte"
    actual = hmac.new(secret, payload, hash_function).digest()
    if not hmac.compare_digest(actual, expected):
        return "payload signature check failed"
    return None


def event_allowed(allowed: list[str] | None, event: str) -> bool:
    """eventTypes: absent allows every event; present (even empty) must contain it, case-sensitively."""
    return allowed is None or event in allowed


def checked_event(
    request: InterceptorRequest, event_header: str
) -> tuple[str, dict[str, str] | None] | InterceptorResponse:
    """The event name and `secretRef` of a request whose `eventTypes` allow its event, else the failure."""
    try:
        event_types = string_list(request.interceptor_params, "eventTypes")
        ref = secret_ref(request.interceptor_params, "secretRef")
    except ParamsError as exc:
        return fail(INVALID_ARGUMENT, f"failed to parse interceptor params: {exc}")
    event = first_value(request.header, event_header)
    if not event_allowed(event_types, event):
        return fail(FAILED_PRECONDITION, f"event type {event} is not allowed")
    return event, ref


def credential(
    request: InterceptorRequest,
    services: CoreServices,
    ref: dict[str, str],
    *,
    interceptor: str,
    header: str,
    missing_code: int,
) -> tuple[str, bytes] | InterceptorResponse:
    """The credential header's value and the Secret's value to check it against, else the failure."""
    if not ref["secretKey"]:
        return fail(FAILED_PRECONDITION, f"{interceptor} interceptor secretRef.secretKey is empty")
    sent = first_value(request.header, header)
    if not sent:
        return fail(missing_code, f"no {header} header set")
    try:
        return sent, read_secret(services, request.context.namespace, ref)
    except SecretError as exc:
        return fail(FAILED_PRECONDITION, f"error getting secret: {exc}")
