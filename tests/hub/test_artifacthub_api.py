"""The Artifact Hub API against the test catalog: package shapes and values, versions, search, errors,
and the exact calls of Tekton's hub resolver (type artifact) and `tkn hub install --type artifact`."""

from __future__ import annotations

import hashlib
import json
import re
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import yaml

from catalog.models import Catalog
from hub.api.artifacthub_json import organization
from hub.app import create_app

API = "/api/v1/packages"


def get_json(client, url):
    response = client.get(url)
    assert response.status_code == 200, (url, response.get_data(as_text=True))
    return response.get_json()


def assert_error(response, status, message=None):
    """Artifact Hub's error body: {"message": ...} as JSON."""
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.content_type == "application/json"
    body = json.loads(response.get_data())
    assert set(body) == {"message"}
    if message is not None:
        assert message in body["message"]


def on_disk_versions(sample: Path, kind: str, name: str) -> list[str]:
    """The version folders of a resource as x.y.z, newest first."""
    folders = [p.name for p in (sample / kind / name).iterdir() if p.is_dir()]
    ordered = sorted(folders, key=lambda v: tuple(map(int, v.split("."))), reverse=True)
    return [v if v.count(".") == 2 else v + ".0" for v in ordered]


def annotations(manifest: Path) -> dict[str, str]:
    return yaml.safe_load(manifest.read_text())["metadata"]["annotations"]


def test_package_version_carries_the_manifest_and_its_metadata(client, fixture_catalog):
    folder = fixture_catalog / "task/git-clone/0.9"
    manifest = folder / "git-clone.yaml"
    body = get_json(client, f"{API}/tekton-task/tekton/git-clone/0.9.0")
    assert body["name"] == body["normalized_name"] == "git-clone"
    assert body["version"] == "0.9.0"
    assert body["data"]["manifestRaw"] == manifest.read_text()
    assert body["digest"] == hashlib.sha256(manifest.read_bytes()).hexdigest()
    wanted = annotations(manifest)
    assert body["data"]["pipelines.minVersion"] == wanted["tekton.dev/pipelines.minVersion"]
    assert sorted(body["data"]["platforms"]) == sorted(p.strip() for p in wanted["tekton.dev/platforms"].split(","))
    assert body["display_name"] == wanted["tekton.dev/displayName"]
    assert body["deprecated"] is (wanted.get("tekton.dev/deprecated") == "true")
    assert body["keywords"][:2] == ["tekton", "task"] and "git" in body["keywords"]
    assert body["readme"] == (folder / "README.md").read_text()
    assert body["prerelease"] is False
    assert [v["version"] for v in body["available_versions"]] == on_disk_versions(fixture_catalog, "task", "git-clone")
    assert all(v["prerelease"] is False and isinstance(v["ts"], int) for v in body["available_versions"])
    repository = body["repository"]
    assert repository["name"] == "tekton" and repository["kind"] == 7
    assert "organization_name" not in repository  # a local directory has no owner
    # content_url is where `kubectl apply -f` gets the same bytes.
    raw = client.get(body["content_url"].removeprefix("http://localhost"))
    assert raw.status_code == 200 and raw.get_data() == manifest.read_bytes()


def test_two_part_and_full_versions_name_the_same_package_version(client):
    full = get_json(client, f"{API}/tekton-task/tekton/git-clone/0.9.0")
    short = get_json(client, f"{API}/tekton-task/tekton/git-clone/0.9")
    assert short == full
    assert get_json(client, f"{API}/tekton-task/tekton/git-clone/0.10")["version"] == "0.10.0"


def test_package_without_version_is_the_newest(client, fixture_catalog):
    body = get_json(client, f"{API}/tekton-task/tekton/git-clone")
    assert body["version"] == on_disk_versions(fixture_catalog, "task", "git-clone")[0] == "0.10.0"
    assert body["data"]["manifestRaw"] == (fixture_catalog / "task/git-clone/0.10/git-clone.yaml").read_text()
    assert get_json(client, f"{API}/tekton-task/tekton/git-clone/summary")["version"] == "0.10.0"


