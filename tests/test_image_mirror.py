"""The images built from Debian packages, pulled from the tests' registry under the names Tekton steps use: each
behaves as the public image it stands in for where steps notice (which shell `sh` is, the entrypoint)."""

from __future__ import annotations

import json
import subprocess
import urllib.request

import pytest

from runner.podman import Podman
from tests.container_fixture import REPO, ImageMirror

# Runs under busybox ash, whatever the shebang names; dash rejects `==` in `[`, bash's `sh` mode accepts it.
ASH_SCRIPT = '#!/usr/bin/env ash\n[ "$(readlink /bin/sh)" == /bin/busybox ] && echo "ash is busybox"\n'


def _pulled(podman: Podman, image: str) -> str:
    podman.run("pull", "--quiet", "--tls-verify=false", image)
    return image


@pytest.mark.parametrize("name", ["alpine", "busybox", "bash"])
def test_sh_is_busybox_ash_where_the_public_image_has_it(podman: Podman, image_mirror: ImageMirror, tmp_path, name):
    image = _pulled(podman, image_mirror.images[name])
    script = tmp_path / "check"
    script.write_text(ASH_SCRIPT)
    script.chmod(0o755)
    done = podman.run("run", "--rm", "-v", f"{script}:/check:ro", "--entrypoint", "/check", image)
    assert done.stdout == "ash is busybox\n"


def test_the_bash_image_runs_bash_for_options_and_the_command_otherwise(podman: Podman, image_mirror: ImageMirror):
    image = _pulled(podman, image_mirror.images["bash"])
    with_option = podman.run("run", "--rm", image, "-c", 'echo "bash ${BASH_VERSINFO[0]}"')
    assert with_option.stdout == "bash 5\n"
    command = podman.run("run", "--rm", image, "/usr/local/bin/bash", "-c", "[[ -x /bin/bash ]] && echo found")
    assert command.stdout == "found\n"


@pytest.mark.parametrize("name", ["debian", "ubuntu"])
def test_debian_and_ubuntu_stand_ins_have_dash_as_sh_and_bash(podman: Podman, image_mirror: ImageMirror, name):
    image = _pulled(podman, image_mirror.images[name])
    done = podman.run("run", "--rm", image, "sh", "-c", 'readlink -f /bin/sh; bash -c "echo bash"')
    assert done.stdout == "/usr/bin/dash\nbash\n"


@pytest.mark.parametrize("name", ["alpine", "bash", "ubuntu"])
def test_a_non_root_user_writes_to_tmp(podman: Podman, image_mirror: ImageMirror, name):
    image = _pulled(podman, image_mirror.images[name])
    done = podman.run("run", "--rm", "--user", "65534", "--entrypoint", "sh", image, "-c", "echo x > /tmp/x && id -u")
    assert done.stdout == "65534\n"


def test_the_setting_maps_every_name_to_a_pushed_image(image_mirror: ImageMirror):
    setting = dict(pair.split("=", 1) for pair in image_mirror.setting.split(","))
    assert setting == image_mirror.images
    host = image_mirror.registry.host
    assert setting["alpine"] == setting["busybox"] == f"{host}/mirror/busybox"
    listed = json.loads(_get(image_mirror, "/v2/_catalog"))["repositories"]
    assert listed == ["mirror/bash", "mirror/busybox", "mirror/debian"]


def _get(image_mirror: ImageMirror, path: str) -> str:
    with urllib.request.urlopen(image_mirror.registry.url + path, timeout=10) as response:
        return response.read().decode()


def test_the_images_are_built_once_per_machine(podman: Podman, debian_images):
    again = subprocess.run([str(REPO / "scripts/build-debian-images")], env=podman.environ(), capture_output=True,
                           text=True, check=True)  # fmt: skip
    assert dict(line.split("=", 1) for line in again.stdout.split()) == debian_images
    assert "building" not in again.stderr
