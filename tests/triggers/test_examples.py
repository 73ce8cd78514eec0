"""The upstream examples of the Triggers spec (§7.2), written from their description: each event's answer and
the objects it must create."""

from __future__ import annotations

import json

from tests.triggers.support import MemorySecrets, Setup
from tests.triggers.test_acceptance_providers import PIPELINE_TEMPLATE
from tests.triggers.test_custom_interceptors import Interceptor
from triggers.engine import TriggersEngine
from triggers.http_client import RequestsInterceptorHTTP, loopback_only

TEMPLATE = """
apiVersion: triggers.tekton.dev/v1beta1
kind: TriggerTemplate
metadata: {{name: {name}}}
spec:
  params: [{params}]
  resourcetemplates:
  - apiVersion: tekton.dev/v1
    kind: {kind}
    metadata: {{generateName: {prefix}}}
    spec:
      params: [{values}]
"""


def template(name: str, prefix: str, params: list[str], kind: str = "TaskRun") -> str:
    values = ", ".join(f"{{name: {p}, value: '$(tt.params.{p})'}}" for p in params)
    return TEMPLATE.format(name=name, prefix=prefix, kind=kind, params=", ".join(f"{{name: {p}}}" for p in params),
                           values=values)  # fmt: skip


def run_params(resource) -> dict[str, str]:
    return {p["name"]: p["value"] for p in resource.manifest["spec"]["params"]}


def test_e4_bitbucket_cloud_push_with_event_types_only():
    text = """
apiVersion: triggers.tekton.dev/v1beta1
kind: EventListener
metadata: {name: bitbucket-cloud-listener}
spec:
  triggers:
  - name: bitbucket-cloud-triggers
    interceptors:
    - ref: {name: bitbucket}
      params: [{name: eventTypes, value: ["repo:push"]}]
    bindings:
    - {name: gitrevision, value: '$(body.push.changes[0].new.name)'}
    - {name: gitrepourl, value: $(body.repository.links.html.href)}
    - {name: gitreponame, value: $(body.repository.name)}
    - {name: pushername, value: $(body.actor.display_name)}
    template: {ref: bitbucket-cloud-template}
---""" + template(
        "bitbucket-cloud-template", "bitbucket-cloud-run-", ["gitrevision", "gitrepourl", "gitreponame", "pushername"]
    )  # fmt: skip
    body = (
        b'{"push": {"changes":[{"old":{}, "new":{"name":"bb-cloud-test-1"}}]},"repository":{"links": {"html":'
        b'{"href": "https://bitbucket.org/savitaredhat/bitbuckettest-customer"}},"name":"bitbuckettest-customer"}, '
        b'"actor":{"display_name": "savita"}}'
    )
    headers = [("X-Event-Key", "repo:push"), ("X-Hook-UUID", "e0bf3c66-0a4c-4a5e-9a1f-3ed4d0b0c0a1")]
    _, outcome = Setup(text).send("bitbucket-cloud-listener", body, headers)
    (run,) = outcome.resources
    assert run.generate_name == "bitbucket-cloud-run-"
    assert run_params(run) == {
        "gitrevision": "bb-cloud-test-1",
        "gitrepourl": "https://bitbucket.org/savitaredhat/bitbuckettest-customer",
        "gitreponame": "bitbuckettest-customer",
        "pushername": "savita",
    }


