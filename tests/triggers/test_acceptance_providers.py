"""Acceptance checks 1-9, 19 and 20 of the Triggers spec: provider webhooks signed as each provider signs them,
at the engine level (the sink's answer, then each trigger's outcome)."""

from __future__ import annotations

import json

import pytest

from tests.triggers.support import MemorySecrets, Setup, github_signature

GITHUB_BODY = (
    b'{"action": "opened", "pull_request":{"head":{"sha": "28911bbb5a3e2ea034daf1f6be0a822d50e31e73"}},'
    b'"repository":{"clone_url": "https://github.com/tektoncd/triggers.git"}}'
)
GITHUB_SIGNATURE = "sha256=c26dd919ebe335852219c49f74c4b24f1c62c93c77294be3ac6d8f2e4691a023"
SECRETS = MemorySecrets({("ns1", "github-secret"): {"secretToken": b"1234567"}})

RUN_TEMPLATE = """
apiVersion: triggers.tekton.dev/v1beta1
kind: TriggerTemplate
metadata: {{name: {name}-template}}
spec:
  params:
  - name: gitrevision
  - name: gitrepositoryurl
  resourcetemplates:
  - apiVersion: tekton.dev/v1
    kind: TaskRun
    metadata: {{generateName: {name}-run-}}
    spec:
      taskSpec:
        steps:
        - image: alpine
          script: 'echo "Revision is : $(tt.params.gitrevision). RepoURL is $(tt.params.gitrepositoryurl)"'
"""

GITHUB = """
apiVersion: triggers.tekton.dev/v1beta1
kind: EventListener
metadata: {name: github-listener}
spec:
  serviceAccountName: tekton-triggers-example-sa
  triggers:
  - name: github-listener
    interceptors:
    - ref: {name: github}
      params:
      - name: secretRef
        value: {secretName: github-secret, secretKey: secretToken}
      - name: eventTypes
        value: [pull_request]
    - ref: {name: cel}
      params:
      - name: filter
        value: body.action in ['opened', 'synchronize', 'reopened']
    bindings:
    - ref: github-pr-binding
    template:
      ref: github-template
---
apiVersion: triggers.tekton.dev/v1beta1
kind: TriggerBinding
metadata: {name: github-pr-binding}
spec:
  params:
  - name: gitrevision
    value: $(body.pull_request.head.sha)
  - name: gitrepositoryurl
    value: $(body.repository.clone_url)
---""" + RUN_TEMPLATE.format(name="github")


def script_of(outcome) -> str:
    (resource,) = outcome.resources
    return resource.manifest["spec"]["taskSpec"]["steps"][0]["script"]


def github_headers(event: str = "pull_request", signature: str | None = GITHUB_SIGNATURE) -> list[tuple[str, str]]:
    headers = [("X-GitHub-Event", event), ("Content-Type", "application/json")]
    return headers + ([("X-Hub-Signature-256", signature)] if signature else [])


def test_1_signed_github_pull_request_creates_one_labelled_taskrun():
    setup = Setup(GITHUB, secrets=SECRETS)
    answer, outcome = setup.send("github-listener", GITHUB_BODY, github_headers(), event_id="e7d1")
    assert answer.status == 202
    assert answer.body == (
        b'{"eventListener":"github-listener","namespace":"ns1","eventListenerUID":"u1","eventID":"e7d1"}\n'
    )
    (trigger,) = outcome.triggers
    assert trigger.status == "created", trigger.reason
    (run,) = trigger.resources
    assert (run.kind, run.generate_name, run.namespace) == ("TaskRun", "github-run-", "ns1")
    assert run.manifest["metadata"]["labels"] == {
        "triggers.tekton.dev/eventlistener": "github-listener",
        "triggers.tekton.dev/trigger": "github-listener",
        "triggers.tekton.dev/triggers-eventid": "e7d1",
    }
    assert script_of(trigger) == (
        'echo "Revision is : 28911bbb5a3e2ea034daf1f6be0a822d50e31e73. '
        'RepoURL is https://github.com/tektoncd/triggers.git"'
    )
    assert trigger.service_account_name == "tekton-triggers-example-sa"


FORM_HEADERS = [("X-GitHub-Event", "pull_request"), ("Content-Type", "application/x-www-form-urlencoded")]


