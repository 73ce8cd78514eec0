"""The upstream examples of the Triggers spec (§7.2), written from their description: each event's answer and
the objects it must create."""

from __future__ import annotations

import base64
import json

from tests.triggers.support import GitHubAPI, MemorySecrets, Setup, github_signature
from tests.triggers.test_acceptance_providers import PIPELINE_TEMPLATE
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


def engine_with_api(setup: Setup, api: GitHubAPI, secrets: MemorySecrets) -> None:
    http = RequestsInterceptorHTTP(loopback_only)
    setup.engine = TriggersEngine(setup.store, secrets, http, github_api=api.url + "/")


def test_changed_files_of_a_pull_request_come_from_the_github_api_page_by_page():
    next_page = '<{url}/repos/o/r/pulls/7/files?per_page=100&page=2>; rel="next"'
    api = GitHubAPI({
        "/repos/o/r/pulls/7/files?per_page=100": (200, [{"filename": "controllers/a.go"}], next_page),
        "/repos/o/r/pulls/7/files?per_page=100&page=2": (200, [{"filename": "docs/b.md"}], ""),
    })  # fmt: skip
    try:
        body = json.dumps({"action": "opened", "number": 7, "repository": {"full_name": "o/r"}}).encode()
        setup = Setup(CHANGED_FILES, secrets=SECRETS)
        engine_with_api(setup, api, SECRETS)
        _, outcome = setup.send("github-add-changed-files-push-cel-listener", body, signed(body, "pull_request"))
    finally:
        api.close()
    (run,) = outcome.resources
    assert run_params(run)["changedfiles"] == "controllers/a.go,docs/b.md"
    assert [path for path, _ in api.requests] == [
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


OWNERS = """
apiVersion: triggers.tekton.dev/v1beta1
kind: EventListener
metadata: {name: github-owners-listener}
spec:
  triggers:
  - name: github-owners
    interceptors:
    - ref: {name: github}
      params:
      - {name: secretRef, value: {secretName: github-secret, secretKey: secretToken}}
      - {name: eventTypes, value: [pull_request, issue_comment]}
      - name: githubOwners
        value:
          enabled: true
          checkType: all
          personalAccessToken: {secretName: github-token, secretKey: token}
    template: {ref: owners-template}
---""" + template("owners-template", "github-owners-run-", [])
OWNER_SECRETS = MemorySecrets(
    {("ns1", "github-secret"): {"secretToken": b"1234567"}, ("ns1", "github-token"): {"token": b"ghp_x"}}
)
OWNERS_FILE = {"type": "file", "content": base64.b64encode(b"approvers:\n- Test_Owner\nreviewers: [r]\n").decode()}


def owners_outcome(event: str, payload: dict) -> tuple[str, str, list[tuple[str, str]]]:
    api = GitHubAPI({
        "/orgs/owner/public_members": (200, [{"login": "org-member"}], ""),
        "/repos/owner/repo/collaborators": (200, [{"login": "collaborator"}], ""),
        "/repos/owner/repo/contents/OWNERS": (200, OWNERS_FILE, ""),
    })  # fmt: skip
    try:
        setup = Setup(OWNERS, secrets=OWNER_SECRETS)
        engine_with_api(setup, api, OWNER_SECRETS)
        body = json.dumps(payload).encode()
        _, outcome = setup.send("github-owners-listener", body, signed(body, event))
    finally:
        api.close()
    (trigger,) = outcome.triggers
    return trigger.status, trigger.reason, api.requests


def pull_request(sender: str) -> dict:
    return {"action": "opened", "number": 1, "repository": {"full_name": "owner/repo"}, "sender": {"login": sender}}


def comment(sender: str, text: str) -> dict:
    return {"action": "created", "issue": {"number": 1}, "comment": {"body": text},
            "repository": {"full_name": "owner/repo"}, "sender": {"login": sender}}  # fmt: skip


def test_owners_check_lets_members_collaborators_and_owners_file_entries_through():
    for sender in ("org-member", "collaborator", "test_owner"):
        status, reason, requests = owners_outcome("pull_request", pull_request(sender))
        assert status == "created", (sender, reason)
    assert all(auth == "Bearer ghp_x" for _, auth in requests)


def test_owners_check_stops_strangers_unless_an_owner_says_ok_to_test():
    status, reason, _ = owners_outcome("pull_request", pull_request("stranger"))
    assert (status, reason.split("desc = ")[1]) == ("stopped", "owners check requirements not met")
    assert owners_outcome("issue_comment", comment("collaborator", "looks fine\n/ok-to-test"))[0] == "created"
    assert owners_outcome("issue_comment", comment("collaborator", "/ok-to-test please"))[0] == "stopped"
    assert owners_outcome("issue_comment", comment("stranger", "/ok-to-test"))[0] == "stopped"