CHANGED_FILES = """
apiVersion: triggers.tekton.dev/v1beta1
kind: EventListener
metadata: {name: github-add-changed-files-push-cel-listener}
spec:
  triggers:
  - name: github-listener
    interceptors:
    - ref: {name: github}
      params:
      - {name: secretRef, value: {secretName: github-secret, secretKey: secretToken}}
      - {name: eventTypes, value: [pull_request, push]}
      - {name: addChangedFiles, value: {enabled: true}}
    - ref: {name: cel}
      params:
      - {name: filter, value: "extensions.changed_files.matches('controllers/')"}
    bindings: [{name: changedfiles, value: $(extensions.changed_files)}]
    template: {ref: changed-files-template}
---""" + template("changed-files-template", "github-add-changed-files-push-cel-run-", ["changedfiles"])
PUSH_BODY = (
    b'{"repository":{"full_name":"testowner/testrepo","clone_url":"https://github.com/testowner/testrepo.git"},'
    b'"commits":[{"added":["api/v1beta1/tektonhelperconfig_types.go","config/crd/bases/tekton-helper..com_'
    b'tektonhelperconfigs.yaml"],"removed":["config/samples/tektonhelperconfig-oomkillpipeline.yaml","config/'
    b'samples/tektonhelperconfig-timeout.yaml"],"modified":["controllers/tektonhelperconfig_controller.go"]}]}'
)
SECRETS = MemorySecrets({("ns1", "github-secret"): {"secretToken": b"1234567"}})


def signed(body: bytes, event: str) -> list[tuple[str, str]]:
    from tests.triggers.support import github_signature

    return [("X-GitHub-Event", event), ("X-Hub-Signature-256", github_signature("1234567", body))]


def test_e6_changed_files_of_a_push_feed_a_cel_filter():
    _, outcome = Setup(CHANGED_FILES, secrets=SECRETS).send(
        "github-add-changed-files-push-cel-listener", PUSH_BODY, signed(PUSH_BODY, "push")
    )
    (run,) = outcome.resources
    assert run_params(run)["changedfiles"] == (
        "api/v1beta1/tektonhelperconfig_types.go,config/crd/bases/tekton-helper..com_tektonhelperconfigs.yaml,"
        "controllers/tektonhelperconfig_controller.go,config/samples/tektonhelperconfig-oomkillpipeline.yaml,"
        "config/samples/tektonhelperconfig-timeout.yaml"
    )


def test_changed_files_of_a_pull_request_come_from_the_github_api_page_by_page():
    api = Interceptor()
    pages = {
        1: ([{"filename": "controllers/a.go"}], '<{url}/repos/o/r/pulls/7/files?per_page=100&page=2>; rel="next"'),
        2: ([{"filename": "docs/b.md"}], ""),
    }

    def handler_get(path: str):
        page = 2 if "page=2" in path else 1
        body, link = pages[page]
        return json.dumps(body).encode(), link.format(url=api.url)

    original = api.server.RequestHandlerClass

    class GetHandler(original):  # type: ignore[misc,valid-type]
        def do_GET(self) -> None:
            api.received.append({"path": self.path, "headers": dict(self.headers)})
            body, link = handler_get(self.path)
            self.send_response(200)
            if link:
                self.send_header("Link", link)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    api.server.RequestHandlerClass = GetHandler
    try:
        body = json.dumps({"action": "opened", "number": 7, "repository": {"full_name": "o/r"}}).encode()
        setup = Setup(CHANGED_FILES, secrets=SECRETS)
        setup.engine = TriggersEngine(
            setup.store, SECRETS, RequestsInterceptorHTTP(loopback_only), github_api=api.url + "/"
        )
        _, outcome = setup.send("github-add-changed-files-push-cel-listener", body, signed(body, "pull_request"))
    finally:
        api.close()
    (run,) = outcome.resources
    assert run_params(run)["changedfiles"] == "controllers/a.go,docs/b.md"
    assert [call["path"] for call in api.received] == [
        "/repos/o/r/pulls/7/files?per_page=100",
        "/repos/o/r/pulls/7/files?per_page=100&page=2",
    ]


def test_changed_files_of_a_pull_request_without_http_are_a_recorded_reason():
    body = json.dumps({"action": "opened", "number": 7, "repository": {"full_name": "o/r"}}).encode()
    _, outcome = Setup(CHANGED_FILES, secrets=SECRETS).send(
        "github-add-changed-files-push-cel-listener", body, signed(body, "pull_request")
    )
    assert outcome.triggers[0].reason.endswith(
        "error getting changed files: calls to the GitHub API are not enabled on this hub"
    )


