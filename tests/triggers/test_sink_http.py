"""The 20 acceptance checks of the Triggers spec end to end over HTTP, on SQLite and PostgreSQL: the provider's
request to the hub's sink, the recorded event processed by a worker as a job, the run records it created (with
upstream's labels and the params), or the recorded reason it created none. Bad input never gets a 500 and never
makes a run."""

from __future__ import annotations

import json
import re

import pytest
import requests

from jobs import TRIGGER_EVENT, JobQueue
from tests.jobs.processes import wait_until
from tests.triggers.sink_harness import hub, labels, params  # noqa: F401 (hub: the fixture)
from tests.triggers.support import github_signature
from tests.triggers.test_acceptance_bindings import CEL_BODY, CEL_TRIGGER, listener
from tests.triggers.test_acceptance_providers import (
    BITBUCKET_BODY,
    BITBUCKET_SERVER,
    EMBEDDED,
    GITEA,
    GITEA_BODY,
    GITHUB,
    GITHUB_BODY,
    GITLAB,
    GITLAB_PUSH,
    SLACK,
    SLACK_FORM,
    SLACK_HEADERS,
    github_headers,
)
from tests.triggers.test_custom_interceptors import interceptor  # noqa: F401 (the fixture)

UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")


def run_trigger(name: str, bindings: str, value: str = "$(tt.params.x)", tparams: str = "[{name: x}]") -> str:
    """An inline trigger whose template makes a TaskRun with one param `v` holding `value` in a quoted field."""
    return f"""  - name: {name}
    bindings: {bindings}
    template:
      spec:
        params: {tparams}
        resourcetemplates:
        - apiVersion: tekton.dev/v1
          kind: TaskRun
          metadata: {{generateName: {name}-}}
          spec:
            taskRef: {{name: t}}
            params: [{{name: v, value: '{value}'}}]
"""


def outcome(event: dict, trigger: str) -> dict:
    return next(o for o in event["outcomes"] if o["trigger"] == trigger)


def test_1_signed_github_pull_request_creates_one_labelled_taskrun(hub):  # noqa: F811
    hub.apply(GITHUB)
    hub.secret("github-secret", {"secretToken": "1234567"})
    status, body = hub.send("github-listener", GITHUB_BODY, github_headers())
    assert status == 202
    answer = json.loads(body)
    assert list(answer) == ["eventListener", "namespace", "eventListenerUID", "eventID"]
    uid = hub.app.extensions["taskhub.objects"].get("EventListener", "ns1", "github-listener")["metadata"]["uid"]
    assert answer["eventListener"] == "github-listener" and answer["namespace"] == "ns1"
    assert answer["eventListenerUID"] == uid and UUID.match(answer["eventID"])
    event = hub.event(answer["eventID"])
    assert event["status"] == "done" and event["httpStatus"] == 202 and event["size"] == len(GITHUB_BODY)
    assert ["X-Hub-Signature-256", "[redacted]"] in event["headers"]
    assert "c26dd919" not in json.dumps(event)
    (run,) = hub.runs(event)
    assert run["kind"] == "TaskRun" and re.fullmatch(
        r"github-run-[bcdfghjklmnpqrstvwxz2456789]{5}", run["metadata"]["name"]
    )
    assert labels(run) == {
        "triggers.tekton.dev/eventlistener": "github-listener",
        "triggers.tekton.dev/trigger": "github-listener",
        "triggers.tekton.dev/triggers-eventid": answer["eventID"],
    }
    assert run["metadata"]["namespace"] == "ns1"
    assert "28911bbb5a3e2ea034daf1f6be0a822d50e31e73" in run["spec"]["taskSpec"]["steps"][0]["script"]
    (created,) = outcome(event, "github-listener")["created"]
    detail = hub.records.get(created["run"])
    assert detail.status == "Pending" and created["job"] is not None  # queued as a run job


