"""The Tekton Hub v1 API against the test catalog: shapes, fixed upstream defects, caching."""

import json
from pathlib import Path

import pytest
import yaml

GOA_KEYS = {"name", "id", "message", "temporary", "timeout", "fault"}


def get_data(client, url):
    response = client.get(url)
    assert response.status_code == 200, (url, response.get_data(as_text=True))
    return response.get_json()["data"]


def assert_goa_error(response, status, name, message=None):
    assert response.status_code == status
    assert response.content_type == "application/json"
    body = json.loads(response.get_data())
    assert set(body) == GOA_KEYS
    assert body["name"] == name
    # goa names the errors its design declares in a header, not its own request validation errors.
    assert response.headers.get("Goa-Error") == (None if "_" in name else name)
    if message is not None:
        assert message in body["message"]


def test_resource_by_catalog_kind_name(client, fixture_catalog: Path):
    data = get_data(client, "/v1/resource/tekton/task/git-clone")
    assert set(data) == {
        "id", "name", "catalog", "categories", "kind", "hubURLPath", "hubRawURLPath", "latestVersion", "tags",
        "platforms", "rating", "versions",
    }  # fmt: skip
    assert data["name"] == "git-clone"
    assert data["kind"] == "Task"
    assert data["catalog"] == {"id": data["catalog"]["id"], "name": "tekton", "type": "community"}
    assert data["hubURLPath"] == "tekton/Task/git-clone"  # the kind as stored, as upstream writes it
    assert data["hubRawURLPath"] == "resource/tekton/task/git-clone/raw"
    on_disk = sorted(p.name for p in (fixture_catalog / "task" / "git-clone").iterdir() if p.is_dir())
    assert [v["version"] for v in data["versions"]] == sorted(on_disk, key=lambda v: tuple(map(int, v.split("."))))
    assert [v["version"] for v in data["versions"]][-2:] == ["0.9", "0.10"]
    latest = data["latestVersion"]
    assert latest["version"] == "0.10"  # upstream picked 0.9: versions compared as strings
    assert latest["hubRawURLPath"] == "resource/tekton/task/git-clone/0.10/raw"  # upstream swaps name/version
    assert latest["hubURLPath"] == "tekton/Task/git-clone/0.10"
    assert latest["deprecated"] is True
    assert latest["minPipelinesVersion"] == "0.38.0"
    assert latest["displayName"] == "git clone"
    assert latest["updatedAt"].endswith("Z") and "T" in latest["updatedAt"]
    assert [c["name"] for c in data["categories"]] == ["Git"]
    assert "linux/amd64" in {p["name"] for p in data["platforms"]}
    assert [t["name"] for t in data["tags"]] == sorted((t["name"] for t in data["tags"]), key=str.lower)


def test_not_deprecated_has_no_deprecated_key(client):
    latest = get_data(client, "/v1/resource/tekton/task/shellcheck")["latestVersion"]
    assert "deprecated" not in latest


@pytest.mark.parametrize(
    ("pipelines_version", "latest"),
    [
        ("0.29", "0.8"),
        ("0.29.0", "0.8"),
        ("0.38.0", "0.10"),
        ("0.100.0", "0.10"),
        ("0.21.0", "0.5"),
        ("1", "0.10"),
    ],
)
def test_pipelinesversion_is_compared_as_a_version(client, pipelines_version, latest):
    data = get_data(client, f"/v1/resource/tekton/task/git-clone?pipelinesversion={pipelines_version}")
    assert data["latestVersion"]["version"] == latest
    assert data["versions"][-1]["version"] == latest


def test_pipelinesversion_too_old_and_malformed(client):
    # "0.12.1" <= "0.9.0" as strings, so upstream answered with versions that need a newer Pipelines.
    response = client.get("/v1/resource/tekton/task/git-clone?pipelinesversion=0.9.0")
    assert_goa_error(response, 404, "not-found", "compatible with minPipelinesVersion")
    assert_goa_error(client.get("/v1/resource/tekton/task/git-clone?pipelinesversion=v0.9"), 400, "invalid_pattern")