CRON = (
    """
apiVersion: triggers.tekton.dev/v1beta1
kind: EventListener
metadata: {name: cron-listener}
spec:
  triggers:
  - name: cron-trig
    bindings:
    - {name: gitrevision, value: main}
    - {name: gitrepositoryurl, value: https://github.com/tektoncd/triggers}
    - {name: contenttype, value: $(header.Content-Type)}
    template: {ref: pipeline-template}
---
"""
    + PIPELINE_TEMPLATE
)


def test_e8_cron_posting_an_empty_object_as_curl_data():
    headers = [("Content-Type", "application/x-www-form-urlencoded"), ("User-Agent", "curl/8.5.0")]
    _, outcome = Setup(CRON).send("cron-listener", b"{}", headers)
    (run,) = outcome.resources
    assert run.generate_name == "simple-pipeline-run-"
    assert run_params(run) == {
        "message": "This is the default message",
        "contenttype": "application/x-www-form-urlencoded",
        "git-revision": "main",
        "git-url": "https://github.com/tektoncd/triggers",
    }


def test_e9_a_configmap_from_a_cel_filtered_event():
    text = """
apiVersion: triggers.tekton.dev/v1beta1
kind: EventListener
metadata: {name: create-configmap-listener}
spec:
  triggers:
  - name: cel-trig
    interceptors:
    - ref: {name: cel}
      params: [{name: filter, value: "body.action in ['opened']"}]
    bindings: [{name: action, value: $(body.action)}]
    template:
      spec:
        params: [{name: action}]
        resourcetemplates:
        - apiVersion: v1
          kind: ConfigMap
          metadata: {generateName: sample-}
          data: {field: 'Action is : $(tt.params.action)'}
"""
    setup = Setup(text)
    (config_map,) = setup.send("create-configmap-listener", b'{"action": "opened"}')[1].resources
    assert (config_map.kind, config_map.generate_name) == ("ConfigMap", "sample-")
    assert config_map.manifest["data"] == {"field": "Action is : opened"}
    assert setup.send("create-configmap-listener", b'{"action": "closed"}')[1].resources == []


SELECTED = """
apiVersion: triggers.tekton.dev/v1beta1
kind: Trigger
metadata:
  name: {name}
  namespace: {namespace}
  labels: {{foo: {label}, type: github-pr}}
spec:
  bindings:
  - {{name: gitrevision, value: $(body.pull_request.head.sha)}}
  - {{name: gitrepositoryurl, value: $(body.repository.clone_url)}}
  - {{name: contenttype, value: $(header.Content-Type)}}
  - {{name: sha, value: '$(extensions.truncated_sha)'}}
  template:
    spec:
      params: [{{name: gitrevision}}, {{name: gitrepositoryurl}}, {{name: contenttype}}, {{name: sha, default: none}}]
      resourcetemplates:
      - apiVersion: tekton.dev/v1
        kind: PipelineRun
        metadata: {{generateName: simple-pipeline-run-}}
        spec:
          params:
          - {{name: git-revision, value: $(tt.params.gitrevision)}}
          - {{name: git-url, value: $(tt.params.gitrepositoryurl)}}
          - {{name: contenttype, value: $(tt.params.contenttype)}}
          - {{name: sha, value: $(tt.params.sha)}}
"""
PR_BODY = (
    b'{"action": "opened", "pull_request":{"head":{"sha": "28911bbb5a3e2ea034daf1f6be0a822d50e31e73"}},'
    b'"repository":{"clone_url": "https://github.com/tektoncd/triggers.git"}}'
)


def selectors(listener_spec: str) -> Setup:
    triggers = "---".join(
        SELECTED.format(name=name, namespace=namespace, label=label)
        for name, namespace, label in [
            ("matching-label-trigger", "ns1", "bar"),
            ("non-matching-label-trigger", "ns1", "baz"),
            ("foo-trigger", "foo", "bar"),
        ]
    )
    return Setup(f"apiVersion: triggers.tekton.dev/v1beta1\nkind: EventListener\nmetadata: {{name: el}}\n"
                 f"spec:\n{listener_spec}\n---{triggers}")  # fmt: skip


