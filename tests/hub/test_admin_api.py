"""The write and admin endpoints: each needs its scope, and the work each queues is really done by a worker."""

import dataclasses
import shutil

import pytest
from sqlalchemy.orm import Session

from catalog.registry import OciRegistry
from catalog.sync import add_catalog, get_catalog
from hub.app import create_app
from jobs import CATALOG_SYNC, JobQueue, QueueTimes
from tests.hub.test_auth import bearer, issue
from tests.hub.test_tekton_api import assert_goa_error
from tests.hub.workers import job_ended, working


@pytest.fixture
def admin_app(settings, indexed):
    app = create_app(dataclasses.replace(settings, token_cache_seconds=0))
    app.extensions["taskhub.services"].queue.times = QueueTimes(retry_base=0)  # retried at once, not after 5 s
    return app


def accepted(response, kind: str, name: str) -> str:
    """The Location of a 202 that queued a job of `kind` on catalog `name`."""
    assert response.status_code == 202, response.get_data(as_text=True)
    body = response.get_json()
    assert (body["kind"], body["catalogName"], body["target"]) == (kind, name, name)
    assert body["status"] == body["state"] in ("queued", "running")
    assert response.headers["Location"] == f"/v1/jobs/{body['id']}" == body["links"]["self"]
    return response.headers["Location"]


def register(app, name, source, **kwargs):
    with Session(app.extensions["taskhub.engine"]) as s, s.begin():
        add_catalog(s, name, str(source), **kwargs)


@pytest.mark.parametrize(
    ("method", "path", "scope"),
    [
        ("post", "/v1/catalog/tekton/refresh", "catalog:refresh"),
        ("post", "/catalog/tekton/refresh", "catalog:refresh"),  # upstream's unversioned path
        ("post", "/v1/catalog/refresh", "catalog:refresh"),
        ("post", "/v1/registries/tekton/sync", "registry:sync"),
        ("post", "/v1/catalog/tekton/publish", "catalog:publish"),
        ("post", "/v1/tokens", "tokens:create"),
        ("get", "/v1/tokens", "tokens:create"),
        ("delete", "/v1/tokens/someone", "tokens:create"),
        ("post", "/v1/catalogs", "admin"),
        ("post", "/v1/registries", "admin"),
        ("patch", "/v1/catalogs/tekton", "catalog:refresh"),
        ("patch", "/v1/registries/tekton", "registry:sync"),
    ],
)
def test_every_admin_endpoint_needs_its_scope(admin_app, method, path, scope):
    client = admin_app.test_client()
    anonymous = getattr(client, method)(path)
    assert_goa_error(anonymous, 401, "missing-token", f"needs an API token with the {scope!r} scope")
    reader = issue(admin_app, "reader", "read", "runs:write")
    forbidden = getattr(client, method)(path, headers=bearer(reader))
    assert_goa_error(forbidden, 403, "invalid-scopes", f"token 'reader' lacks the {scope!r} scope")


def test_refresh_queues_a_sync_a_worker_does_and_a_failing_one_stops_with_its_error(
    admin_app, fixture_catalog, tmp_path
):
    source = tmp_path / "mine"
    for task in ("git-clone", "yq"):
        shutil.copytree(fixture_catalog / "task" / task, source / "task" / task)
    register(admin_app, "mine", source)
    client = admin_app.test_client()
    token = bearer(issue(admin_app, "ci", "catalog:refresh"))
    assert_goa_error(client.get("/v1/resource/mine/task/git-clone"), 404, "not-found")

    with working(admin_app):
        location = accepted(client.post("/v1/catalog/mine/refresh", headers=token), "catalog-sync", "mine")
        job = job_ended(client, location, token)  # the token that queued it reads it
        assert job["state"] == "succeeded" and job["attempts"] == 1 and job["createdBy"] == "ci"
        assert job["result"][0].startswith("mine: 2 resources,")
        assert client.get("/v1/resource/mine/task/git-clone").status_code == 200

        shutil.rmtree(source)
        failed = job_ended(client, accepted(client.post("/v1/catalog/mine/refresh", headers=token), "catalog-sync",
                                            "mine"), token)  # fmt: skip
        assert (failed["state"], failed["attempts"]) == ("failed", 3) and str(source) in failed["error"]
        assert client.get("/v1/resource/mine/task/git-clone").status_code == 200  # the previous index is kept
        with Session(admin_app.extensions["taskhub.engine"]) as s:
            assert str(source) in (get_catalog(s, "mine").last_error or "")

        everything = client.post("/v1/catalog/refresh", headers=token)
        assert everything.status_code == 202
        ended = [job_ended(client, j["links"]["self"], token) for j in everything.get_json()]
        assert [(j["target"], j["state"]) for j in ended] == [("mine", "failed"), ("tekton", "succeeded")]
        assert ended[1]["result"][1] == "  no changes"
    assert_goa_error(client.post("/v1/catalog/nope/refresh", headers=token), 404, "not-found", "'nope'")


