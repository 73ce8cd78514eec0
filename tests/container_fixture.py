"""Real containers for tests: podman as it works on this machine (runner.podman), images built from Debian
packages (scripts/build-debian-images, cached per machine in ~/.cache/taskhub/images), and a registry that serves
them under the names Tekton steps use.

The tests cannot pull from public registries. `image_mirror` pushes the Debian-built images to a test registry and
maps the names steps give to them, as the TASKHUB_IMAGE_MAP setting does: comma-separated NAME=IMAGE pairs, where
NAME is an image's last path component without tag or digest (`mirror.gcr.io/alpine@sha256:...` is `alpine`,
as runner.local.images.image_name reads it) and IMAGE what to run instead.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from runner.podman import Podman, PodmanUnavailable, detect_podman
from tests.registry_fixture import RegistryProcess

__all__ = [
    "IMAGE_MAP_SETTING",
    "ImageMirror",
    "debian_images",
    "image_mirror",
    "podman",
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
