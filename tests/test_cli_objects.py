"""`taskhub apply|get|delete` and `taskhub secret create` run as a user runs them, on SQLite and PostgreSQL: what
is applied is kept as a cluster keeps it, refused documents change nothing, Secrets are never shown again."""

from __future__ import annotations

import json
import os
import subprocess

import yaml
from sqlalchemy import select

from catalog.db import make_engine
from runner.objects.models import StoredObject
from tests.test_cli import TASKHUB, run  # noqa: F401 (the fixture)
from tests.triggers.test_acceptance_providers import GITHUB

SECRET = """
apiVersion: v1
kind: Secret
metadata: {name: gitlab-secret}
type: Opaque
stringData: {secretToken: "1234567"}
"""


def test_apply_get_delete_the_github_example(run, tmp_path):  # noqa: F811
    run("db", "upgrade")
    (tmp_path / "github.yaml").write_text(GITHUB)
    applied = run("apply", "-f", str(tmp_path / "github.yaml"), "-n", "ns1").stdout.splitlines()
    assert applied == [
        "eventlistener.triggers.tekton.dev/github-listener created",
        "triggerbinding.triggers.tekton.dev/github-pr-binding created",
        "triggertemplate.triggers.tekton.dev/github-template created",
    ]
    again = run("apply", "-f", str(tmp_path / "github.yaml"), "-n", "ns1").stdout
    assert again.count(" unchanged") == 3

    listed = run("get", "el", "-n", "ns1").stdout.splitlines()
    assert listed[0].split() == ["NAME", "AGE"] and listed[1].split()[0] == "github-listener"
    shown = yaml.safe_load(run("get", "eventlistener", "github-listener", "-n", "ns1", "-o", "yaml").stdout)
    assert shown["metadata"]["namespace"] == "ns1" and len(shown["metadata"]["uid"]) == 36
    assert shown["spec"]["triggers"][0]["interceptors"][0]["ref"] == {"name": "github"}
    everywhere = run("get", "triggertemplates", "-A").stdout
    assert "NAMESPACE" in everywhere and "ns1" in everywhere and "github-template" in everywhere
    assert "No eventlisteners found in default." in run("get", "el").stderr

    # A change keeps the uid; a delete removes the object.
    changed = GITHUB.replace("serviceAccountName: tekton-triggers-example-sa", "serviceAccountName: other")
    (tmp_path / "github.yaml").write_text(changed)
    assert (
        "eventlistener.triggers.tekton.dev/github-listener configured"
        in run("apply", "-f", str(tmp_path / "github.yaml"), "-n", "ns1").stdout
    )
    after = json.loads(run("get", "el", "github-listener", "-n", "ns1", "-o", "json").stdout)
    assert after["metadata"]["uid"] == shown["metadata"]["uid"] and after["spec"]["serviceAccountName"] == "other"
    assert run("delete", "tt", "github-template", "-n", "ns1").stdout.strip() == (
        'triggertemplate.triggers.tekton.dev "github-template" deleted'
    )
    gone = run("get", "tt", "github-template", "-n", "ns1", check=False)
    assert gone.returncode == 1 and 'TriggerTemplate "github-template" not found in namespace "ns1"' in gone.stderr