def test_publish_then_sync_the_registry(admin_app, registry):
    client = admin_app.test_client()
    publisher = bearer(issue(admin_app, "publisher", "catalog:publish"))
    target = f"{registry.host}/catalog"
    register(admin_app, "local", target, repositories=[])  # the publish API pushes only to the hub's registries
    with working(admin_app):
        published = client.post("/v1/catalog/tekton/publish", json={"registry": target}, headers=publisher)
        job = job_ended(client, accepted(published, "publish", "tekton"), publisher)
        assert job["state"] == "succeeded" and job["payload"] == {"registry": target}
        assert job["result"][0] == f"tekton -> {target}: 47 pushed, 0 already there, 0 failed"
        assert OciRegistry(registry.host).head_manifest(f"{target}/task/git-clone:0.10") is not None
        assert client.get("/v1/resource/tekton/task/git-clone/0.10").status_code == 200

        syncer = bearer(issue(admin_app, "syncer", "registry:sync"))
        synced = job_ended(client, accepted(client.post("/v1/registries/local/sync", headers=syncer),
                                            "registry-sync", "local"), syncer)  # fmt: skip
        assert synced["state"] == "succeeded" and synced["result"][1] == "  47 added, 0 updated, 0 removed"
        assert client.get("/v1/resource/local/task/git-clone/0.10").status_code == 200
    assert_goa_error(client.post("/v1/registries/tekton/sync", headers=syncer), 404, "not-found", "not a registry")


def test_publish_refuses_a_registry_the_hub_was_not_given(admin_app, fake_registry):
    fake = fake_registry(lambda request: (500, {}, b""))
    register(admin_app, "local", f"{fake.host}/catalog", repositories=[])
    token = issue(admin_app, "publisher", "catalog:publish")
    client = admin_app.test_client()
    for target in (f"{fake.host}/elsewhere", f"{fake.host}/catalogue", "127.0.0.2:5000/catalog"):
        refused = client.post("/v1/catalog/tekton/publish", json={"registry": target}, headers=bearer(token))
        assert_goa_error(refused, 403, "registry-not-allowed", f"{target} is not under a registry added")
    assert fake.requests == []


def test_a_registry_answering_an_upload_with_a_body_does_not_fail_the_publish(fake_registry):
    uploads = 0

    def answer(request):
        nonlocal uploads
        if request.method == "POST":
            return 202, {"Location": "/v2/catalog/blobs/uploads/1"}, b"started, here is some text"
        uploads += 1
        return 201, {}, b'{"stored": true, "padding": "' + b"x" * 1000 + b'"}'

    fake = fake_registry(answer)
    pushed = OciRegistry(fake.url).push_blob(f"{fake.host}/catalog", b"layer", check=False)
    assert pushed.startswith("sha256:") and uploads == 1


