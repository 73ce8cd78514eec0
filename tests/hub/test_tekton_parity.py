"""Where taskhub answers exactly as the Tekton Hub API server (tektoncd/hub, goa v3) does: status, headers, bytes.

The expected bytes follow upstream's generated goa server code (api/v1/gen/http/*/server), goa's error encoding
(goa.design/goa/v3/http) and its CORS plugin; the error id is random upstream too, so it is read from the body.
"""

from __future__ import annotations

import json
import re

import pytest

from hub.app import create_app
from tests.catalog.factories import write_version
from tests.conftest import register, sync

GOA_ID = re.compile(rb'"id":"([A-Za-z0-9_-]{8})"')


def goa_bytes(name: str, message: str, error_id: str) -> bytes:
    return (
        f'{{"name":"{name}","id":"{error_id}","message":{json.dumps(message)},'
        '"temporary":false,"timeout":false,"fault":false}\n'
    ).encode()


def assert_goa_answer(response, status: int, name: str, message: str) -> None:
    """The exact answer of goa: JSON content type, the body as Go's json.Encoder writes it, and a Goa-Error header
    only for the errors the service design declares (goa's own validation errors have none)."""
    assert response.status_code == status
    assert response.headers["Content-Type"] == "application/json"
    assert response.headers.get("Goa-Error") == (None if "_" in name else name)
    found = GOA_ID.search(response.data)
    assert found, response.data
    assert response.data == goa_bytes(name, message, found.group(1).decode())


@pytest.mark.parametrize(
    "path",
    [
        "/v1/resource/tekton/task/git-clone/9.9",
        "/v1/resource/tekton/task/git-clone/9.9/readme",
        "/v1/resource/tekton/task/git-clone/9.9/yaml",
        "/v1/resource/tekton/task/git-clone/9.9/raw",
        "/v1/resource/version/999999",
        "/v1/resource/tekton/task/no-such-task",
    ],
)
def test_unknown_resources_and_versions(client, path):
    assert_goa_answer(client.get(path), 404, "not-found", "resource not found")


def test_request_validation_errors_word_for_word(client):
    assert_goa_answer(
        client.get("/v1/query?name=git&match=fuzzy"),
        400,
        "invalid_enum_value",
        'value of match must be one of "exact", "contains" but got value "fuzzy"',
    )
    assert_goa_answer(
        client.get("/v1/query?limit=abc"),
        400,
        "invalid_field_type",
        'invalid value "abc" for "limit", must be a unsigned integer',
    )
    assert_goa_answer(
        client.get("/v1/resources?limit=-1"),
        400,
        "invalid_field_type",
        'invalid value "-1" for "limit", must be a unsigned integer',
    )
    assert_goa_answer(
        client.get("/v1/resource/tekton/task/git-clone?pipelinesversion=v0.9"),
        400,
        "invalid_pattern",
        'pipelinesversion must match the regexp "^\\\\d+(?:\\\\.\\\\d+){0,2}$" but got value "v0.9"',
    )
    assert_goa_answer(
        client.get("/v1/query?kinds=abc"),
        400,
        "invalid-kind",
        "resource kind 'abc' not supported. Supported kinds are [Task Pipeline StepAction]",
    )


@pytest.mark.parametrize(
    ("path", "field"),
    [("/v1/resource/abc", "id"), ("/v1/resource/abc/versions", "id"), ("/v1/resource/version/abc", "versionID")],
)
def test_ids_that_are_not_unsigned_integers(client, path, field):
    message = f'invalid value "abc" for "{field}", must be a unsigned integer'
    assert_goa_answer(client.get(path), 400, "invalid_field_type", message)