def test_apply_refuses_with_every_reason_and_changes_nothing(run, tmp_path):  # noqa: F811
    run("db", "upgrade")
    bad = """
apiVersion: triggers.tekton.dev/v1beta1
kind: TriggerBinding
metadata: {name: good}
spec: {params: [{name: a, value: $(body.a)}]}
---
apiVersion: triggers.tekton.dev/v1beta1
kind: TriggerTemplate
metadata: {name: bad}
spec:
  params: [{name: a}]
  resourcetemplates:
  - {apiVersion: tekton.dev/v1, kind: TaskRun, spec: {params: [{name: x, value: $(tt.params.b)}]}}
---
apiVersion: triggers.tekton.dev/v1beta1
kind: EventListener
metadata: {name: Not_A_Name}
spec: {}
---
apiVersion: tekton.dev/v9
kind: Task
metadata: {name: t}
"""
    (tmp_path / "bad.yaml").write_text(bad)
    refused = run("apply", "-f", str(tmp_path / "bad.yaml"), check=False)
    assert refused.returncode == 1
    message = refused.stderr
    assert "document 2: TriggerTemplate 'bad' is invalid: undeclared param '$(tt.params.b)'" in message
    assert "document 3: EventListener 'Not_A_Name' is invalid: invalid value: Not_A_Name: metadata.name" in message
    assert "expected at least one, got none: spec.labelSelector, spec.namespaceSelector, spec.triggerGroups" in message
    assert 'document 4: Task is served as tekton.dev/v1 or tekton.dev/v1beta1, not "tekton.dev/v9"' in message
    assert "(nothing was applied)" in message
    assert "No triggerbindings found" in run("get", "tb").stderr

    in_ns1 = SECRET.replace("{name: gitlab-secret}", "{name: s, namespace: ns1}")
    mismatch = run("apply", "-f", "-", "-n", "other", check=False, stdin=in_ns1)
    assert mismatch.returncode == 1
    assert 'the namespace from the object "ns1" does not match the namespace "other"' in mismatch.stderr
    not_yaml = run("apply", "-f", "-", check=False, stdin="a: [")
    assert not_yaml.returncode == 1 and "standard input: not YAML or JSON" in not_yaml.stderr
    unknown = run("get", "deployments", check=False)
    assert unknown.returncode == 1 and 'the hub keeps no objects of kind "deployments"' in unknown.stderr


def test_secrets_are_sealed_and_never_shown(run, tmp_path):  # noqa: F811
    run("db", "upgrade")
    assert run("secret", "create", "github-secret", "--from-literal", "secretToken=1234567", "-n", "ns1").stdout == (
        "secret/github-secret created\n"
    )
    assert "secret/gitlab-secret created" in run("apply", "-f", "-", "-n", "ns1", stdin=SECRET).stdout
    for name, key in (("github-secret", "secretToken"), ("gitlab-secret", "secretToken")):
        shown = yaml.safe_load(run("get", "secret", name, "-n", "ns1", "-o", "yaml").stdout)
        assert shown["data"] == {key: None}
        assert "1234567" not in json.dumps(shown)
    # In the database the value is sealed with the key in the data directory.
    engine = make_engine(run.env["TASKHUB_DATABASE_URL"])
    with engine.connect() as conn:
        rows = conn.execute(select(StoredObject.manifest, StoredObject.sealed_data)).all()
    engine.dispose()
    assert all(b"1234567" not in (sealed or b"") and "1234567" not in json.dumps(m) for m, sealed in rows)
    assert oct((tmp_path / "data/secrets.key").stat().st_mode & 0o777) == "0o600"

    again = run("secret", "create", "github-secret", "--from-literal", "a=b", "-n", "ns1", check=False)
    assert again.returncode == 1 and 'Secret "github-secret" already exists in namespace "ns1"' in again.stderr
    bad = run("secret", "create", "x", "--from-literal", "novalue", check=False)
    assert bad.returncode == 2 and "expected KEY=VALUE" in bad.stderr
    # What `get` shows cannot be applied back as if it held the values.
    round_trip = run("get", "secret", "gitlab-secret", "-n", "ns1", "-o", "yaml").stdout
    refused = run("apply", "-f", "-", check=False, stdin=round_trip)
    assert refused.returncode == 1 and "data.secretToken is null" in refused.stderr
    # Another key cannot open them: a clear error, not garbage.
    env = {**run.env, "TASKHUB_SECRETS_KEY": "bm90LWEta2V5LW5vdC1hLWtleS1ub3QtYS1rZXktLS0="}
    other = subprocess.run([TASKHUB, "apply", "-f", "-", "-n", "ns1"], input=SECRET, env=env, capture_output=True,
                           text=True, timeout=120)  # fmt: skip
    assert other.returncode == 1 and "sealed with another key" in other.stderr
    assert os.path.exists(tmp_path / "data/secrets.key")