@pytest.mark.parametrize(
    ("body", "status", "name", "message"),
    [
        ({"registry": "not a registry!"}, 400, "invalid-payload", "not a registry!"),
        ({"registry": "127.0.0.1:5000/x:tag"}, 400, "invalid-payload", "without a tag"),
        ({}, 400, "invalid-payload", "'registry' must be a non-empty string"),
        (["registry"], 400, "invalid-payload", "must be a JSON object"),
    ],
)
def test_publish_refuses_bad_bodies(admin_app, body, status, name, message):
    token = issue(admin_app, "publisher", "catalog:publish")
    response = admin_app.test_client().post("/v1/catalog/tekton/publish", json=body, headers=bearer(token))
    assert_goa_error(response, status, name, message)


def test_tokens_over_the_api(admin_app):
    client = admin_app.test_client()
    ops = issue(admin_app, "ops", "tokens:create", "read", "catalog:refresh")
    created = client.post("/v1/tokens", json={"name": "ci", "scopes": ["catalog:refresh"]}, headers=bearer(ops))
    assert created.status_code == 201
    data = created.get_json()["data"]
    assert data["name"] == "ci" and data["scopes"] == ["catalog:refresh"] and data["expiresAt"]
    assert client.post("/v1/catalog/tekton/refresh", headers=bearer(data["token"])).status_code == 202

    beyond = client.post("/v1/tokens", json={"name": "x", "scopes": ["catalog:publish"]}, headers=bearer(ops))
    assert_goa_error(beyond, 403, "invalid-scopes", "token 'ops' lacks the 'catalog:publish' scope")
    unknown = client.post("/v1/tokens", json={"name": "x", "scopes": ["rating:read"]}, headers=bearer(ops))
    assert_goa_error(unknown, 400, "invalid-scopes", "unknown scope 'rating:read'")
    expiry = client.post("/v1/tokens", json={"name": "x", "scopes": ["read"], "expires": "-1d"}, headers=bearer(ops))
    assert_goa_error(expiry, 400, "invalid-expiry", "invalid expiry '-1d'")
    twice = client.post("/v1/tokens", json={"name": "ci", "scopes": ["read"]}, headers=bearer(ops))
    assert_goa_error(twice, 409, "conflict", "a live token named 'ci' exists")
    scopes = client.post("/v1/tokens", json={"name": "x", "scopes": "read"}, headers=bearer(ops))
    assert_goa_error(scopes, 400, "invalid-payload", "'scopes' must be a list of strings")
    huge = client.post(
        "/v1/tokens", data=b'{"name": "' + b"x" * 2_000_000 + b'"}', content_type="application/json",
        headers=bearer(ops),
    )  # fmt: skip
    assert_goa_error(huge, 413, "request-too-large")

    listed = client.get("/v1/tokens", headers=bearer(ops))
    assert [(t["name"], t["state"], t["createdBy"]) for t in listed.get_json()["data"]] == [("ci", "active", "ops")]
    assert data["token"] not in listed.text and data["token"][5:] not in listed.text

    root = issue(admin_app, "root", "admin")
    assert_goa_error(client.delete("/v1/tokens/root", headers=bearer(ops)), 404, "not-found", "that token 'ops' made")
    revoked = client.delete("/v1/tokens/ci", headers=bearer(ops))
    assert revoked.status_code == 200 and revoked.get_json()["data"]["state"] == "revoked"
    assert_goa_error(client.post("/v1/catalog/tekton/refresh", headers=bearer(data["token"])), 401, "revoked-token")
    assert_goa_error(client.delete("/v1/tokens/ci", headers=bearer(ops)), 404, "not-found", "no live token named 'ci'")
    granted = client.post("/v1/tokens", json={"name": "boss", "scopes": ["admin"]}, headers=bearer(root))
    assert granted.status_code == 201


def test_a_token_cannot_mint_a_token_that_outlives_it(admin_app):
    client = admin_app.test_client()
    hour = issue(admin_app, "hour", "admin", expires="1h")
    for expires in ("never", "2h", "2030-01-01"):
        longer = client.post(
            "/v1/tokens", json={"name": "x", "scopes": ["read"], "expires": expires}, headers=bearer(hour)
        )
        assert_goa_error(longer, 400, "invalid-expiry", "would outlive token 'hour'")
    shorter = client.post("/v1/tokens", json={"name": "x", "scopes": ["admin"], "expires": "30m"}, headers=bearer(hour))
    assert shorter.status_code == 201
    far = "9999-12-31T23:59:59-12:00"
    overflow = client.post("/v1/tokens", json={"name": "y", "scopes": ["read"], "expires": far}, headers=bearer(hour))
    assert_goa_error(overflow, 400, "invalid-expiry", "too far away")