def test_hub_url_paths_write_the_kind_as_stored(client):
    resource = client.get("/v1/resource/tekton/task/git-clone").get_json()["data"]
    assert resource["hubURLPath"] == "tekton/Task/git-clone"
    assert resource["latestVersion"]["hubURLPath"] == "tekton/Task/git-clone/0.10"
    assert resource["hubRawURLPath"] == "resource/tekton/task/git-clone/raw"  # lower case here, as upstream
    version = client.get("/v1/resource/tekton/task/git-clone/0.9").get_json()["data"]
    assert version["hubURLPath"] == version["resource"]["hubURLPath"] == "tekton/Task/git-clone/0.9"
    listed = client.get(f"/v1/resource/{resource['id']}/versions").get_json()["data"]
    assert listed["latest"]["hubURLPath"] == "tekton/Task/git-clone/0.10"
    step = client.get("/v1/resource/tekton/stepaction/git-clone").get_json()["data"]
    assert step["hubURLPath"] == "tekton/StepAction/git-clone"


UPSTREAM_CATEGORIES = [
    "Automation", "Build Tools", "CLI", "Cloud", "Code Quality", "Continuous Integration", "Deployment",
    "Developer Tools", "Git", "Image Build", "Integration & Delivery", "Kubernetes", "Messaging", "Monitoring",
    "Networking", "Openshift", "Publishing", "Security", "Storage", "Testing",
]  # fmt: skip


def test_categories_lists_every_configured_category(client, settings):
    for path in ("/v1/categories", "/categories"):
        data = client.get(path).get_json()["data"]
        assert [c["name"] for c in data] == UPSTREAM_CATEGORIES  # used or not, sorted by name
    # The sample uses only some of them; every category keeps its id in resource bodies.
    git = client.get("/v1/resource/tekton/task/git-clone").get_json()["data"]["categories"]
    assert git == [c for c in data if c["name"] == "Git"]
    custom = create_app({**vars(settings), "categories": "Git, Tekton Things"}).test_client()
    names = [c["name"] for c in custom.get("/v1/categories").get_json()["data"]]
    assert names == ["Git", "Tekton Things"]
    again = custom.get("/categories").get_json()["data"]
    assert [c["id"] for c in again] == [c["id"] for c in custom.get("/v1/categories").get_json()["data"]]


def test_cors_as_upstream(client):
    origin = {"Origin": "https://ui.example"}
    plain = client.get("/v1/resource/tekton/task/git-clone", headers=origin)
    assert plain.headers["Access-Control-Allow-Origin"] == "https://ui.example"
    assert plain.headers["Vary"] == "Origin"
    preflight = client.options("/v1/query", headers={**origin, "Access-Control-Request-Method": "GET"})
    assert preflight.status_code == 204 and preflight.data == b""
    assert dict(preflight.headers) == {
        "Access-Control-Allow-Origin": "https://ui.example",
        "Vary": "Origin",
        "Access-Control-Allow-Methods": "GET",
    }
    unversioned = client.options("/categories", headers={**origin, "Access-Control-Request-Method": "GET"})
    assert unversioned.status_code == 204
    assert unversioned.headers["Access-Control-Allow-Methods"] == "GET, POST, PUT"
    assert unversioned.headers["Access-Control-Allow-Headers"] == "Content-Type, Authorization"
    error = client.get("/v1/resource/tekton/task/nope", headers=origin)
    assert error.status_code == 404 and error.headers["Access-Control-Allow-Origin"] == "https://ui.example"
    without = client.get("/v1/resource/tekton/task/git-clone")
    assert "Access-Control-Allow-Origin" not in without.headers and "Vary" not in without.headers
    options = client.options("/v1/resource/tekton/task/git-clone")
    assert options.status_code == 204 and "Access-Control-Allow-Origin" not in options.headers


def test_cors_origins_can_be_narrowed_or_closed(settings, indexed):
    narrowed = create_app({**vars(settings), "cors_origins": "https://ui.example"}).test_client()
    good = narrowed.get("/v1/catalogs", headers={"Origin": "https://ui.example"})
    assert good.headers["Access-Control-Allow-Origin"] == "https://ui.example"
    other = narrowed.get("/v1/catalogs", headers={"Origin": "https://evil.example"})
    assert "Access-Control-Allow-Origin" not in other.headers
    closed = create_app({**vars(settings), "cors_origins": ""}).test_client()
    assert "Access-Control-Allow-Origin" not in closed.get("/v1/catalogs", headers={"Origin": "https://x"}).headers


