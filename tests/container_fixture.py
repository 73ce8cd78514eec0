"""Real containers for tests: podman as it works on this machine (runner.podman), images built from Debian
packages (scripts/build-debian-images, cached per machine in ~/.cache/taskhub/images), a registry that serves
them under the names Tekton steps use, and taskhub's own image (scripts/build-image).

The tests cannot pull from public registries. `image_mirror` pushes the Debian-built images to a test registry and
maps the names steps give to them, as the TASKHUB_IMAGE_MAP setting does: comma-separated NAME=IMAGE pairs, where
NAME is an image's last path component without tag or digest (`mirror.gcr.io/alpine@sha256:...` is `alpine`,
as runner.local.images.image_name reads it) and IMAGE what to run instead.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from runner.podman import Podman, PodmanUnavailable, detect_podman
from tests.registry_fixture import RegistryProcess

__all__ = [
    "IMAGE_MAP_SETTING",
    "IMAGE_UID",
    "ImageMirror",
    "debian_images",
    "image_mirror",
    "image_user_repository",
    "podman",
    "postgres_image",
    "taskhub_image",
]

REPO = Path(__file__).resolve().parent.parent
IMAGE_MAP_SETTING = "TASKHUB_IMAGE_MAP"
# The images steps name, and which Debian-built image stands in for each: alpine and busybox have busybox ash as
# /bin/sh, the bash image has bash beside it, debian and ubuntu have dash and bash.
STAND_INS = {"alpine": "busybox", "busybox": "busybox", "bash": "bash", "debian": "debian", "ubuntu": "debian"}


@pytest.fixture(scope="session")
def podman(tmp_path_factory: pytest.TempPathFactory) -> Podman:
    """podman set up to start containers here, its containers.conf (if it needs one) in a directory of the test
    session's. Skips the test where podman is not installed; fails where it is but cannot start a container."""
    try:
        return detect_podman(tmp_path_factory.mktemp("podman"))
    except PodmanUnavailable as exc:
        if "apt-get install" in str(exc):
            pytest.skip(str(exc))
        pytest.fail(str(exc))


@pytest.fixture(scope="session")
def debian_images(podman: Podman) -> dict[str, str]:
    """The images built from Debian packages, by name (busybox, bash, debian, python), as local podman images
    (localhost/taskhub-debian/NAME:KEY); built once per machine, so only the first session waits (about 2 min)."""
    done = subprocess.run(
        [str(REPO / "scripts/build-debian-images")], env=podman.environ(), capture_output=True, text=True
    )
    if done.returncode != 0:
        pytest.fail(f"scripts/build-debian-images failed:\n{done.stderr[-3000:]}")
    return dict(line.split("=", 1) for line in done.stdout.split())


@pytest.fixture(scope="session")
def postgres_image(podman: Podman) -> str:
    """PostgreSQL 15 from Debian packages (scripts/build-debian-images postgres), built once per machine."""
    done = subprocess.run(
        [str(REPO / "scripts/build-debian-images"), "postgres"], env=podman.environ(), capture_output=True, text=True
    )
    if done.returncode != 0:
        pytest.fail(f"scripts/build-debian-images postgres failed:\n{done.stderr[-3000:]}")
    return done.stdout.strip().split("=", 1)[1]


@dataclass(frozen=True)
class ImageMirror:
    """The test registry serving the Debian-built images, and what each image name steps use maps to there."""

    registry: RegistryProcess
    images: dict[str, str]  # "alpine" -> "127.0.0.1:PORT/mirror/busybox", for every name in STAND_INS

    @property
    def setting(self) -> str:
        """The TASKHUB_IMAGE_MAP value: "alpine=127.0.0.1:PORT/mirror/busybox,bash=..."."""
        return ",".join(f"{name}={image}" for name, image in sorted(self.images.items()))