@pytest.mark.parametrize(
    ("body", "headers", "interceptor_name", "reason"),
    [
        (GITHUB_BODY.replace(b"triggers.git", b"x.git"), github_headers(), "github", "payload signature check failed"),
        (GITHUB_BODY, github_headers("ping"), "github", "event type ping is not allowed"),
        (GITHUB_BODY, github_headers(signature=None), "github", "no X-Hub-Signature-256 header set"),
        (
            GITHUB_BODY.replace(b"opened", b"closed"),
            [
                ("X-GitHub-Event", "pull_request"),
                ("X-Hub-Signature-256", github_signature("1234567", GITHUB_BODY.replace(b"opened", b"closed"))),
            ],
            "cel",
            "did not return true",
        ),
    ],
)
def test_2_3_4_rejections_answer_202_record_the_interceptor_and_create_nothing(
    hub,  # noqa: F811
    body,
    headers,
    interceptor_name,
    reason,
):
    hub.apply(GITHUB)
    hub.secret("github-secret", {"secretToken": "1234567"})
    status, answer = hub.send("github-listener", body, headers)
    assert status == 202
    event = hub.event(json.loads(answer)["eventID"])
    (trigger,) = event["outcomes"]
    assert (trigger["status"], trigger["interceptor"], trigger["created"]) == ("stopped", interceptor_name, [])
    assert reason in trigger["reason"]
    assert hub.records.recent(limit=5)[1] == 0


def test_5_6_bodies_that_are_not_json_objects_get_400_and_are_recorded(hub):  # noqa: F811
    hub.apply(listener(run_trigger("t", "[]")))
    status, body = hub.send("el1", b'{"action":')
    assert status == 400
    assert body == (b'{"eventListener":"el1","namespace":"ns1","eventListenerUID":"","errorMessage":'
                    b'"Invalid event body format : unexpected end of JSON input"}\n')  # fmt: skip
    status, body = hub.send("el1", b"", method="GET")
    assert status == 400 and b"unexpected end of JSON input" in body
    assert hub.send("el1", b"", path="/live", method="GET") == (200, b"ok")
    events = hub.service.events.recent(status="refused")[0]
    assert [(e.http_status, e.reason) for e in events][-1] == (
        400, "Invalid event body format : unexpected end of JSON input")  # fmt: skip
    assert hub.records.recent(limit=5)[1] == 0
    # The listener as it is now, at once: payload validation turned off, then the listener deleted.
    hub.apply(listener(run_trigger("t", "[]"), annotations='annotations: {tekton.dev/payload-validation: "false"}'))
    assert hub.send("el1", b'{"action":')[0] == 202
    hub.service.store.delete("EventListener", "ns1", "el1")
    assert hub.send("el1", b'{"action":')[0] == 404


@pytest.mark.parametrize(("token", "status", "created"), [("1234567", "created", 1), ("nope", "stopped", 0)])
def test_7_gitlab_push_with_its_token(hub, token, status, created):  # noqa: F811
    hub.apply(GITLAB)
    hub.secret("gitlab-secret", {"secretToken": "1234567"})
    code, body = hub.send("gitlab-listener", GITLAB_PUSH, [("X-Gitlab-Event", "Push Hook"), ("X-GitLab-Token", token)])
    assert code == 202
    event = hub.event(json.loads(body)["eventID"])
    assert event["outcomes"][0]["status"] == status and len(hub.runs(event)) == created
    assert ["X-Gitlab-Token", "[redacted]"] in event["headers"]
    if created:
        assert hub.runs(event)[0]["metadata"]["name"].startswith("gitlab-run-")


def test_8_bitbucket_server_sha1(hub):  # noqa: F811
    hub.apply(BITBUCKET_SERVER)
    hub.secret("bitbucket-secret", {"secretToken": "1234567"})
    headers = [
        ("X-Event-Key", "repo:refs_changed"),
        ("X-Hub-Signature", "sha1=b3fdaf5d1a47e57527764a233659c650a11abdd8"),
    ]
    event = hub.event(json.loads(hub.send("bitbucket-listener", BITBUCKET_BODY, headers)[1])["eventID"])
    (run,) = hub.runs(event)
    assert run["metadata"]["name"].startswith("bitbucket-run-")
    assert event["outcomes"][0]["params"] == {
        "gitrevision": "main", "gitrepositoryurl": "ssh://git@localhost:7999/~test/helloworld.git"}  # fmt: skip