def test_version_endpoints(client, fixture_catalog):
    manifest = (fixture_catalog / "task/git-clone/0.9/git-clone.yaml").read_text()
    readme = (fixture_catalog / "task/git-clone/0.9/README.md").read_text()
    data = get_data(client, "/v1/resource/tekton/task/git-clone/0.9")
    assert data["version"] == "0.9"
    assert data["resource"]["name"] == "git-clone" and data["resource"]["kind"] == "Task"
    assert data["hubRawURLPath"] == "resource/tekton/task/git-clone/0.9/raw"
    assert get_data(client, "/v1/resource/tekton/task/git-clone/0.9/yaml") == {"yaml": manifest}
    assert get_data(client, "/v1/resource/tekton/task/git-clone/0.9/readme") == {"readme": readme}
    raw = client.get("/v1/resource/tekton/task/git-clone/0.9/raw")
    assert raw.status_code == 200 and raw.get_data(as_text=True) == manifest
    assert raw.content_type.startswith("text/plain")
    latest_raw = client.get("/v1/resource/tekton/task/git-clone/raw").get_data(as_text=True)
    assert latest_raw == (fixture_catalog / "task/git-clone/0.10/git-clone.yaml").read_text()
    # Tekton's hub resolver normalises 0.9.0 to 0.9 and back; both spellings find the version.
    assert get_data(client, "/v1/resource/tekton/task/git-clone/0.9.0")["version"] == "0.9"


def test_rawurl_of_a_local_catalog_points_at_this_hub(client):
    latest = get_data(client, "/v1/resource/tekton/task/git-clone")["latestVersion"]
    assert latest["rawURL"] == "http://localhost/v1/resource/tekton/task/git-clone/0.10/raw"
    raw = client.get(latest["rawURL"].removeprefix("http://localhost"))
    assert yaml.safe_load(raw.get_data(as_text=True))["metadata"]["name"] == "git-clone"


def test_behind_a_tls_proxy_on_this_machine_links_say_https_and_from_elsewhere_the_header_is_ignored(client):
    path, https = "/v1/resource/tekton/task/git-clone", {"X-Forwarded-Proto": "https"}
    for proxy in ("127.0.0.1", "::1"):
        proxied = client.get(path, headers=https, environ_base={"REMOTE_ADDR": proxy}).get_json()["data"]
        assert proxied["latestVersion"]["rawURL"].startswith("https://localhost/"), proxy
    spoofed = client.get(path, headers=https, environ_base={"REMOTE_ADDR": "203.0.113.9"}).get_json()["data"]
    assert spoofed["latestVersion"]["rawURL"].startswith("http://localhost/")  # not the cached https answer either


def test_same_name_different_kinds(client):
    task = get_data(client, "/v1/resource/tekton/task/git-clone")
    step = get_data(client, "/v1/resource/tekton/stepaction/git-clone")
    assert step["kind"] == "StepAction" and task["id"] != step["id"]
    assert [v["version"] for v in step["versions"]] == ["0.1", "0.2"]
    assert get_data(client, "/v1/resource/tekton/pipeline/buildpacks")["kind"] == "Pipeline"


def test_ids_and_versions_list(client):
    by_name = get_data(client, "/v1/resource/tekton/task/buildah")
    assert get_data(client, f"/v1/resource/{by_name['id']}")["name"] == "buildah"
    versions = get_data(client, f"/v1/resource/{by_name['id']}/versions")
    assert versions["latest"]["version"] == "0.9"
    assert [v["version"] for v in versions["versions"]] == [f"0.{i}" for i in range(1, 10)]
    assert set(versions["latest"]) == {
        "id",
        "version",
        "rawURL",
        "webURL",
        "hubRawURLPath",
        "hubURLPath",
        "platforms",
    }
    by_version = get_data(client, f"/v1/resource/version/{versions['latest']['id']}")
    assert by_version["version"] == "0.9" and by_version["resource"]["name"] == "buildah"


def test_not_found_and_bad_kind(client):
    assert_goa_error(client.get("/v1/resource/tekton/task/no-such-task"), 404, "not-found")
    assert_goa_error(client.get("/v1/resource/tekton/task/git-clone/9.9"), 404, "not-found")
    assert_goa_error(client.get("/v1/resource/nope/task/git-clone"), 404, "not-found")
    assert_goa_error(client.get("/v1/resource/999999"), 404, "not-found")
    assert_goa_error(client.get("/v1/resource/tekton/Task/git-clone"), 400, "invalid_enum_value")
    unrouted = client.get("/v1/no/such/endpoint/at/all/really")
    assert (unrouted.status_code, unrouted.data) == (404, b"404 page not found\n")


def test_query(client):
    names = [r["name"] for r in get_data(client, "/v1/query?name=git")]
    assert names[0] == "git-clone"
    hits = get_data(client, "/v1/query?name=git&kinds=task")
    assert {r["kind"] for r in hits} == {"Task"}
    assert all("versions" not in r for r in hits)
    both = get_data(client, "/v1/query?name=git-clone&kinds=Task&kinds=stepaction&match=exact")
    assert sorted(r["kind"] for r in both) == ["StepAction", "Task"]
    assert [r["name"] for r in get_data(client, "/v1/query?categories=git&kinds=task")] == [
        "git-clone",
        "pull-request",
    ]
    tagged = get_data(client, "/v1/query?tags=image-build&tags=GIT")
    assert {"buildah", "git-clone"} <= {r["name"] for r in tagged}
    assert {r["name"] for r in get_data(client, "/v1/query?platforms=linux/s390x")} >= {"git-clone"}