def test_e10_label_selector_picks_one_trigger_of_the_listeners_namespace():
    _, outcome = selectors("  labelSelector: {matchLabels: {foo: bar}}").send(
        "el", PR_BODY, [("Content-Type", "application/json")]
    )
    (trigger,) = outcome.triggers
    (run,) = trigger.resources
    assert run.manifest["metadata"]["labels"]["triggers.tekton.dev/trigger"] == "matching-label-trigger"
    assert run_params(run) == {
        "git-revision": "28911bbb5a3e2ea034daf1f6be0a822d50e31e73",
        "git-url": "https://github.com/tektoncd/triggers.git",
        "contenttype": "application/json",
        "sha": "none",
    }


def test_namespace_selector_creates_in_the_triggers_namespace():
    setup = selectors("  namespaceSelector: {matchNames: [foo]}")
    (run,) = setup.send("el", PR_BODY, [("Content-Type", "application/json")])[1].resources
    assert (run.namespace, run.manifest["metadata"]["labels"]["triggers.tekton.dev/trigger"]) == ("foo", "foo-trigger")
    everywhere = selectors("  namespaceSelector: {matchNames: ['*']}\n  labelSelector: {matchLabels: {foo: bar}}")
    names = sorted(t.trigger for t in everywhere.send("el", PR_BODY)[1].triggers)
    assert names == ["foo-trigger", "matching-label-trigger"]
    expressions = selectors("  labelSelector: {matchExpressions: [{key: foo, operator: NotIn, values: [bar]}]}").send(
        "el", PR_BODY
    )[1]
    assert [t.trigger for t in expressions.triggers] == ["non-matching-label-trigger"]


def test_trigger_group_runs_its_chain_once_and_hands_its_extensions_to_each_trigger():
    spec = """  triggerGroups:
  - name: github-pr-group
    interceptors:
    - ref: {name: cel}
      params:
      - {name: filter, value: "header.match('X-GitHub-Event', 'pull_request')"}
      - name: overlays
        value: [{key: truncated_sha, expression: "body.pull_request.head.sha.truncate(7)"}]
    triggerSelector:
      labelSelector: {matchLabels: {type: github-pr}}
      namespaceSelector: {matchNames: ['*']}"""
    setup = selectors(spec)
    _, outcome = setup.send("el", PR_BODY, [("X-GitHub-Event", "pull_request"), ("Content-Type", "application/json")])
    assert sorted((t.trigger, t.group, t.params["sha"]) for t in outcome.triggers) == [
        ("foo-trigger", "github-pr-group", "28911bb"),
        ("matching-label-trigger", "github-pr-group", "28911bb"),
        ("non-matching-label-trigger", "github-pr-group", "28911bb"),
    ]
    _, pushed = setup.send("el", PR_BODY, [("X-GitHub-Event", "push")])
    (group,) = pushed.triggers
    assert (group.trigger_id, group.status, group.interceptor) == (
        "namespaces/ns1/triggerGroups/github-pr-group", "stopped", "cel",
    )  # fmt: skip


def test_core_interceptor_named_by_a_cluster_interceptor_pointing_at_the_core_service():
    text = """
apiVersion: triggers.tekton.dev/v1alpha1
kind: ClusterInterceptor
metadata: {name: cel, labels: {server/type: https}}
spec:
  clientConfig:
    caBundle: LS0tLS1CRUdJTg==
    service: {name: tekton-triggers-core-interceptors, namespace: tekton-pipelines, path: cel, port: 8443}
---
apiVersion: triggers.tekton.dev/v1beta1
kind: EventListener
metadata: {name: el}
spec:
  triggers:
  - name: t
    interceptors: [{ref: {name: cel}, params: [{name: filter, value: "body.ok == true"}]}]
    template: {spec: {resourcetemplates: [{apiVersion: v1, kind: ConfigMap, metadata: {generateName: c-}}]}}
"""
    setup = Setup(text)
    assert len(setup.send("el", b'{"ok": true}')[1].resources) == 1
    assert setup.send("el", b'{"ok": false}')[1].resources == []