def test_a_tokens_create_token_sees_and_revokes_only_what_it_made(admin_app):
    client = admin_app.test_client()
    issue(admin_app, "root", "admin")
    ops = issue(admin_app, "ops", "tokens:create", "read")
    other = issue(admin_app, "other", "tokens:create", "read")
    for creator, name in ((ops, "mine"), (other, "theirs")):
        made = client.post(
            "/v1/tokens", json={"name": name, "scopes": ["read"], "expires": "12h"}, headers=bearer(creator)
        )
        assert made.status_code == 201
    seen = client.get("/v1/tokens", headers=bearer(ops)).get_json()["data"]
    assert [t["name"] for t in seen] == ["mine"]
    for name in ("theirs", "root", "other"):
        assert_goa_error(client.delete(f"/v1/tokens/{name}", headers=bearer(ops)), 404, "not-found")
    assert client.delete("/v1/tokens/mine", headers=bearer(ops)).status_code == 200

    # A token later given the same name as a revoked one inherits none of what that one made.
    client.delete("/v1/tokens/other", headers=bearer(issue(admin_app, "boss", "admin")))
    again = issue(admin_app, "other", "tokens:create", "read")
    assert client.get("/v1/tokens", headers=bearer(again)).get_json()["data"] == []
    assert_goa_error(client.delete("/v1/tokens/theirs", headers=bearer(again)), 404, "not-found")


def test_private_mode_lets_a_scoped_token_do_its_job_without_read(settings, indexed):
    app = create_app(dataclasses.replace(settings, private=True, token_cache_seconds=0))
    client = app.test_client()
    token = issue(app, "ci", "catalog:refresh")
    queued = client.post("/v1/catalog/tekton/refresh", headers=bearer(token))
    assert queued.status_code == 202
    with working(app):
        assert job_ended(client, queued.headers["Location"], bearer(token))["state"] == "succeeded"
    assert_goa_error(client.get("/v1/catalogs", headers=bearer(token)), 403, "invalid-scopes", "'read'")


GIT_SOURCE = "https://github.com/tektoncd/catalog.git"  # adding fetches nothing: the first sync does


def test_catalogs_and_registries_are_added_with_their_refresh_and_changed_later(admin_app):
    client, admin = admin_app.test_client(), bearer(issue(admin_app, "root", "admin"))
    added = client.post("/v1/catalogs", json={"name": "upstream", "source": GIT_SOURCE, "refresh": "5m"}, headers=admin)
    assert added.status_code == 201 and added.headers["Location"] == "/v1/catalogs/upstream"
    data = added.get_json()["data"]
    assert {k: data[k] for k in ("name", "provider", "refresh", "lastSync")} == {
        "name": "upstream", "provider": "github", "refresh": "5m",
        "lastSync": {"at": None, "outcome": "never synced", "error": None},
    }  # fmt: skip
    assert data["nextSyncAt"] is not None and data["syncing"] is None  # due: the scheduler's next tick queues it
    assert "upstream" in [c["name"] for c in client.get("/v1/catalogs").get_json()["data"]]

    registry = {"name": "bundles", "registry": "registry.example/tekton", "repositories": ["task/hello"]}
    answer = client.post("/v1/registries", json={**registry, "refresh": "never"}, headers=admin).get_json()["data"]
    assert (answer["provider"], answer["refresh"], answer["nextSyncAt"]) == ("oci", "never", None)

    refresher, syncer = (
        bearer(issue(admin_app, "ci", "catalog:refresh")),
        bearer(issue(admin_app, "rs", "registry:sync")),
    )
    JobQueue(admin_app.extensions["taskhub.engine"]).enqueue(CATALOG_SYNC, "upstream")
    changed = client.patch("/v1/catalogs/upstream", json={"refresh": "never"}, headers=refresher)
    assert changed.status_code == 200
    assert {k: changed.get_json()["data"][k] for k in ("refresh", "nextSyncAt", "syncing")} == {
        "refresh": "never", "nextSyncAt": None, "syncing": "queued"
    }  # the sync asked for is still done  # fmt: skip
    assert (
        client.patch("/v1/registries/bundles", json={"refresh": "1h"}, headers=syncer).get_json()["data"]["refresh"]
        == "1h"
    )
    synced = client.patch("/v1/catalogs/tekton", json={"refresh": "1d"}, headers=refresher).get_json()["data"]
    assert synced["lastSync"]["outcome"] == "succeeded" and synced["lastSync"]["at"].endswith("+00:00")
    assert_goa_error(client.patch("/v1/registries/tekton", json={"refresh": "1h"}, headers=syncer), 404, "not-found",
                     "'tekton' is a catalog, not a registry")  # fmt: skip
    assert_goa_error(client.patch("/v1/catalogs/nope", json={"refresh": "1h"}, headers=refresher), 404, "not-found")


