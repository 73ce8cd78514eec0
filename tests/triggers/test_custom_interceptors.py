"""Acceptance check 16 and the bad-interceptor cases: custom interceptors and legacy webhooks called over real
HTTP on 127.0.0.1 through RequestsInterceptorHTTP (allow-check, no redirects, timeout, size cap)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator

import pytest

from tests.triggers.support import LocalServer, QuietHandler, Setup
from triggers.http_client import RequestsInterceptorHTTP, loopback_only


class Interceptor(LocalServer):
    """A real HTTP server whose answer each test sets; it records what it received."""

    def __init__(self) -> None:
        self.status, self.body, self.headers = 200, b"{}", {}  # type: ignore[var-annotated]
        self.received: list[dict] = []
        self.release = threading.Event()
        self.hang = False
        owner = self

        class Handler(QuietHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", 0))
                owner.received.append(
                    {"path": self.path, "headers": dict(self.headers), "body": self.rfile.read(length)}
                )
                if owner.hang:
                    owner.release.wait()
                self.send_body(owner.status, owner.body, owner.headers)

        super().__init__(Handler)

    def answer(self, document: dict, status: int = 200) -> None:
        self.status, self.body = status, json.dumps(document).encode()

    def close(self) -> None:
        self.release.set()
        super().close()


@pytest.fixture
def interceptor() -> Iterator[Interceptor]:
    server = Interceptor()
    yield server
    server.close()


def setup_for(url: str, *, http: RequestsInterceptorHTTP | None = None, kind: str = "ClusterInterceptor") -> Setup:
    namespace_line = "" if kind == "ClusterInterceptor" else "  namespace: ns1\n"
    ref_kind = "ClusterInterceptor" if kind == "ClusterInterceptor" else "NamespacedInterceptor"
    text = f"""
apiVersion: triggers.tekton.dev/v1alpha1
kind: {kind}
metadata:
  name: ic
{namespace_line}spec:
  clientConfig: {{url: "{url}/ic"}}
---
apiVersion: triggers.tekton.dev/v1beta1
kind: EventListener
metadata: {{name: el1}}
spec:
  triggers:
  - name: custom
    interceptors:
    - ref: {{name: ic, kind: {ref_kind}}}
      params:
      - {{name: p, value: {{nested: [1, "two"]}}}}
    bindings: [{{name: z, value: $(extensions.x.y)}}]
    template:
      spec:
        params: [{{name: z}}]
        resourcetemplates:
        - {{apiVersion: v1, kind: ConfigMap, metadata: {{generateName: c-}}, data: {{value: '$(tt.params.z)'}}}}
