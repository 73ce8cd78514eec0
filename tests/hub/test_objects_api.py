"""The objects API over real HTTP: apply, list, read and delete with scoped tokens; Secrets never given back."""

from __future__ import annotations

import pytest
import requests

from tests.conftest import served
from tests.hub.test_auth import bearer, issue
from tests.triggers.test_acceptance_providers import GITHUB

SECRET = "apiVersion: v1\nkind: Secret\nmetadata: {name: github-secret}\nstringData: {secretToken: '1234567'}\n"


@pytest.fixture
def hub(app):
    with served(app) as url:
        yield url


def test_apply_list_get_delete_with_scoped_tokens(app, hub):
    writer = bearer(issue(app, "writer", "objects:write", "objects:read"))
    reader = bearer(issue(app, "reader", "objects:read"))
    yaml_type = {"Content-Type": "application/yaml"}
    applied = requests.post(f"{hub}/v1/objects?namespace=ns1", data=GITHUB + "---\n" + SECRET,
                            headers={**writer, **yaml_type}, timeout=10)  # fmt: skip
    assert applied.status_code == 200, applied.text
    assert [(d["kind"], d["namespace"], d["name"], d["action"]) for d in applied.json()["data"]] == [
        ("EventListener", "ns1", "github-listener", "created"),
        ("TriggerBinding", "ns1", "github-pr-binding", "created"),
        ("TriggerTemplate", "ns1", "github-template", "created"),
        ("Secret", "ns1", "github-secret", "created"),
    ]
    listed = requests.get(f"{hub}/v1/objects/el?namespace=ns1", headers=reader, timeout=10).json()["data"]
    assert [o["metadata"]["name"] for o in listed] == ["github-listener"]
    secret = requests.get(f"{hub}/v1/objects/secrets/github-secret?namespace=ns1", headers=reader, timeout=10)
    assert secret.json()["data"]["data"] == {"secretToken": None} and "1234567" not in secret.text
    everywhere = requests.get(f"{hub}/v1/objects/secret?allNamespaces=true", headers=reader, timeout=10)
    assert "1234567" not in everywhere.text and len(everywhere.json()["data"]) == 1

    # No token, or the wrong scope: refused before anything is read or written.
    assert requests.get(f"{hub}/v1/objects/el", timeout=10).status_code == 401
    denied = requests.post(f"{hub}/v1/objects", data=SECRET, headers={**reader, **yaml_type}, timeout=10)
    assert denied.status_code == 403 and "objects:write" in denied.json()["message"]

    # Bad documents: 400 with the admission's words, nothing written.
    bad = GITHUB.replace("ref: github-template", "{}")
    refused = requests.post(f"{hub}/v1/objects?namespace=ns2", data=bad, headers={**writer, **yaml_type}, timeout=10)
    assert refused.status_code == 400
    assert "EventListener 'github-listener' is invalid" in refused.json()["message"]
    assert requests.get(f"{hub}/v1/objects/tb?namespace=ns2", headers=reader, timeout=10).json()["data"] == []
    unknown = requests.get(f"{hub}/v1/objects/deployments", headers=reader, timeout=10)
    assert unknown.status_code == 400 and "keeps no objects of kind" in unknown.json()["message"]

    deleted = requests.delete(f"{hub}/v1/objects/tt/github-template?namespace=ns1", headers=writer, timeout=10)
    assert deleted.status_code == 200
    again = requests.delete(f"{hub}/v1/objects/tt/github-template?namespace=ns1", headers=writer, timeout=10)
    assert again.status_code == 404 and 'TriggerTemplate "github-template" not found' in again.json()["message"]