def test_query_searches_display_name_description_and_tags(client):
    # "Kubernetes in Docker" is only in kind's display name / description, not in any resource name.
    assert [r["name"] for r in get_data(client, "/v1/query?name=kubernetes%20in%20docker")] == ["kind"]
    assert "shellcheck" in [r["name"] for r in get_data(client, "/v1/query?name=lint%20check")]
    assert "pull-request" in [r["name"] for r in get_data(client, "/v1/query?name=scm")]  # a tag


def test_query_errors(client):
    assert_goa_error(client.get("/v1/query?name=zzzz-nothing"), 404, "not-found")
    assert_goa_error(client.get("/v1/query?kinds=abc"), 400, "invalid-kind", "resource kind 'abc' not supported")
    assert_goa_error(client.get("/v1/query?limit=ten"), 400, "invalid_field_type")
    assert_goa_error(client.get("/v1/query?match=fuzzy"), 400, "invalid_enum_value")
    assert client.get("/v1/query?name=%25").status_code == 404  # LIKE wildcards are escaped


def test_paging_with_total_count(client):
    everything = client.get("/v1/resources")
    total = int(everything.headers["Pagination-Total-Count"])
    assert total == len(everything.get_json()["data"]) == 19
    page = client.get("/v1/resources?limit=5&offset=15")
    assert page.headers["Pagination-Total-Count"] == "19"
    assert [r["name"] for r in page.get_json()["data"]] == [r["name"] for r in everything.get_json()["data"]][15:]
    assert len(client.get("/v1/query?limit=99999999").get_json()["data"]) == 19


def test_catalogs_categories_status(client):
    catalogs = get_data(client, "/v1/catalogs")
    assert catalogs == [
        {"id": catalogs[0]["id"], "name": "tekton", "type": "community", "url": "", "provider": "local"}
    ]
    categories = get_data(client, "/v1/categories")
    assert [c["name"] for c in categories] == sorted(c["name"] for c in categories)
    assert len(categories) == 20 and "Git" in {c["name"] for c in categories}
    assert client.get("/categories").get_json() == {"data": categories}
    for path in ("/", "/v1"):
        assert client.get(path).get_json() == {
            "services": [{"name": "api", "status": "ok"}, {"name": "db", "status": "ok"}]
        }


def test_catalog_errors_endpoint(client):
    data = get_data(client, "/catalog/tekton/error")
    by_type = {group["type"]: group["errors"] for group in data}
    assert [group["type"] for group in data] == ["error", "warning", "info"]
    assert "task/yq/0.5/yq.yaml: version label '0.4' does not match the folder version '0.5'" in by_type["error"]
    assert any(e.startswith("pipeline/no-manifest/0.1: no manifest") for e in by_type["error"])
    assert_goa_error(client.get("/catalog/nope/error"), 404, "not-found")


@pytest.mark.parametrize(
    ("legacy", "target", "code"),
    [
        ("/query?name=git&kinds=task", "/v1/query?name=git&kinds=task", 302),
        ("/resources", "/v1/resources", 301),
        ("/resource/7", "/v1/resource/7", 302),
        ("/resource/7/versions", "/v1/resource/7/versions", 302),
        ("/resource/version/3", "/v1/resource/version/3", 302),
        (
            "/resource/tekton/task/git-clone?pipelinesversion=0.29",
            "/v1/resource/tekton/task/git-clone?pipelinesversion=0.29",
            302,
        ),
        ("/resource/tekton/task/git-clone/0.9", "/v1/resource/tekton/task/git-clone/0.9", 302),
    ],
)  # fmt: skip
def test_legacy_paths_redirect(client, legacy, target, code):
    response = client.get(legacy)
    assert response.status_code == code
    assert response.headers["Location"] == target