def test_pipelines_and_stepactions(client, fixture_catalog):
    pipeline = get_json(client, f"{API}/tekton-pipeline/tekton/buildpacks")
    assert pipeline["repository"]["kind"] == 11
    manifest = fixture_catalog / "pipeline/buildpacks/0.2/buildpacks.yaml"
    assert pipeline["data"]["manifestRaw"] == manifest.read_text()
    spec_tasks = yaml.safe_load(manifest.read_text())["spec"]["tasks"]
    assert [t["name"] for t in pipeline["data"]["tasks"]] == [t["name"] for t in spec_tasks]
    task = get_json(client, f"{API}/tekton-task/tekton/buildpacks")
    assert task["data"]["manifestRaw"] != pipeline["data"]["manifestRaw"]
    step = get_json(client, f"{API}/tekton-stepaction/tekton/git-clone")
    assert step["repository"]["kind"] == 23
    assert [v["version"] for v in step["available_versions"]] == on_disk_versions(
        fixture_catalog, "stepaction", "git-clone"
    )
    assert "kind: StepAction" in step["data"]["manifestRaw"]


@pytest.mark.parametrize(
    "path",
    [
        f"{API}/helm/tekton/git-clone",
        f"{API}/tekton-task/nope/git-clone",
        f"{API}/tekton-task/tekton/no-such-task",
        f"{API}/tekton-task/tekton/git-clone/9.9.9",
        f"{API}/tekton-task/tekton/git-clone/not-a-version",
        f"{API}/tekton-task/tekton/git-clone/" + "9" * 300,
        f"{API}/tekton-pipeline/tekton/git-clone",  # a Task, not a Pipeline
        f"{API}/tekton-stepaction/tekton-catalog-tasks/git-clone",  # the alias is for tasks only
        "/api/v1/no/such/endpoint/at/all",
    ],
)
def test_unknown_things_are_404_in_artifact_hub_shape(client, path):
    assert_error(client.get(path), 404)


def test_error_messages_name_what_was_missing(client):
    assert_error(client.get(f"{API}/tekton-task/tekton/git-clone/9.9.9"), 404, "tekton-task/tekton/git-clone/9.9.9")
    assert_error(client.get(f"{API}/helm/tekton/git-clone"), 404, "tekton-task, tekton-pipeline, tekton-stepaction")
    assert_error(client.get("/api/v1/packages/tek%00ton/x/y"), 400, "NUL")


def test_answers_carry_etags(client):
    first = client.get(f"{API}/tekton-task/tekton/git-clone")
    assert "max-age=" in first.headers["Cache-Control"]
    again = client.get(f"{API}/tekton-task/tekton/git-clone", headers={"If-None-Match": first.headers["ETag"]})
    assert again.status_code == 304
    assert client.get(f"{API}/tekton-task/tekton/buildah").headers["ETag"] != first.headers["ETag"]


# -- search -------------------------------------------------------------------------------------------------


def tekton_hub_resources(client) -> list[dict]:
    return client.get("/v1/resources").get_json()["data"]


def test_search_pages_with_a_total_count(client):
    everything = tekton_hub_resources(client)
    live = [r for r in everything if not r["latestVersion"].get("deprecated")]
    first = client.get(f"{API}/search")
    assert first.status_code == 200
    assert int(first.headers["Pagination-Total-Count"]) == len(live)
    assert len(first.get_json()["packages"]) == min(20, len(live))  # upstream's default page
    pages = []
    for offset in range(0, len(live) + 5, 5):
        page = client.get(f"{API}/search?limit=5&offset={offset}")
        assert page.headers["Pagination-Total-Count"] == str(len(live))
        pages += [(p["repository"]["kind"], p["name"]) for p in page.get_json()["packages"]]
    whole = [(p["repository"]["kind"], p["name"]) for p in get_json(client, f"{API}/search?limit=60")["packages"]]
    assert pages == whole and len(set(whole)) == len(live)
    with_deprecated = client.get(f"{API}/search?limit=60&deprecated=true")
    assert int(with_deprecated.headers["Pagination-Total-Count"]) == len(everything)


