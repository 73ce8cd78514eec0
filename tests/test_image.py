"""taskhub's container image (Containerfile, scripts/build-image), built on the Python base made from Debian
packages and run with podman as a deployment would: read-only root, data on a volume, a user that is not root."""

from __future__ import annotations

import json
import os
import time
import urllib.error
import urllib.request
import uuid
from importlib.metadata import version
from pathlib import Path

from runner.podman import Podman
from tests.container_fixture import IMAGE_UID, image_user_repository

DATA = "/var/lib/taskhub"
START_TIMEOUT_SECONDS = 120


def test_the_image_prints_taskhubs_version(podman: Podman, taskhub_image: str):
    done = podman.run("run", "--rm", taskhub_image, "--version")
    assert done.stdout == f"taskhub {version('taskhub')}\n"


def test_the_image_runs_as_a_numbered_user_with_git_and_without_compilers(podman: Podman, taskhub_image: str):
    config = json.loads(podman.run("image", "inspect", taskhub_image).stdout)[0]["Config"]
    assert config["User"] == f"{IMAGE_UID}:{IMAGE_UID}"  # numeric: Kubernetes' runAsNonRoot can check it
    assert config["Entrypoint"] == ["taskhub"]
    found = podman.run(
        "run", "--rm", "--entrypoint", "sh", taskhub_image, "-c",
        "id -u; git --version; for tool in cc gcc c++ g++ clang; do command -v $tool || true; done",
    ).stdout.splitlines()  # fmt: skip
    assert found[0] == str(IMAGE_UID)
    assert found[1].startswith("git version ")  # git catalogs are cloned with the git CLI
    assert found[2:] == []


def test_the_image_syncs_a_git_catalog_and_serves_it_from_a_read_only_root(
    podman: Podman, taskhub_image: str, fixture_catalog: Path, tmp_path: Path
):
    data = tmp_path / "data"
    data.mkdir()
    os.chown(data, IMAGE_UID, IMAGE_UID)
    repo = image_user_repository(fixture_catalog, tmp_path / "catalog")
    read_only = ["--read-only", "--read-only-tmpfs=false", "--tmpfs", "/tmp", "-v", f"{data}:{DATA}"]
    podman.run(
        "run", "--rm", *read_only, "-v", f"{repo}:/catalog:ro", "--entrypoint", "sh", taskhub_image, "-c",
        "taskhub db upgrade && taskhub catalog add tekton file:///catalog && taskhub catalog sync tekton",
    )  # fmt: skip
    assert (data / "taskhub.db").stat().st_uid == IMAGE_UID

    name = f"taskhub-test-{uuid.uuid4().hex[:12]}"
    podman.run("run", "--detach", "--name", name, *read_only, "--publish", "127.0.0.1::8000", taskhub_image)
    try:
        address = podman.run("port", name, "8000").stdout.strip()
        status, body = _first_answer(podman, name, f"http://{address}/v1/categories")
        assert status == 200
        assert "Git" in [category["name"] for category in json.loads(body)["data"]]
        with urllib.request.urlopen(f"http://{address}/readyz", timeout=10) as ready:  # migrated, database answers
            assert json.loads(ready.read()) == {"status": "ok", "checks": {"database": "ok", "migrations": "ok"}}
        written = podman.run("exec", name, "touch", "/opt/taskhub/x", check=False)
        assert "Read-only file system" in written.stderr
    finally:
        podman.run("rm", "--force", "--time", "0", name, check=False)


def _first_answer(podman: Podman, container: str, url: str) -> tuple[int, str]:
    """The first HTTP answer from url, once the server in the container listens; fails if the container exits."""
    give_up = time.monotonic() + START_TIMEOUT_SECONDS
    while True:
        try:
            with urllib.request.urlopen(url, timeout=10) as response:
                return response.status, response.read().decode()
        except urllib.error.HTTPError as answered:
            return answered.code, answered.read().decode()
        except (urllib.error.URLError, ConnectionError):
            running = podman.run("inspect", "--format", "{{.State.Running}}", container).stdout.strip()
            if running != "true" or time.monotonic() > give_up:
                logs = podman.run("logs", container, check=False)
                raise AssertionError(f"taskhub did not answer at {url}:\n{logs.stdout}{logs.stderr}") from None
            time.sleep(0.1)