@pytest.mark.parametrize(
    ("body", "headers", "reason"),
    [
        (GITHUB_BODY.replace(b"triggers.git", b"x.git"), github_headers(), "payload signature check failed"),
        (GITHUB_BODY, github_headers("ping"), "event type ping is not allowed"),
        (GITHUB_BODY, github_headers(signature=None), "no X-Hub-Signature-256 header set"),
        (GITHUB_BODY, github_headers(signature="sha256=zz"), 'error decoding signature "sha256=zz"'),
        (GITHUB_BODY, github_headers(signature="md5=00"), 'unknown hash type prefix: "md5"'),
        (GITHUB_BODY, FORM_HEADERS, "form parameter encoding not supported"),
    ],
    ids=["2-tampered-body", "3-ping", "4-no-signature", "bad-hex", "unknown-hash", "form-body"],
)
def test_2_3_4_github_rejections_answer_202_and_create_nothing(body, headers, reason):
    answer, outcome = Setup(GITHUB, secrets=SECRETS).send("github-listener", body, headers)
    assert answer.status == 202
    (trigger,) = outcome.triggers
    assert (trigger.status, trigger.interceptor, trigger.resources) == ("stopped", "github", ())
    assert reason in trigger.reason
    assert trigger.reason.startswith("interceptor stopped trigger processing: rpc error: code = ")


def test_github_secret_missing_is_a_recorded_reason():
    _, outcome = Setup(GITHUB).send("github-listener", GITHUB_BODY, github_headers())
    assert 'error getting secret: secrets "github-secret" not found' in outcome.triggers[0].reason


def test_github_cel_filter_stops_a_closed_pull_request():
    body = GITHUB_BODY.replace(b'"opened"', b'"closed"')
    _, outcome = Setup(GITHUB, secrets=SECRETS).send(
        "github-listener", body, github_headers(signature=github_signature("1234567", body))
    )
    (trigger,) = outcome.triggers
    assert (trigger.status, trigger.interceptor) == ("stopped", "cel")
    assert trigger.reason.endswith(
        "code = FailedPrecondition desc = expression body.action in ['opened', 'synchronize', 'reopened'] "
        "did not return true"
    )


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b'{"action":', "unexpected end of JSON input"),
        (b"", "unexpected end of JSON input"),
        (b"hello", "invalid character 'h' looking for beginning of value"),
        (b"[1]", "json: cannot unmarshal array into Go value of type map[string]interface {}"),
        (b'{"a" 1}', "invalid character '1' after object key"),
    ],
)
def test_5_6_a_body_that_is_not_a_json_object_gets_400(body, message):
    answer, outcome = Setup(GITHUB, secrets=SECRETS).send("github-listener", body)
    assert (answer.status, outcome) == (400, None)
    assert json.loads(answer.body) == {
        "eventListener": "github-listener",
        "namespace": "ns1",
        "eventListenerUID": "",
        "errorMessage": f"Invalid event body format : {message}",
    }


def test_5_null_passes_validation():
    answer, _ = Setup(GITHUB, secrets=SECRETS).send("github-listener", b"null")
    assert answer.status == 202


GITLAB = """
apiVersion: triggers.tekton.dev/v1beta1
kind: EventListener
metadata: {name: gitlab-listener}
spec:
  triggers:
  - name: gitlab-push-events-trigger
    interceptors:
    - name: verify-gitlab-payload
      ref: {name: gitlab, kind: ClusterInterceptor}
      params:
      - {name: secretRef, value: {secretName: gitlab-secret, secretKey: secretToken}}
      - {name: eventTypes, value: [Push Hook]}
    bindings:
    - {name: gitrevision, value: $(body.checkout_sha)}
    - {name: gitrepositoryurl, value: $(body.repository.git_http_url)}
    template: {ref: gitlab-template}
---""" + RUN_TEMPLATE.format(name="gitlab")
GITLAB_PUSH = json.dumps(
    {
        "object_kind": "push",
        "event_name": "push",
        "before": "95790bf891e76fee5e1747ab589903a6a1f80f22",
        "after": "1a1736ec3d7b03349b31218a2f2c572c7c7206d6",
        "ref": "refs/heads/main",
        "checkout_sha": "1a1736ec3d7b03349b31218a2f2c572c7c7206d6",
        "user_username": "dibyom",
        "project": {"name": "triggers", "git_http_url": "https://gitlab.com/dibyom/triggers.git"},
        "repository": {"name": "triggers", "git_http_url": "https://gitlab.com/dibyom/triggers.git"},
        "commits": [{"id": "1a1736ec3d7b03349b31218a2f2c572c7c7206d6", "message": "Update README.md"}],
        "total_commits_count": 1,
    },
    indent=2,
).encode()
GITLAB_SECRETS = MemorySecrets({("ns1", "gitlab-secret"): {"secretToken": b"1234567"}})