def test_search_filters(client, fixture_catalog):
    git = get_json(client, f"{API}/search?ts_query_web=git&deprecated=true")["packages"]
    assert git[0]["name"] == "git-clone"  # exact and prefix name matches rank first
    assert "git-clone" not in {p["name"] for p in get_json(client, f"{API}/search?ts_query_web=git")["packages"]}
    pipelines = get_json(client, f"{API}/search?kind=11&limit=60&deprecated=1")["packages"]
    assert {p["repository"]["kind"] for p in pipelines} == {11}
    assert sorted(p["name"] for p in pipelines) == sorted(
        p.name for p in (fixture_catalog / "pipeline").iterdir() if p.is_dir() and any(p.glob(f"*/{p.name}.yaml"))
    )
    both = get_json(client, f"{API}/search?kind=11&kind=23&limit=60&deprecated=true")["packages"]
    assert {p["repository"]["kind"] for p in both} == {11, 23}
    nothing = client.get(f"{API}/search?repo=nope")
    assert nothing.get_json()["packages"] == [] and nothing.headers["Pagination-Total-Count"] == "0"
    assert client.get(f"{API}/search?repo=tekton").headers["Pagination-Total-Count"] == str(
        len(get_json(client, f"{API}/search?limit=60")["packages"])
    )
    assert get_json(client, f"{API}/search?org=tektoncd")["packages"] == []  # a local catalog has no owner
    assert get_json(client, f"{API}/search?verified_publisher=true")["packages"] == []


def test_search_facets_count_the_matches(client):
    response = client.get(f"{API}/search?facets=true&kind=7")
    total = int(response.headers["Pagination-Total-Count"])
    facets = {f["filter_key"]: f for f in response.get_json()["facets"]}
    kinds = {o["id"]: o["total"] for o in facets["kind"]["options"]}
    assert kinds[7] == total  # facets are counted before the kind filter, as upstream
    assert sum(kinds.values()) == int(client.get(f"{API}/search").headers["Pagination-Total-Count"])
    assert "facets" not in get_json(client, f"{API}/search")


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("limit=61", "invalid limit (0 < l <= 60)"),
        ("limit=0", "invalid limit (0 < l <= 60)"),
        ("limit=ten", "invalid limit: ten"),
        ("limit=99999999999999999999999999", "invalid limit"),
        ("offset=-1", "invalid offset (o >= 0)"),
        ("offset=x", "invalid offset: x"),
        ("kind=task", "invalid kind: task"),
        ("sort=random", "invalid sort"),
        ("deprecated=maybe", "invalid deprecated: maybe"),
        ("facets=yes", "invalid facets"),
        ("repo=", "invalid repository name"),
    ],
)
def test_search_bad_params_are_400(client, query, message):
    assert_error(client.get(f"{API}/search?{query}"), 400, message)


def test_repositories_search_lists_a_catalog_per_kind(client):
    listed = client.get("/api/v1/repositories/search?kind=7&kind=11")  # what tkn sends
    assert sorted((r["name"], r["kind"]) for r in listed.get_json()) == [("tekton", 7), ("tekton", 11)]
    assert listed.headers["Pagination-Total-Count"] == "2"
    every = get_json(client, "/api/v1/repositories/search")
    assert sorted(r["kind"] for r in every) == [7, 11, 23]
    assert len({r["repository_id"] for r in every}) == 3
    assert get_json(client, "/api/v1/repositories/search?name=nope") == []
    assert_error(client.get("/api/v1/repositories/search?limit=61"), 400, "invalid limit: 61 (max: 60)")
    assert_error(client.get("/api/v1/repositories/search?kind=x"), 400, "invalid kind: x")


# -- Tekton's default repository names ----------------------------------------------------------------------


def test_resolver_default_repositories_stand_for_the_default_catalog(client):
    task = get_json(client, f"{API}/tekton-task/tekton-catalog-tasks/git-clone/0.9.0")
    assert task == get_json(client, f"{API}/tekton-task/tekton/git-clone/0.9.0")
    pipeline = get_json(client, f"{API}/tekton-pipeline/tekton-catalog-pipelines/buildpacks")
    assert pipeline["repository"]["kind"] == 11
    assert_error(client.get(f"{API}/tekton-pipeline/tekton-catalog-tasks/buildpacks"), 404)
    only_tasks = get_json(client, f"{API}/search?repo=tekton-catalog-tasks&limit=60&deprecated=true")
    assert {p["repository"]["kind"] for p in only_tasks["packages"]} == {7}


def test_aliases_can_be_turned_off(settings, indexed):
    from dataclasses import replace

    client = create_app(replace(settings, artifact_hub_default_catalog="")).test_client()
    assert_error(client.get(f"{API}/tekton-task/tekton-catalog-tasks/git-clone"), 404)
    assert client.get(f"{API}/tekton-task/tekton/git-clone").status_code == 200