def test_etag_and_cache_control(client):
    first = client.get("/v1/resource/tekton/task/git-clone")
    etag = first.headers["ETag"]
    assert "max-age=" in first.headers["Cache-Control"] and "public" in first.headers["Cache-Control"]
    again = client.get("/v1/resource/tekton/task/git-clone", headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.data == b""
    assert client.get("/v1/resource/tekton/task/git-clone").headers["ETag"] == etag
    other = client.get("/v1/resource/tekton/task/buildah")
    assert other.headers["ETag"] != etag


def test_hub_resolver_calls(client, fixture_catalog):
    """What Tekton's hub resolver (type tekton) sends: the catalog as configured ("Tekton"), then .../yaml."""
    versions = [v["version"] for v in get_data(client, "/v1/resource/Tekton/task/git-clone")["versions"]]
    assert versions[-1] == "0.10"
    body = get_data(client, "/v1/resource/Tekton/task/git-clone/0.10/yaml")
    assert body["yaml"] == (fixture_catalog / "task/git-clone/0.10/git-clone.yaml").read_text()
    step = get_data(client, "/v1/resource/tekton/stepaction/git-clone/0.2/yaml")["yaml"]
    assert "kind: StepAction" in step


def test_cached_answers_follow_the_index(client, engine, settings, tmp_path):
    """A cached answer is reused only while the index is unchanged; a sync that changes it shows at once."""
    from tests.catalog.factories import write_version
    from tests.conftest import register, sync

    before = client.get("/v1/catalogs")
    assert client.get("/v1/catalogs").headers["ETag"] == before.headers["ETag"]
    write_version(tmp_path / "mine", "hello", "0.1")
    register(engine, "mine", tmp_path / "mine")
    sync(engine, settings, "mine")
    after = client.get("/v1/catalogs")
    assert [c["name"] for c in after.get_json()["data"]] == ["mine", "tekton"]
    assert after.headers["ETag"] != before.headers["ETag"]
    stale = client.get("/v1/catalogs", headers={"If-None-Match": before.headers["ETag"]})
    assert stale.status_code == 200


def test_status_reports_a_database_that_is_down(tmp_path):
    from hub.app import create_app

    broken = create_app({"database_url": f"sqlite:///{tmp_path}/missing-dir/x.db", "data_dir": str(tmp_path)})
    body = broken.test_client().get("/v1").get_json()
    assert body["services"][0] == {"name": "api", "status": "ok"}
    assert body["services"][1]["name"] == "db" and body["services"][1]["status"] == "Error"
    assert "unable to open database file" in body["services"][1]["error"]
    down = broken.test_client().get("/v1/resource/tekton/task/git-clone")
    assert_goa_error(down, 503, "unavailable", "database is unavailable")
    page = broken.test_client().get("/", headers={"Accept": "text/html"})
    assert page.status_code == 503 and "database is unavailable" in page.get_data(as_text=True)


@pytest.mark.parametrize(
    "path",
    [
        "/v1/resource/99999999999999999999999999",
        "/v1/resource/99999999999999999999999999/versions",
        "/v1/resource/version/99999999999999999999999999",
        "/v1/query?name=git&offset=99999999999999999999999999",
        "/v1/resource/tekton/task/git-clone/" + "9" * 300,
        "/v1/query?name=" + "%00" * 10,
    ],
)
def test_absurd_input_is_a_4xx_not_a_500(client, path):
    assert 400 <= client.get(path).status_code < 500


def test_nul_in_a_path_is_refused(client):
    assert_goa_error(client.get("/v1/resource/tek%00ton/task/git-clone"), 400, "bad-request", "NUL")
    assert client.get("/tek%00ton/task/git-clone", headers={"Accept": "text/html"}).status_code == 400


def test_nul_in_a_query_is_refused_encoded_or_raw(client):
    assert_goa_error(client.get("/v1/query?name=gi%00t"), 400, "bad-request", "NUL")
    raw = client.get("/v1/query", environ_overrides={"QUERY_STRING": "name=gi\x00t"})
    assert_goa_error(raw, 400, "bad-request", "NUL")


def test_a_405_says_which_methods_the_api_takes(client):
    refresh = client.delete("/v1/catalog/tekton/refresh")
    assert_goa_error(refresh, 405, "method-not-allowed")
    assert refresh.headers["Allow"] == "POST, OPTIONS"  # not the GET of the web page whose path has that shape
    query = client.post("/v1/query")
    assert query.status_code == 405 and set(query.headers["Allow"].split(", ")) == {"GET", "HEAD", "OPTIONS"}


def test_a_path_only_a_web_page_matches_is_not_an_api_operation(client):
    listed = client.get("/v1/catalog/refresh")  # POST only; a web page's route has that shape
    assert listed.status_code == 405 and listed.headers["Allow"] == "POST, OPTIONS"
    bad_id = client.post("/v1/runs/-1/cancel")  # no API route takes a negative id; a web page's GET route matches
    assert bad_id.status_code == 404 and bad_id.text == "404 page not found\n"