"""
    return Setup(text, http=http or RequestsInterceptorHTTP(loopback_only, timeout=5))


@pytest.mark.parametrize("kind", ["ClusterInterceptor", "Interceptor"])
def test_16_custom_interceptor_protocol(interceptor, kind):
    interceptor.answer({"continue": True, "extensions": {"x": {"y": "z"}}})
    answer, outcome = setup_for(interceptor.url, kind=kind).send(
        "el1", b'{"a":1}', [("X-Foo", "1"), ("X-Foo", "2")], url="/p?q=1", event_id="ev-16"
    )
    assert answer.status == 202
    (trigger,) = outcome.triggers
    assert trigger.status == "created", trigger.reason
    assert trigger.params == {"z": "z"}
    (call,) = interceptor.received
    assert call["path"] == "/ic"
    assert call["headers"]["Content-Type"] == "application/json"
    sent = json.loads(call["body"])
    assert sent == {
        "body": '{"a":1}',
        "header": {"X-Foo": ["1", "2"]},
        "interceptor_params": {"p": {"nested": [1, "two"]}},
        "context": {"event_url": "/p?q=1", "event_id": "ev-16", "trigger_id": "namespaces/ns1/triggers/custom"},
    }


@pytest.mark.parametrize(
    ("document", "status", "outcome_status", "reason"),
    [
        ({"continue": False, "status": {"code": 9, "message": "no"}}, 200, "stopped",
         "interceptor stopped trigger processing: rpc error: code = FailedPrecondition desc = no"),
        ({"continue": False, "status": {"code": "PERMISSION_DENIED", "message": "who"}}, 200, "stopped",
         "rpc error: code = PermissionDenied desc = who"),
        ({}, 200, "stopped", "rpc error: code = OK desc = "),
        ({"error": "boom"}, 500, "failed", 'interceptor response was not 200: {"error": "boom"}'),
        ({"continue": True, "status": {"code": 17}}, 200, "failed", "invalid code 17"),
    ],
    ids=["continue-false", "named-code", "continue-missing", "http-500", "unknown-code"],
)  # fmt: skip
def test_16_custom_interceptor_stops_or_fails(interceptor, document, status, outcome_status, reason):
    interceptor.answer(document, status)
    answer, outcome = setup_for(interceptor.url).send("el1", b'{"a":1}')
    assert answer.status == 202
    (trigger,) = outcome.triggers
    assert (trigger.status, trigger.interceptor, trigger.resources) == (outcome_status, "ic", ())
    assert reason in trigger.reason


def test_a_hanging_interceptor_times_out(interceptor):
    interceptor.hang = True
    http = RequestsInterceptorHTTP(loopback_only, timeout=0.3)
    _, outcome = setup_for(interceptor.url, http=http).send("el1", b"{}")
    (trigger,) = outcome.triggers
    assert trigger.status == "failed"
    assert "timeout" in trigger.reason.lower() or "timed out" in trigger.reason


def test_a_redirect_is_not_followed(interceptor):
    interceptor.status, interceptor.headers = 302, {"Location": "http://169.254.169.254/latest/meta-data"}
    _, outcome = setup_for(interceptor.url).send("el1", b"{}")
    assert outcome.triggers[0].reason.endswith("redirect refused (302 to http://169.254.169.254/latest/meta-data)")
    assert len(interceptor.received) == 1


def test_an_oversized_answer_is_refused(interceptor):
    interceptor.answer({"continue": True, "extensions": {"big": "x" * 5000}})
    http = RequestsInterceptorHTTP(loopback_only, max_bytes=1024)
    _, outcome = setup_for(interceptor.url, http=http).send("el1", b"{}")
    assert outcome.triggers[0].reason.endswith("response over 1024 bytes")


def test_an_address_the_check_refuses_is_never_contacted(interceptor):
    http = RequestsInterceptorHTTP(lambda host, address: False)
    _, outcome = setup_for(interceptor.url, http=http).send("el1", b"{}")
    assert outcome.triggers[0].status == "failed"
    assert "address 127.0.0.1 of 127.0.0.1 is not allowed" in outcome.triggers[0].reason
    assert interceptor.received == []


def test_without_an_http_client_custom_interceptors_fail_with_a_reason(interceptor):
    setup = setup_for(interceptor.url)
    setup.engine.services = type(setup.engine.services)(setup.store, setup.engine.services.core, None)
    _, outcome = setup.send("el1", b"{}")
    assert "calls to custom interceptors are not enabled" in outcome.triggers[0].reason


def test_unknown_cluster_interceptor_fails_the_trigger():
    text = """
apiVersion: triggers.tekton.dev/v1beta1
kind: EventListener
metadata: {name: el1}
spec:
  triggers:
  - name: t
    interceptors: [{ref: {name: nowhere}}]
    template: {spec: {resourcetemplates: [{apiVersion: v1, kind: ConfigMap, metadata: {name: c}}]}}
"""
    _, outcome = Setup(text).send("el1", b"{}")
    assert outcome.triggers[0].reason == (
        'url resolution failed for interceptor nowhere with: clusterinterceptors.triggers.tekton.dev "nowhere" '
        "not found"
    )


def test_legacy_webhook_rewrites_body_and_headers(interceptor):
    interceptor.body = b'{"rewritten": "yes"}'
    interceptor.headers = {"X-Added": "by-hook"}
    text = f"""
apiVersion: triggers.tekton.dev/v1beta1
kind: EventListener
metadata: {{name: el1}}
spec:
  triggers:
  - name: hooked
    interceptors:
    - webhook:
        url: {interceptor.url}/hook
        header: [{{name: X-Static, value: s}}]
    bindings:
    - {{name: r, value: $(body.rewritten)}}
    - {{name: h, value: $(header.X-Added)}}
    template:
      spec:
        params: [{{name: r}}, {{name: h}}]
        resourcetemplates:
        - apiVersion: v1
          kind: ConfigMap
          metadata: {{generateName: c-}}
          data: {{v: '$(tt.params.r)/$(tt.params.h)'}}
"""
    setup = Setup(text, http=RequestsInterceptorHTTP(loopback_only))
    _, outcome = setup.send("el1", b'{"a":1}', url="/hooked?x=1")
    (trigger,) = outcome.triggers
    assert trigger.status == "created", trigger.reason
    assert trigger.resources[0].manifest["data"]["v"] == "yes/by-hook"
    (call,) = interceptor.received
    assert call["body"] == b'{"a":1}'
    assert call["headers"]["X-Static"] == "s"
    assert call["headers"]["Eventlistener-Request-Url"] == "/hooked?x=1"
