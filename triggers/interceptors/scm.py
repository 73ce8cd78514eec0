"""The GitLab, Bitbucket (Server and Cloud) and Slack core interceptors (tektoncd/triggers:
pkg/interceptors/gitlab/gitlab.go, bitbucket/bitbucket.go, slack/slack.go)."""

from __future__ import annotations

import hmac
import json

from triggers.headers import first_value
from triggers.interceptors import (
    FAILED_PRECONDITION,
    INVALID_ARGUMENT,
    NOT_FOUND,
    InterceptorRequest,
    InterceptorResponse,
    fail,
    proceed,
)
from triggers.interceptors.common import (
    CoreServices,
    ParamsError,
    check_signature,
    checked_event,
    credential,
    string_list,
)

FORM = "application/x-www-form-urlencoded"


def gitlab(request: InterceptorRequest, services: CoreServices) -> InterceptorResponse:
    """`eventTypes` against X-Gitlab-Event, then the X-Gitlab-Token compared in constant time with the Secret."""
    checked = checked_event(request, "X-Gitlab-Event")
    if isinstance(checked, InterceptorResponse):
        return checked
    _, ref = checked
    if ref is not None:
        found = credential(
            request, services, ref, interceptor="gitlab", header="X-Gitlab-Token", missing_code=INVALID_ARGUMENT
        )
        if isinstance(found, InterceptorResponse):
            return found
        if not hmac.compare_digest(found[0].encode(), found[1]):
            return fail(INVALID_ARGUMENT, "Invalid X-GitLab-Token")
    return proceed()


def bitbucket(request: InterceptorRequest, services: CoreServices) -> InterceptorResponse:
    """`eventTypes` against X-Event-Key, then X-Hub-Signature (sha1= or sha256=) as GitHub's is checked."""
    checked = checked_event(request, "X-Event-Key")
    if isinstance(checked, InterceptorResponse):
        return checked
    _, ref = checked
    if ref is not None:
        found = credential(
            request, services, ref, interceptor="bitbucket", header="X-Hub-Signature", missing_code=INVALID_ARGUMENT
        )
        if isinstance(found, InterceptorResponse):
            return found
        problem = check_signature(found[0], request.body.encode(), found[1])
        if problem:
            return fail(FAILED_PRECONDITION, f"error validating signature: {problem}")
    return proceed()


def slack(request: InterceptorRequest, services: CoreServices) -> InterceptorResponse:
    """The requested fields of a Slack form (already turned into JSON by the sink) into extensions.
    The signature is not verified, as upstream (triggers#2029); only its presence is required."""
    del services
    if first_value(request.header, "Content-Type") != FORM or not first_value(request.header, "X-Slack-Signature"):
        return fail(INVALID_ARGUMENT, "missing header in payload: ContentType application/x-www-form-urlencoded")
    try:
        payload = json.loads(request.body)
        if not isinstance(payload, dict) or not all(
            isinstance(v, list) and all(isinstance(s, str) for s in v) for v in payload.values()
        ):
            raise ValueError("json: cannot unmarshal into Go value of type map[string][]string")
    except ValueError as exc:
        return fail(INVALID_ARGUMENT, f"failed to unmarshl slack payload: {exc}")
    try:
        fields = string_list(request.interceptor_params, "requestedFields")
    except ParamsError as exc:
        return fail(INVALID_ARGUMENT, f"failed to parse interceptor params: {exc}")
    if fields is None:
        return fail(NOT_FOUND, "missing requested field definition")
    extensions = {}
    for name in fields:
        if name not in payload:
            shown = " ".join(f"{k}:[{' '.join(v)}]" for k, v in sorted(payload.items()))
            return fail(NOT_FOUND, f"requested field does not exists in payload map[{shown}]")
        extensions[name] = payload[name]
    return proceed(extensions)