@pytest.mark.parametrize(
    ("headers", "status", "reason"),
    [
        ([("X-Gitlab-Event", "Push Hook"), ("X-GitLab-Token", "1234567")], "created", ""),
        ([("X-Gitlab-Event", "Push Hook"), ("X-GitLab-Token", "nope")], "stopped", "Invalid X-GitLab-Token"),
        ([("X-Gitlab-Event", "Push Hook")], "stopped", "code = InvalidArgument desc = no X-Gitlab-Token header set"),
        ([("X-Gitlab-Event", "Tag Push Hook"), ("X-GitLab-Token", "1"), ("X", "")], "stopped", "Tag Push Hook is not"),
    ],
)
def test_7_gitlab_token(headers, status, reason):
    answer, outcome = Setup(GITLAB, secrets=GITLAB_SECRETS).send("gitlab-listener", GITLAB_PUSH, headers)
    assert answer.status == 202
    (trigger,) = outcome.triggers
    assert trigger.status == status
    assert reason in trigger.reason
    if status == "created":
        assert trigger.resources[0].generate_name == "gitlab-run-"
        assert script_of(trigger) == (
            'echo "Revision is : 1a1736ec3d7b03349b31218a2f2c572c7c7206d6. '
            'RepoURL is https://gitlab.com/dibyom/triggers.git"'
        )
    else:
        assert trigger.interceptor == "verify-gitlab-payload"


BITBUCKET_SERVER = """
apiVersion: triggers.tekton.dev/v1beta1
kind: EventListener
metadata: {name: bitbucket-listener}
spec:
  triggers:
  - name: bitbucket-triggers
    interceptors:
    - ref: {name: bitbucket}
      params:
      - {name: secretRef, value: {secretName: bitbucket-secret, secretKey: secretToken}}
      - {name: eventTypes, value: ["repo:refs_changed"]}
    bindings: [{ref: bitbucket-binding}]
    template: {ref: bitbucket-template}
---
apiVersion: triggers.tekton.dev/v1beta1
kind: TriggerBinding
metadata: {name: bitbucket-binding}
spec:
  params:
  - name: gitrevision
    value: $(body.changes[0].ref.displayId)
  - name: gitrepositoryurl
    value: $(body.repository.links.clone[?(@.name=="ssh")].href)
---""" + RUN_TEMPLATE.format(name="bitbucket")
BITBUCKET_BODY = (
    b'{"repository": {"links": {"clone": [{"href": "http://localhost:7990/scm/~test/helloworld.git", "name": '
    b'"http"}, {"href": "ssh://git@localhost:7999/~test/helloworld.git", "name": "ssh"}]}}, "changes": '
    b'[{"ref": {"displayId": "main"}}]}'
)
BITBUCKET_SECRETS = MemorySecrets({("ns1", "bitbucket-secret"): {"secretToken": b"1234567"}})


def test_8_bitbucket_server_sha1_signature_and_jsonpath_filter():
    signature = "sha1=b3fdaf5d1a47e57527764a233659c650a11abdd8"
    headers = [("X-Event-Key", "repo:refs_changed"), ("X-Hub-Signature", signature)]
    _, outcome = Setup(BITBUCKET_SERVER, secrets=BITBUCKET_SECRETS).send("bitbucket-listener", BITBUCKET_BODY, headers)
    (trigger,) = outcome.triggers
    assert trigger.status == "created", trigger.reason
    assert trigger.params == {
        "gitrevision": "main",
        "gitrepositoryurl": "ssh://git@localhost:7999/~test/helloworld.git",
    }
    assert trigger.resources[0].generate_name == "bitbucket-run-"