def test_9_embedded_bindings_and_a_template_default(hub):  # noqa: F811
    hub.apply(EMBEDDED)
    body = b'{"repository": {"url": "https://github.com/tektoncd/triggers.git"}}'
    event = hub.event(json.loads(hub.send("listener-embed-binding", body, [("Content-Type", "application/json")])[1])[
        "eventID"])  # fmt: skip
    (run,) = hub.runs(event)
    assert run["kind"] == "PipelineRun"
    assert params(run) == {
        "message": "Hello from the Triggers EventListener!", "contenttype": "application/json",
        "git-revision": "main", "git-url": "https://github.com/tektoncd/triggers.git",
    }  # fmt: skip


def test_10_to_14_and_18_bindings_over_http(hub):  # noqa: F811
    triggers = "".join([
        run_trigger("missing", "[{name: x, value: $(body.missing)}]"),
        run_trigger("headers", "[{name: e, value: $(header.x-github-event)}, {name: f, value: $(header.X-Foo)}]",
                    "$(tt.params.e)|$(tt.params.f)", "[{name: e}, {name: f}]"),
        *(run_trigger(f"type-{i}", f"[{{name: x, value: '$(body.{path})'}}]")
          for i, path in enumerate(["n", "f", "b", "z", "arr[0]", "o", "arr"])),
        run_trigger("escaped", "[{name: x, value: $(body.s)}]"),
        run_trigger("static", "[{name: x, value: 'say \"hi\"'}]"),
        run_trigger("dollar", "[{name: x, value: $(body.title)}]"),
    ])  # fmt: skip
    hub.apply(listener(triggers))
    body = json.dumps({"n": 42, "f": 1.5, "b": True, "z": None, "o": {"b": 1, "a": "x"}, "arr": ["p", "q"],
                       "s": 'say "hi"\n<&>', "title": "use $(params.x)"}).encode()  # fmt: skip
    headers = [("X-GitHub-Event", "push"), ("X-Foo", "a"), ("X-Foo", "b")]
    event = hub.event(json.loads(hub.send("el1", body, headers)[1])["eventID"])
    by_trigger = {o["trigger"]: o for o in event["outcomes"]}
    runs = {r["metadata"]["labels"]["triggers.tekton.dev/trigger"]: params(r)["v"] for r in hub.runs(event)}
    assert by_trigger["missing"]["status"] == "failed"
    assert "failed to replace JSONPath value for param x" in by_trigger["missing"]["reason"]
    assert runs["headers"] == "push|a,b"
    assert [runs.get(f"type-{i}") for i in range(5)] == ["42", "1.5", "true", "null", "p"]
    assert by_trigger["type-5"]["params"] == {"x": '{"a":"x","b":1}'} and by_trigger["type-5"]["status"] == "failed"
    assert by_trigger["type-6"]["params"] == {"x": '["p","q"]'} and by_trigger["type-6"]["status"] == "failed"
    assert by_trigger["escaped"]["params"] == {"x": 'say \\"hi\\"\\n\\u003c\\u0026\\u003e'}
    assert runs["escaped"] == 'say "hi"\n<&>'
    assert by_trigger["static"]["status"] == "failed" and "couldn't unmarshal json" in by_trigger["static"]["reason"]
    assert runs["dollar"] == "use $$(params.x)"
    assert hub.records.recent(limit=50)[1] == len(runs) == 8


def test_15_cel_filter_and_overlays(hub):  # noqa: F811
    as_run = CEL_TRIGGER.replace("apiVersion: v1\n          kind: ConfigMap", "apiVersion: tekton.dev/v1\n"
                                 "          kind: TaskRun")  # fmt: skip
    value = "'$(tt.params.sha)@$(tt.params.branch)'"
    hub.apply(listener(as_run.replace(f"data: {{value: {value}}}", f"spec: {{params: [{{name: v, value: {value}}}]}}")))
    event = hub.event(json.loads(hub.send("el1", CEL_BODY, [("X-GitHub-Event", "pull_request")])[1])["eventID"])
    assert [params(r)["v"] for r in hub.runs(event)] == ["6113728@main"]
    pushed = hub.event(json.loads(hub.send("el1", CEL_BODY, [("X-GitHub-Event", "push")])[1])["eventID"])
    assert pushed["outcomes"][0]["status"] == "stopped" and pushed["outcomes"][0]["interceptor"] == "cel"