def test_a_catalog_with_the_default_name_is_served_as_itself(client, engine, settings, tmp_path):
    from tests.catalog.factories import write_version
    from tests.conftest import register, sync

    write_version(tmp_path / "own", "hello", "0.1")
    register(engine, "tekton-catalog-tasks", tmp_path / "own")
    sync(engine, settings, "tekton-catalog-tasks")
    assert get_json(client, f"{API}/tekton-task/tekton-catalog-tasks/hello")["version"] == "0.1.0"
    assert_error(client.get(f"{API}/tekton-task/tekton-catalog-tasks/git-clone"), 404)


def test_organization_is_the_owner_of_a_git_source():
    assert organization(Catalog(provider="github", source="https://github.com/tektoncd/catalog")) == "tektoncd"
    assert organization(Catalog(provider="gitlab", source="git@gitlab.com:acme/tasks.git")) == "acme"
    assert organization(Catalog(provider="local", source="/srv/catalog")) is None
    # `catalog add --org` names it for any source, as Tekton Hub's catalog config does.
    assert organization(Catalog(provider="local", source="/srv/catalog", org="acme")) == "acme"
    assert organization(Catalog(provider="github", source="https://github.com/x/y", org="acme")) == "acme"


def test_a_database_that_is_down_is_a_503(tmp_path):
    broken = create_app({"database_url": f"sqlite:///{tmp_path}/missing-dir/x.db", "data_dir": str(tmp_path)})
    assert_error(broken.test_client().get(f"{API}/tekton-task/tekton/git-clone"), 503, "database is unavailable")


# -- existing clients, over real HTTP -----------------------------------------------------------------------


def http_get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def go_decode(body: bytes) -> dict:
    """json.Unmarshal into tkn's ArtifactHubPkgResponse / the resolver's structs: wrong types are errors there."""
    value = json.loads(body)
    assert isinstance(value, dict)
    typed = {"name": str, "data": dict, "available_versions": list, "repository": dict, "version": str}
    for key, kind in typed.items():
        assert value.get(key) is None or isinstance(value[key], kind), key
    data = value.get("data") or {}
    for key in ("pipelines.minVersion", "manifestRaw"):
        assert data.get(key) is None or isinstance(data[key], str), key
    assert all(isinstance(p, str) for p in data.get("platforms") or [])
    for entry in value.get("available_versions") or []:
        assert isinstance(entry["version"], str) and isinstance(entry.get("prerelease", False), bool)
    org = (value.get("repository") or {}).get("organization_name")
    assert org is None or isinstance(org, str)
    return value


def numbers(version: str) -> tuple[int, ...]:
    parts = tuple(int(p) for p in version.split("-")[0].split("."))
    return parts + (0,) * (3 - len(parts))


def satisfies(version: str, constraint: str) -> bool:
    """hashicorp/go-version constraints as the resolver uses them: comma-separated, ANDed, '=' by default."""
    compare = {"=": tuple.__eq__, "!=": tuple.__ne__, ">": tuple.__gt__, "<": tuple.__lt__}
    compare.update({">=": tuple.__ge__, "<=": tuple.__le__})
    for part in constraint.split(","):
        match = re.fullmatch(r"\s*(>=|<=|!=|=|>|<)?\s*v?([\d.]+)\s*", part)
        assert match, part
        if not compare[match.group(1) or "="](numbers(version), numbers(match.group(2))):
            return False
    return True


def hub_resolver_artifact(base: str, name: str, version: str, kind: str = "task", catalog: str | None = None):
    """Tekton's hub resolver with type: artifact: list, pick the greatest matching release, fetch manifestRaw."""
    if catalog is None:  # the shipped hubresolver-config's defaults
        catalog = {"task": "tekton-catalog-tasks", "pipeline": "tekton-catalog-pipelines"}[kind]
    list_url = f"{base}/api/v1/packages/tekton-{kind}/{catalog}/{name}"
    status, body = http_get(list_url)
    if status != 200:
        raise LookupError(f"requested resource '{list_url}' not found on hub")
    candidates = [
        v["version"]
        for v in go_decode(body)["available_versions"]
        if not v["prerelease"] and satisfies(v["version"], version)
    ]
    if not candidates:
        raise LookupError(f"no version found for constraint {version}")
    chosen = ".".join(map(str, numbers(max(candidates, key=numbers))))  # Version.String() pads to 3 segments
    fetch_url = f"{base}/api/v1/packages/tekton-{kind}/{catalog}/{name}/{chosen}"
    status, body = http_get(fetch_url)
    if status != 200:
        raise LookupError(f"requested resource '{fetch_url}' not found on hub")
    data = go_decode(body)["data"]["manifestRaw"].encode()
    return data, {"uri": fetch_url, "digest": {"sha256": hashlib.sha256(data).hexdigest()}}