def test_8_bitbucket_cloud_sha256_signature_and_bad_signature():
    good = [("X-Event-Key", "repo:refs_changed"), ("X-Hub-Signature", github_signature("1234567", BITBUCKET_BODY))]
    bad = [("X-Event-Key", "repo:refs_changed"), ("X-Hub-Signature", github_signature("other", BITBUCKET_BODY))]
    setup = Setup(BITBUCKET_SERVER, secrets=BITBUCKET_SECRETS)
    assert setup.send("bitbucket-listener", BITBUCKET_BODY, good)[1].triggers[0].status == "created"
    stopped = setup.send("bitbucket-listener", BITBUCKET_BODY, bad)[1].triggers[0]
    assert stopped.reason.endswith("desc = error validating signature: payload signature check failed")
    missing = setup.send("bitbucket-listener", BITBUCKET_BODY, good[:1])[1].triggers[0]
    assert missing.reason.endswith("code = InvalidArgument desc = no X-Hub-Signature header set")


GITEA = """
apiVersion: triggers.tekton.dev/v1beta1
kind: EventListener
metadata: {name: gitea-listener}
spec:
  triggers:
  - name: gitea-push
    interceptors:
    - ref: {name: github}
      params:
      - {name: secretRef, value: {secretName: gitea-secret, secretKey: token}}
      - {name: eventTypes, value: [push]}
    bindings:
    - {name: revision, value: $(body.after)}
    - {name: url, value: $(body.repository.clone_url)}
    template:
      spec:
        params: [{name: revision}, {name: url}]
        resourcetemplates:
        - apiVersion: tekton.dev/v1
          kind: PipelineRun
          metadata: {generateName: gitea-run-}
          spec:
            pipelineRef: {name: build}
            params:
            - {name: revision, value: $(tt.params.revision)}
            - {name: url, value: $(tt.params.url)}
"""
GITEA_BODY = (
    b'{"ref":"refs/heads/main","after":"bffeb74224043ba2feb48d137756c8a9331c449a",'
    b'"repository":{"clone_url":"http://localhost:3000/gitea/webhooks.git"}}'
)


def test_20_gitea_push_through_the_github_interceptor():
    signature = "sha256=2d57b0f7d81b99f2cc41ad8b4cb53eaa8e78b36314b8cae5baf031287aef362f"
    headers = [
        ("Content-Type", "application/json"),
        ("X-GitHub-Event", "push"),
        ("X-Gitea-Event", "push"),
        ("X-Gitea-Signature", signature.removeprefix("sha256=")),
        ("X-Hub-Signature-256", signature),
        ("X-Gitea-Delivery", "0b4b8e0a-1b2c-4d5e-8f90-123456789abc"),
    ]
    secrets = MemorySecrets({("ns1", "gitea-secret"): {"token": b"s3cr3t"}})
    answer, outcome = Setup(GITEA, secrets=secrets).send("gitea-listener", GITEA_BODY, headers)
    assert answer.status == 202
    (trigger,) = outcome.triggers
    assert trigger.status == "created", trigger.reason
    assert trigger.resources[0].manifest["spec"]["params"] == [
        {"name": "revision", "value": "bffeb74224043ba2feb48d137756c8a9331c449a"},
        {"name": "url", "value": "http://localhost:3000/gitea/webhooks.git"},
    ]


SLACK = """
apiVersion: triggers.tekton.dev/v1beta1
kind: EventListener
metadata:
  name: slack-listener
  annotations: {tekton.dev/payload-validation: "false"}
spec:
  triggers:
  - name: slack-trigger
    interceptors:
    - ref: {name: slack}
      params: [{name: requestedFields, value: [text]}]
    - ref: {name: cel}
      params:
      - name: overlays
        value:
        - {key: branch, expression: "extensions.text[0].split(' ')[0]"}
        - {key: image, expression: "extensions.text[0].split(' ')[1]"}
    bindings:
    - {name: branch, value: $(extensions.branch)}
    - {name: image, value: $(extensions.image)}
    - {name: text, value: $(extensions.text)}
    template:
      spec:
        params: [{name: branch}, {name: image}, {name: response}]
        resourcetemplates:
        - apiVersion: tekton.dev/v1
          kind: TaskRun
          metadata: {generateName: slack-run-}
          spec:
            taskSpec:
              steps:
              - {image: alpine, script: "echo $(tt.params.branch) $(tt.params.image) $(tt.params.response)"}
"""
SLACK_FORM = (
    b"token=gIkuvaNzQIHg97ATvDxqgjtO&team_id=T0001&team_domain=example&channel_id=C2147483705&channel_name=test"
    b"&user_id=U2147483697&user_name=Steve&command=%2Fbuild&text=main+2222"
    b"&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2F1234%2F5678&trigger_id=13345224609.738474920.8088930838d88f008e0"
)
SLACK_HEADERS = [
    ("Content-Type", "application/x-www-form-urlencoded"),
    ("X-Slack-Request-Timestamp", "1531420618"),
    ("X-Slack-Signature", "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503"),
]