def test_16_custom_interceptor_over_http(hub, interceptor):  # noqa: F811
    hub.apply(f"""
apiVersion: triggers.tekton.dev/v1alpha1
kind: ClusterInterceptor
metadata: {{name: ic}}
spec: {{clientConfig: {{url: "{interceptor.url}/"}}}}
---""" + listener(run_trigger("custom", "[{name: x, value: $(extensions.x.y)}]").replace(
        "    bindings:", "    interceptors: [{ref: {name: ic}}]\n    bindings:")))  # fmt: skip
    interceptor.answer({"continue": True, "extensions": {"x": {"y": "z"}}})
    _, body = hub.send("el1", b'{"a":1}', path="/p?q=1")
    event = hub.event(json.loads(body)["eventID"])
    assert [params(r)["v"] for r in hub.runs(event)] == ["z"]
    seen = json.loads(interceptor.received[-1]["body"])
    assert seen["context"] == {"event_url": "/p?q=1", "event_id": json.loads(body)["eventID"],
                               "trigger_id": "namespaces/ns1/triggers/custom"}  # fmt: skip
    assert seen["body"] == '{"a":1}'
    interceptor.answer({"error": "down"}, 500)
    failed = hub.event(json.loads(hub.send("el1", b'{"a":1}')[1])["eventID"])
    assert failed["outcomes"][0]["status"] == "failed" and failed["outcomes"][0]["interceptor"] == "ic"


def test_17_uid_shared_within_a_trigger_and_new_for_the_next_event(hub):  # noqa: F811
    hub.apply(
        listener("""  - name: two
    template:
      spec:
        resourcetemplates:
        - {apiVersion: tekton.dev/v1, kind: TaskRun, metadata: {name: a-$(uid)}, spec: {taskRef: {name: t}}}
        - {apiVersion: tekton.dev/v1, kind: TaskRun, metadata: {name: b-$(uid)}, spec: {taskRef: {name: t}}}
""")
    )
    first = [r["metadata"]["name"] for r in hub.runs(hub.event(json.loads(hub.send("el1", b"{}")[1])["eventID"]))]
    second = [r["metadata"]["name"] for r in hub.runs(hub.event(json.loads(hub.send("el1", b"{}")[1])["eventID"]))]
    assert first[0][2:] == first[1][2:] and UUID.match(first[0][2:])
    assert second[0][2:] == second[1][2:] != first[0][2:]


def test_19_slack_form_body(hub):  # noqa: F811
    hub.apply(SLACK)
    event = hub.event(json.loads(hub.send("slack-listener", SLACK_FORM, SLACK_HEADERS)[1])["eventID"])
    (run,) = hub.runs(event)
    assert run["metadata"]["name"].startswith("slack-run-")
    assert run["spec"]["taskSpec"]["steps"][0]["script"] == "echo main 2222 $(tt.params.response)"
    hub.apply(SLACK.replace('payload-validation: "false"', 'payload-validation: "true"'))
    assert hub.send("slack-listener", SLACK_FORM, SLACK_HEADERS)[0] == 400


def test_20_gitea_push_and_a_redelivery_processed_once(hub):  # noqa: F811
    hub.apply(GITEA)
    hub.secret("gitea-secret", {"token": "s3cr3t"})
    signature = "sha256=2d57b0f7d81b99f2cc41ad8b4cb53eaa8e78b36314b8cae5baf031287aef362f"
    delivery = "0b4b8e0a-1b2c-4d5e-8f90-123456789abc"
    headers = [("Content-Type", "application/json"), ("X-GitHub-Event", "push"), ("X-Hub-Signature-256", signature),
               ("X-Gitea-Signature", signature[7:]), ("X-Gitea-Delivery", delivery)]  # fmt: skip
    first = hub.event(json.loads(hub.send("gitea-listener", GITEA_BODY, headers)[1])["eventID"])
    (run,) = hub.runs(first)
    assert params(run) == {"revision": "bffeb74224043ba2feb48d137756c8a9331c449a",
                           "url": "http://localhost:3000/gitea/webhooks.git"}  # fmt: skip
    status, again = hub.send("gitea-listener", GITEA_BODY, headers)
    assert status == 202
    duplicate = hub.event(json.loads(again)["eventID"])
    assert duplicate["status"] == "duplicate" and duplicate["duplicateOf"] == first["id"]
    assert duplicate["deliveryID"] == "0b4b8e0a-1b2c-4d5e-8f90-123456789abc"
    assert hub.records.recent(limit=5)[1] == 1
    # The duplicate's job, queued with it, was withdrawn in the same transaction: one job, the first event's.
    jobs, total = JobQueue(hub.app.extensions["taskhub.engine"]).list(kind=TRIGGER_EVENT.name)
    assert total == 1 and jobs[0].target == first["eventID"] and duplicate["job"] is None