@pytest.mark.parametrize(
    ("path", "body", "reason", "message"),
    [
        ("/v1/catalogs", {"name": "x", "source": GIT_SOURCE, "refresh": "10x"}, "invalid-refresh",
         "refresh interval '10x': expected 'never' or a number of minutes, hours or days of at least 1m"),
        ("/v1/catalogs", {"name": "x", "source": GIT_SOURCE, "refesh": "5m"}, "invalid-payload",
         "unknown field 'refesh'"),
        ("/v1/catalogs", {"name": "x", "source": "/etc"}, "invalid-source", "add a directory or a file:// repository"),
        ("/v1/catalogs", {"name": "x", "source": "file:///srv/catalog"}, "invalid-source", "`taskhub catalog add`"),
        ("/v1/catalogs", {"name": "Bad Name", "source": GIT_SOURCE}, "invalid-name", "a DNS-1123 label"),
        ("/v1/catalogs", {"name": "x", "source": GIT_SOURCE, "revision": "--upload-pack=sh"}, "invalid-source",
         "must not begin with '-'"),
        ("/v1/catalogs", {"name": "x", "source": GIT_SOURCE, "type": "weird"}, "invalid-payload", "'type' must be"),
        ("/v1/registries", {"name": "x", "registry": "registry.example/t", "repositories": "task/a"},
         "invalid-payload", "'repositories' must be a list"),
        ("/v1/registries", {"name": "x", "registry": "registry.example/t", "refresh": 5}, "invalid-payload",
         "'refresh' must be a non-empty string"),
    ],
)  # fmt: skip
def test_bad_input_to_add_is_a_clear_400_and_adds_nothing(admin_app, path, body, reason, message):
    client = admin_app.test_client()
    answer = client.post(path, json=body, headers=bearer(issue(admin_app, "root", "admin")))
    assert_goa_error(answer, 400, reason, message)
    assert [c["name"] for c in client.get("/v1/catalogs").get_json()["data"]] == ["tekton"]


def test_a_taken_name_is_a_conflict_and_a_bad_interval_changes_nothing(admin_app):
    client, admin = admin_app.test_client(), bearer(issue(admin_app, "root", "admin"))
    taken = client.post("/v1/catalogs", json={"name": "tekton", "source": GIT_SOURCE}, headers=admin)
    assert_goa_error(taken, 409, "conflict", "catalog 'tekton' already exists")
    bad = client.patch("/v1/catalogs/tekton", json={"refresh": "30s"}, headers=admin)
    assert_goa_error(bad, 400, "invalid-refresh", "at least 1m")
    assert client.patch("/v1/catalogs/tekton", json={}, headers=admin).status_code == 400
    with Session(admin_app.extensions["taskhub.engine"]) as session:
        assert get_catalog(session, "tekton").refresh_seconds == 1800