@pytest.fixture(scope="session")
def image_mirror(
    podman: Podman, debian_images: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ImageMirror]:
    """A registry of the session's on a free loopback port, holding the busybox, bash and debian images as
    HOST/mirror/NAME:latest, and the map from the names steps use to them."""
    registry = RegistryProcess(tmp_path_factory.mktemp("mirror-registry"))
    registry.start()
    try:
        pushed = {}
        for built in sorted(set(STAND_INS.values())):
            pushed[built] = f"{registry.host}/mirror/{built}"
            podman.run("push", "--quiet", "--tls-verify=false", debian_images[built], f"{pushed[built]}:latest")
        yield ImageMirror(registry, {name: pushed[built] for name, built in STAND_INS.items()})
    finally:
        registry.stop()
        # Tests pull these names; the port is the session's own, so the local tags would only pile up.
        podman.run("rmi", "--ignore", *(f"{image}:latest" for image in pushed.values()), check=False)


STALE_AFTER_SECONDS = 24 * 3600
IMAGE_UID = 10001  # the user taskhub's image runs as (Containerfile)
# What goes into taskhub's image besides the packages pyproject.toml lists.
IMAGE_INPUTS = ("Containerfile", "scripts/build-image", "pyproject.toml", "README.md")


@pytest.fixture(scope="session")
def taskhub_image(podman: Podman, debian_images: dict[str, str]) -> str:
    """taskhub's image built by scripts/build-image on the Debian-built Python base, tagged with a hash of all that
    goes into it (sources, Containerfile, base image): built again only when one of them changed."""
    base = debian_images["python"]
    base_id = podman.run("image", "inspect", "--format", "{{.Id}}", base).stdout.strip()
    tag = f"localhost/taskhub-test/taskhub:{_image_inputs_hash(base_id)}"
    if podman.run("image", "exists", tag, check=False).returncode != 0:
        done = subprocess.run(
            [str(REPO / "scripts/build-image"), "--base", base, "--tag", tag],
            env={**podman.environ(), "PYTHON": sys.executable},
            capture_output=True,
            text=True,
        )
        if done.returncode != 0:
            pytest.fail(f"scripts/build-image failed:\n{done.stderr[-5000:]}")
        _remove_stale_builds(podman, tag)
    return tag


def _remove_stale_builds(podman: Podman, kept: str) -> None:
    """Untag the builds of other sources made over a day ago: a session in another checkout may still be using
    a recent one. Their layers stay in podman's build cache."""
    repository = kept.rsplit(":", 1)[0]
    listed = json.loads(podman.run("images", "--format", "json", repository).stdout)
    stale = {
        name
        for image in listed
        if time.time() - image["Created"] > STALE_AFTER_SECONDS
        for name in image.get("Names") or []
        if name.startswith(f"{repository}:") and name != kept
    }
    if stale:
        podman.run("rmi", *sorted(stale), check=False)  # a name of an image with others only loses that name


def _image_inputs_hash(base_id: str) -> str:
    digest = hashlib.sha256(base_id.encode())
    for path in _image_inputs():
        digest.update(f"\0{path.relative_to(REPO)}\0".encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def _image_inputs() -> list[Path]:
    """The files scripts/build-image puts into the image: its inputs, and the packages' directories pyproject.toml
    names (what git would commit there: new files count, ignored ones do not)."""
    setuptools = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    tops = {name.split(".")[0] for name in setuptools["packages"]}
    tops |= {directory.split("/")[0] for directory in setuptools.get("package-dir", {}).values()}
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard", *IMAGE_INPUTS, *sorted(tops)],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split("\0")
    return sorted(REPO / path for path in listed if path and (REPO / path).is_file())


def image_user_repository(source: Path, path: Path) -> Path:
    """A git repository of the catalog's files, owned by the image's user as a clone of its own would be."""
    shutil.copytree(source, path)
    git = ["git", "-C", str(path), "-c", "user.name=test", "-c", "user.email=test@example.com"]
    for args in (["init", "--quiet"], ["add", "--all"], ["commit", "--quiet", "-m", "catalog"]):
        subprocess.run([*git, *args], check=True, capture_output=True)
    for root, dirs, files in os.walk(path):
        for entry in [root, *(os.path.join(root, name) for name in dirs + files)]:
            os.lchown(entry, IMAGE_UID, IMAGE_UID)
    return path