def test_extra_checks_unknown_listener_oversized_body_unknown_trigger_ref_and_other_kinds(hub, settings):  # noqa: F811
    status, body = hub.send("nope", b"{}")
    assert status == 404 and b'EventListener \\"nope\\" not found in namespace \\"ns1\\"' in body
    configmap_trigger = run_trigger("cm", "[]").replace("apiVersion: tekton.dev/v1\n          kind: TaskRun",
                                                        "apiVersion: v1\n          kind: ConfigMap")  # fmt: skip
    hub.apply(listener("  - triggerRef: unknown\n" + configmap_trigger))
    big = b'{"a":"' + b"x" * settings.triggers_max_body_bytes + b'"}'
    status, body = hub.send("el1", big)
    assert status == 413 and b"over the sink's limit of 10485760 bytes" in body
    (refused,) = hub.service.events.recent(status="refused", name="el1")[0]
    assert refused.http_status == 413 and refused.size == len(big)
    event = hub.event(json.loads(hub.send("el1", b"{}")[1])["eventID"])
    assert outcome(event, "unknown")["reason"].startswith("Error getting Trigger unknown in Namespace ns1")
    configmap = outcome(event, "cm")
    assert configmap["status"] == "failed" and "the hub's runner creates only PipelineRuns and TaskRuns" in (
        configmap["reason"])  # fmt: skip
    assert hub.records.recent(limit=5)[1] == 0


def test_the_sink_answers_providers_in_private_mode_and_the_events_need_a_token(settings):
    import dataclasses

    import requests

    from hub.app import create_app
    from tests.conftest import served

    app = create_app(dataclasses.replace(settings, private=True))
    with served(app) as url:
        sent = requests.post(f"{url}/v1/listeners/ns1/el1", data=b"{}", timeout=10,
                             headers={"Authorization": "Basic cHJvdmlkZXI6c2VjcmV0"})  # fmt: skip
        assert sent.status_code == 404  # no such listener: the sink answered, the token gate did not
        assert requests.get(f"{url}/v1/listeners/ns1/el1/live", timeout=10).text == "ok"
        assert requests.get(f"{url}/v1/events", timeout=10).status_code == 401


def test_cloudevents_answered_as_cloudevents_and_status_sent_to_the_cloud_event_uri(hub, interceptor):  # noqa: F811
    interceptor.answer({})
    hub.apply(listener(run_trigger("t", "[{name: x, value: $(body.a)}]"), f"  cloudEventURI: {interceptor.url}/ce"))
    url = f"{hub.url}/v1/listeners/ns1/el1"
    binary = {"Content-Type": "application/json", "Ce-Specversion": "1.0", "Ce-Id": "in-1", "Ce-Source": "/tests",
              "Ce-Type": "dev.example.push"}  # fmt: skip
    structured = json.dumps({"specversion": "1.0", "id": "in-2", "source": "/tests", "type": "dev.example.push",
                             "datacontenttype": "application/json", "a": "x"}).encode()  # fmt: skip
    answers = [
        requests.post(url, data=b'{"a":"x"}', headers=binary, timeout=30),
        requests.post(url, data=structured, headers={"Content-Type": "application/cloudevents+json"}, timeout=30),
    ]
    for answer in answers:
        assert answer.status_code == 202 and answer.headers["Content-Type"] == "application/json"
        data = answer.json()
        assert data == {"eventListener": "el1", "namespace": "ns1", "eventListenerUID": data["eventListenerUID"],
                        "eventID": data["eventID"]}  # fmt: skip
        assert not answer.content.endswith(b"\n")
        assert {k: v for k, v in answer.headers.items() if k.lower().startswith("ce-")} == {
            "Ce-Specversion": "1.0", "Ce-Id": data["eventID"], "Ce-Source": "el1",
            "Ce-Type": "dev.tekton.event.triggers.accepted.v1", "Ce-Subject": f"ns1.el1 accepted {data['eventID']}",
        }  # fmt: skip
    plain = requests.post(url, data=b'{"a":"x"}', headers={"Ce-Specversion": "9.9"}, timeout=30)
    assert plain.status_code == 202 and "Ce-Id" not in plain.headers and plain.content.endswith(b"}\n")

    event_id = answers[0].json()["eventID"]
    assert hub.event(event_id)["outcomes"][0]["status"] == "created"

    def statuses() -> list[dict]:
        return [r for r in interceptor.received if r["headers"].get("Ce-Id") == event_id]

    wait_until(lambda: len(statuses()) == 3, "the started, successful and done CloudEvents")
    sent = {r["headers"]["Ce-Type"]: r for r in statuses()}
    assert set(sent) == {f"dev.tekton.event.triggers.{t}.v1" for t in ("started", "successful", "done")}
    started = sent["dev.tekton.event.triggers.started.v1"]
    assert started["path"] == "/ce"
    assert started["headers"]["Ce-Source"] == "/apis/triggers.tekton.dev/v1beta1/namespaces/ns1/EventListener/el1"
    assert started["headers"]["Ce-Subject"] == f"el1 processing {event_id}"
    assert json.loads(started["body"])["Ce-Id"] == ["in-1"]  # the request's headers
    assert sent["dev.tekton.event.triggers.done.v1"]["body"] == b"null"
    # The other two events send theirs too, before the receiver goes away with this test.
    others = {a.json()["eventID"] for a in answers[1:]} | {hub.event(plain.json()["eventID"])["eventID"]}
    wait_until(lambda: sum(r["headers"].get("Ce-Id") in others for r in interceptor.received) == 6, "their CloudEvents")