def test_tekton_hub_resolver_type_artifact_works_unchanged(hub_url, indexed, fixture_catalog):
    data, source = hub_resolver_artifact(hub_url, "git-clone", "0.9")  # no catalog param: the defaults
    assert data == (fixture_catalog / "task/git-clone/0.9/git-clone.yaml").read_bytes()
    assert source["uri"].endswith("/api/v1/packages/tekton-task/tekton-catalog-tasks/git-clone/0.9.0")
    _, package = http_get(source["uri"])
    assert source["digest"]["sha256"] == json.loads(package)["digest"]  # as with Artifact Hub
    data, source = hub_resolver_artifact(hub_url, "git-clone", ">= 0.5, < 0.8")
    assert source["uri"].endswith("/git-clone/0.7.0")
    assert data == (fixture_catalog / "task/git-clone/0.7/git-clone.yaml").read_bytes()
    data, _ = hub_resolver_artifact(hub_url, "buildpacks", "0.2", kind="pipeline")
    assert data == (fixture_catalog / "pipeline/buildpacks/0.2/buildpacks.yaml").read_bytes()
    data, _ = hub_resolver_artifact(hub_url, "git-clone", "0.2", kind="stepaction", catalog="tekton")
    assert data == (fixture_catalog / "stepaction/git-clone/0.2/git-clone.yaml").read_bytes()
    with pytest.raises(LookupError, match=r"no version found for constraint >= 5\.0"):
        hub_resolver_artifact(hub_url, "git-clone", ">= 5.0")
    with pytest.raises(LookupError, match="not found on hub"):
        hub_resolver_artifact(hub_url, "no-such-task", "0.1")


def tkn_hub_install_artifact(base: str, name: str, catalog: str, version: str = "", kind: str = "task"):
    """`tkn hub install task NAME --from CATALOG [--version V] --type artifact`: the calls and fields it reads."""
    endpoint = f"{base}/api/v1/packages/tekton"
    if not version:
        status, body = http_get(f"{endpoint}-{kind}/{catalog}/{name}")
        assert status == 200, "No Resource Found"
        versions = [v["version"] for v in go_decode(body)["available_versions"]]
        version = sorted(versions, key=numbers, reverse=True)[0]  # Masterminds semver, descending
    status, body = http_get(f"{endpoint}-{kind}/{catalog}/{name}/{version}")
    if status == 404:
        raise LookupError("No Resource Found")
    package = go_decode(body)
    min_version = package["data"].get("pipelines.minVersion") or ""
    if not min_version:
        raise ValueError("Minimum pipeline version is not specified in the resource")
    org = package["repository"].get("organization_name") or ""
    labels = {
        "artifacthub.io/catalog": catalog,
        "artifacthub.io/org": org,
        "artifacthub.io/support-tier": "Verified" if org == "tektoncd" else "Community",
    }
    return version, package["data"]["manifestRaw"], min_version, labels


def test_tkn_hub_install_type_artifact_works_unchanged(hub_url, indexed, fixture_catalog):
    version, manifest, min_version, labels = tkn_hub_install_artifact(hub_url, "git-clone", "tekton")
    latest = fixture_catalog / "task/git-clone/0.10/git-clone.yaml"
    assert version == "0.10.0"  # upstream Tekton Hub picked 0.9: versions compared as strings
    assert manifest == latest.read_text()
    assert min_version == annotations(latest)["tekton.dev/pipelines.minVersion"]
    assert labels == {
        "artifacthub.io/catalog": "tekton",
        "artifacthub.io/org": "",
        "artifacthub.io/support-tier": "Community",
    }
    version, manifest, _, _ = tkn_hub_install_artifact(hub_url, "buildah", "tekton", version="0.8.0")
    assert manifest == (fixture_catalog / "task/buildah/0.8/buildah.yaml").read_text()
    with pytest.raises(LookupError, match="No Resource Found"):
        tkn_hub_install_artifact(hub_url, "buildah", "tekton", version="7.0.0")