def test_19_slack_form_body_with_validation_off():
    setup = Setup(SLACK)
    answer, outcome = setup.send("slack-listener", SLACK_FORM, SLACK_HEADERS)
    assert answer.status == 202
    (trigger,) = outcome.triggers
    assert trigger.status == "created", trigger.reason
    assert trigger.extensions["text"] == ["main 2222"]
    assert trigger.params["branch"] == "main" and trigger.params["image"] == "2222"
    assert trigger.resources[0].generate_name == "slack-run-"
    # The template declares no default for `response` and no binding gives it: the text stays as written.
    script = trigger.resources[0].manifest["spec"]["taskSpec"]["steps"][0]["script"]
    assert script == "echo main 2222 $(tt.params.response)"


def test_19_slack_without_signature_header_and_with_validation_on():
    setup = Setup(SLACK)
    _, outcome = setup.send("slack-listener", SLACK_FORM, SLACK_HEADERS[:2])
    assert outcome.triggers[0].reason.endswith(
        "desc = missing header in payload: ContentType application/x-www-form-urlencoded"
    )
    on = Setup(SLACK.replace('tekton.dev/payload-validation: "false"', 'tekton.dev/payload-validation: "true"'))
    answer, _ = on.send("slack-listener", SLACK_FORM, SLACK_HEADERS)
    assert answer.status == 400
    assert b"invalid character 'o' in literal true (expecting 'r')" in answer.body


PIPELINE_TEMPLATE = """apiVersion: triggers.tekton.dev/v1beta1
kind: TriggerTemplate
metadata: {name: pipeline-template}
spec:
  params:
  - {name: gitrevision, default: main}
  - {name: gitrepositoryurl}
  - {name: message, default: This is the default message}
  - {name: contenttype}
  resourcetemplates:
  - apiVersion: tekton.dev/v1
    kind: PipelineRun
    metadata: {generateName: simple-pipeline-run-}
    spec:
      pipelineRef: {name: simple-pipeline}
      params:
      - {name: message, value: $(tt.params.message)}
      - {name: contenttype, value: $(tt.params.contenttype)}
      - {name: git-revision, value: $(tt.params.gitrevision)}
      - {name: git-url, value: $(tt.params.gitrepositoryurl)}
"""

EMBEDDED = (
    """
apiVersion: triggers.tekton.dev/v1beta1
kind: EventListener
metadata: {name: listener-embed-binding}
spec:
  serviceAccountName: tekton-triggers-example-sa
  triggers:
  - name: foo-trig
    bindings:
    - ref: pipeline-binding
    - ref: message-binding
    template: {ref: pipeline-template}
---
apiVersion: triggers.tekton.dev/v1beta1
kind: TriggerBinding
metadata: {name: pipeline-binding}
spec:
  params:
  - {name: gitrevision, value: $(body.head_commit.id)}
  - {name: gitrepositoryurl, value: $(body.repository.url)}
  - {name: contenttype, value: $(header.Content-Type)}
---
apiVersion: triggers.tekton.dev/v1beta1
kind: TriggerBinding
metadata: {name: message-binding}
spec:
  params:
  - {name: message, value: Hello from the Triggers EventListener!}
---
"""
    + PIPELINE_TEMPLATE
)


def test_9_embedded_bindings_and_a_template_default_for_a_missing_field():
    body = b'{"repository": {"url": "https://github.com/tektoncd/triggers.git"}}'
    headers = [("Content-Type", "application/json"), ("X-Hub-Signature-256", "sha256=ignored-without-interceptor")]
    _, outcome = Setup(EMBEDDED).send("listener-embed-binding", body, headers)
    (trigger,) = outcome.triggers
    assert trigger.status == "created", trigger.reason
    (run,) = trigger.resources
    assert run.generate_name == "simple-pipeline-run-"
    assert {p["name"]: p["value"] for p in run.manifest["spec"]["params"]} == {
        "message": "Hello from the Triggers EventListener!",
        "contenttype": "application/json",
        "git-revision": "main",
        "git-url": "https://github.com/tektoncd/triggers.git",
    }