def test_a_nul_in_a_sink_url_is_refused_with_400_and_records_nothing(hub):  # noqa: F811
    status, body = hub.send("el%00x", b"{}")
    assert status == 400 and json.loads(body)["message"] == "the request contains a NUL character"
    assert hub.service.events.recent()[1] == 0


def test_an_event_answered_before_flask_gets_the_answer_flask_gives(hub):  # noqa: F811
    """An event to a listener's own URL is answered before Flask (hub/api/listeners.py, receivers_app); one with a
    path after the name goes through Flask: the same answer, the same record."""
    hub.apply(listener(run_trigger("t", "[{name: x, value: $(body.a)}]")))
    answers = {}
    for path in ("", "/after"):
        for body in (b'{"a": "x"}', b"[1]"):
            conn = requests.post(f"{hub.url}/v1/listeners/ns1/el1{path}", data=body, timeout=30)
            shown = {
                k: v for k, v in conn.headers.items() if k not in ("Date", "Content-Length", "Server", "Connection")
            }
            answers[path, body] = (conn.status_code, shown, conn.json())
    for body in (b'{"a": "x"}', b"[1]"):
        plain, routed = answers["", body], answers["/after", body]
        plain[2].pop("eventID", None), routed[2].pop("eventID", None)
        assert plain == routed
    assert answers["", b'{"a": "x"}'][0] == 202 and answers["", b"[1]"][0] == 400
    assert answers["", b"[1]"][1] == {"Content-Type": "application/json", "Cache-Control": "no-store"}


def test_an_error_while_answering_an_event_is_answered_by_the_hubs_handlers_and_kept_once(hub, monkeypatch):  # noqa: F811
    hub.apply(listener(run_trigger("t", "[{name: x, value: $(body.a)}]")))
    receive, calls = hub.service.receive, []

    def receive_then_fail(incoming, **kwargs):  # the event kept, then something fails before the answer
        calls.append(receive(incoming, **kwargs))
        raise RuntimeError("after the event was kept")

    monkeypatch.setattr(hub.service, "receive", receive_then_fail)
    status, body = hub.send("el1", b'{"a": "x"}')
    assert status == 500 and json.loads(body)["name"] == "internal-error" and len(calls) == 1
    kept = json.loads(calls[0].body)["eventID"]
    assert hub.event(kept)["status"] == "done"
    assert len(requests.get(f"{hub.url}/v1/events", timeout=10).json()["data"]) == 1  # not kept again


def test_a_listener_name_beyond_ascii_is_read_as_utf8(hub):  # noqa: F811
    status, body = hub.send("caf%C3%A9", b"{}")
    assert status == 404 and json.loads(body)["errorMessage"] == 'EventListener "café" not found in namespace "ns1"'
