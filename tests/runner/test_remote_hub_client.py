"""The two hub clients against taskhub serving the test catalog (both APIs), and the Artifact Hub client against
a stub built from the Artifact Hub API's documented shapes (artifacthub/hub: docs/api/openapi.yaml)."""

from __future__ import annotations

import pytest

from runner.remote_hub.artifact_hub import ArtifactHubClient
from runner.remote_hub.client import (
    RemoteHubError,
    RemoteNotFound,
    SearchFilter,
    TektonHubClient,
    pick_version,
    sorted_versions,
)
from tests.runner.hub_servers import StubHub, served_hub, stub_hub  # noqa: F401

GIT_CLONE_VERSIONS = ["0.1", "0.2", "0.3", "0.4", "0.5", "0.6", "0.7", "0.8", "0.9", "0.10"]


def test_versions_sort_and_match_as_versions():
    assert sorted_versions(["0.10", "0.9", "0.1.1", "latest", "1.0.0-rc1", "1.0.0"]) == [
        "0.1.1", "0.9", "0.10", "1.0.0-rc1", "1.0.0",
    ]  # fmt: skip
    assert pick_version("0.9.0", ["0.9", "0.10"]) == "0.9"
    assert pick_version("0.10", ["0.9.0", "0.10.0"]) == "0.10.0"
    assert pick_version("0.11", ["0.9", "0.10"]) is None


@pytest.mark.parametrize("client_type", [TektonHubClient, ArtifactHubClient])
def test_both_apis_of_taskhub_agree(client_type, served_hub, fixture_catalog):  # noqa: F811
    hub = client_type(served_hub)
    full = client_type is ArtifactHubClient
    info = hub.resource("tekton", "task", "git-clone")
    expected = [v + ".0" for v in GIT_CLONE_VERSIONS] if full else GIT_CLONE_VERSIONS
    assert info.versions == expected
    assert info.version == info.latest == expected[-1]
    assert info.min_pipelines_version == "0.38.0"
    old = hub.resource("tekton", "task", "git-clone", "0.9")
    assert old.version == ("0.9.0" if full else "0.9") and old.min_pipelines_version == "0.38.0"
    assert old.versions == expected
    assert (
        hub.manifest("tekton", "task", "git-clone", old.version)
        == (fixture_catalog / "task/git-clone/0.9/git-clone.yaml").read_text()
    )
    # 0.6 to 0.8 need Tekton Pipelines 0.29.0, 0.9 and 0.10 need 0.38.0.
    assert hub.latest_compatible("tekton", "task", "git-clone", "v0.30.0") == ("0.8.0" if full else "0.8")
    assert hub.latest_compatible("tekton", "task", "git-clone", "v0.20.0") == ("0.2.0" if full else "0.2")
    assert hub.latest_compatible("tekton", "task", "no-such-task", "v0.30.0") is None
    with pytest.raises(RemoteNotFound, match="Task nope from tekton catalog not found in the hub"):
        hub.resource("tekton", "task", "nope")
    # git-clone is deprecated, which Artifact Hub's search hides; yq is not.
    hits, _ = hub.search(SearchFilter(text="yq", kinds=["task"]))
    latest_yq = hub.resource("tekton", "task", "yq").latest
    assert [(h.name, h.kind, h.catalog, h.version) for h in hits if h.name == "yq"] == [
        ("yq", "Task", "tekton", latest_yq)
    ]


def artifact_package(name: str, version: str, versions: list[str], *, org: str = "tektoncd") -> dict:
    """A package as Artifact Hub's get_package returns it (snake_case; data keys as the tracker writes them)."""
    manifest = (
        f"apiVersion: tekton.dev/v1\nkind: Task\nmetadata:\n  name: {name}\n  labels:\n"
        f'    app.kubernetes.io/version: "{version}"\n  annotations:\n'
        f'    tekton.dev/pipelines.minVersion: "0.50.0"\nspec:\n  steps:\n  - name: s\n    image: alpine\n'
    )
    return {
        "package_id": "0b6e9c5c-0000-4000-8000-000000000001",
        "name": name,
        "normalized_name": name,
        "display_name": name.title(),
        "description": f"{name} does things",
        "keywords": ["tekton", "task", "build"],
        "version": version,
        "available_versions": [{"version": v, "prerelease": False, "ts": 1700000000} for v in versions],
        "deprecated": False,
        "data": {"pipelines.minVersion": "0.50.0", "manifestRaw": manifest, "platforms": ["linux/amd64"]},
        "repository": {"repository_id": "r", "kind": 7, "name": "tekton-catalog-tasks", "organization_name": org},
    }


def test_artifact_client_reads_the_documented_shapes(stub_hub: StubHub):  # noqa: F811
    versions = ["0.2.0", "0.10.0", "0.9.0"]  # not in order: the client orders them itself
    base = "/api/v1/packages/tekton-task/tekton-catalog-tasks/kaniko"
    stub_hub.json(base, artifact_package("kaniko", "0.10.0", versions))
    for version in versions:
        stub_hub.json(f"{base}/{version}", artifact_package("kaniko", version, versions))
    hub = ArtifactHubClient(stub_hub.url)
    info = hub.resource("tekton-catalog-tasks", "task", "kaniko")
    assert info.versions == ["0.2.0", "0.9.0", "0.10.0"] and info.version == "0.10.0"
    assert info.organization == "tektoncd" and info.tags == ["build"] and info.platforms == ["linux/amd64"]
    assert hub.resource("tekton-catalog-tasks", "task", "kaniko", "0.9").version == "0.9.0"
    assert 'app.kubernetes.io/version: "0.9.0"' in hub.manifest("tekton-catalog-tasks", "task", "kaniko", "0.9.0")
    assert hub.latest_compatible("tekton-catalog-tasks", "task", "kaniko", "v0.49.0") is None
    stub_hub.json("/api/v1/packages/search", {"packages": [{**artifact_package("kaniko", "0.10.0", versions)}]})
    hits, _ = hub.search(SearchFilter(text="kaniko"))
    assert [(h.name, h.kind, h.catalog) for h in hits] == [("kaniko", "Task", "tekton-catalog-tasks")]
    assert "kind=7" in stub_hub.requests[-1] and "ts_query_web=kaniko" in stub_hub.requests[-1]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"<html>hello</html>", "the body is not JSON"),
        (b'{"data": {}}', "no version"),
        (b'{"version": "1.0.0"}', "no data"),
    ],
)
def test_artifact_client_refuses_what_is_not_a_package(stub_hub: StubHub, body: bytes, message: str):  # noqa: F811
    stub_hub.raw("/api/v1/packages/tekton-task/repo/x", body, content_type="application/json")
    with pytest.raises(RemoteHubError, match="not an Artifact Hub API response") as caught:
        ArtifactHubClient(stub_hub.url).resource("repo", "task", "x")
    assert message in str(caught.value)


def test_tekton_client_on_a_hub_that_wants_a_token(stub_hub: StubHub):  # noqa: F811
    stub_hub.raw("/v1/resource/tekton/task/x", b'{"message": "unauthorized"}', status=401)
    with pytest.raises(
        RemoteHubError, match=r"refused the request \(401 Unauthorized\): pass an API token with the read"
    ):
        TektonHubClient(stub_hub.url).resource("tekton", "task", "x")