def test_status_says_no_store_only(client):
    for path in ("/v1", "/"):
        response = client.get(path)
        assert response.headers["Cache-Control"] == "no-store"


MANIFEST = """apiVersion: tekton.dev/v1
kind: Task
metadata:
  name: deployer
  labels:
    app.kubernetes.io/version: "{version}"
  annotations:
    tekton.dev/pipelines.minVersion: "{min_version}"
    tekton.dev/tags: "canary deployment,  Rollout"
    tekton.dev/platforms: "{platforms}"
spec:
  description: |
    Deploys things.
  steps:
    - name: deploy
      image: busybox
      script: echo deploy
"""


@pytest.fixture
def deployer(client, engine, settings, tmp_path):
    """A catalog whose one Task has two versions with different platforms and minimum Pipelines versions."""
    for version, min_version, platforms in (("0.1", "0.20.0", "linux/amd64"), ("0.2", "0.50.0", "linux/arm64")):
        text = MANIFEST.format(version=version, min_version=min_version, platforms=platforms)
        write_version(tmp_path / "mine", "deployer", version, text)
    register(engine, "mine", tmp_path / "mine")
    sync(engine, settings, "mine")
    return client


def test_tags_split_on_commas_and_whitespace_and_descriptions_keep_their_newline(deployer):
    data = deployer.get("/v1/resource/mine/task/deployer").get_json()["data"]
    assert [t["name"] for t in data["tags"]] == ["canary", "deployment", "Rollout"]
    assert data["latestVersion"]["description"] == "Deploys things.\n"


def test_platforms_stay_the_union_of_every_version_with_pipelinesversion(deployer):
    data = deployer.get("/v1/resource/mine/task/deployer?pipelinesversion=0.30").get_json()["data"]
    assert [v["version"] for v in data["versions"]] == ["0.1"]
    assert data["latestVersion"]["version"] == "0.1"
    assert [p["name"] for p in data["latestVersion"]["platforms"]] == ["linux/amd64"]
    assert [p["name"] for p in data["platforms"]] == ["linux/amd64", "linux/arm64"]


def test_artifact_hub_stats_and_what_stays_a_tekton_hub_404(client):
    stats = client.get("/api/v1/stats")
    assert stats.status_code == 200 and stats.headers["Content-Type"] == "application/json"
    body = stats.get_json()
    assert set(body) == {"generated_at", "packages", "snapshots", "repositories", "organizations", "users"}
    assert body["packages"]["total"] == 19 and body["packages"]["running_total"][-1][1] == 19
    assert body["repositories"]["total"] == 3  # the test catalog, once per kind it holds
    assert body["users"] == {"total": 0} and body["organizations"] == {"total": 0}
    # Pipelines-as-Code reads a 404 here as "a Tekton Hub": a /v1 base URL must keep reading as one.
    for path in ("/v1/api/v1/stats", "/v1/no/such", "/v1/api/v1/packages/x"):
        missing = client.get(path)
        assert (missing.status_code, missing.data) == (404, b"404 page not found\n"), path
        assert missing.headers["Content-Type"] == "text/plain; charset=utf-8"
    assert b"no such kind" not in client.get("/api/v1/nope/x").data


def test_a_catalog_org_is_its_artifact_hub_organization(client, engine, settings, tmp_path):
    """`catalog add --org` (Tekton Hub's catalog `org`): a directory catalog's installs get a real org label."""
    write_version(tmp_path / "acme", "hello", "0.1")
    register(engine, "acme", tmp_path / "acme", org="acme-corp")
    sync(engine, settings, "acme")
    package = client.get("/api/v1/packages/tekton-task/acme/hello").get_json()
    assert package["repository"]["organization_name"] == "acme-corp"
    found = client.get("/api/v1/packages/search?org=acme-corp").get_json()["packages"]
    assert [p["name"] for p in found] == ["hello"]
