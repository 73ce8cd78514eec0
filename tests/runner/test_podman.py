"""Detecting what podman needs to start a container on this machine (runner.podman)."""

from __future__ import annotations

from pathlib import Path

import pytest

from runner.podman import Podman, PodmanFailed, PodmanUnavailable, detect_podman


def test_the_detected_setup_runs_a_container_and_says_how_in_one_line(podman: Podman, debian_images, tmp_path):
    done = podman.run("run", "--rm", debian_images["busybox"], "echo", "from a container")
    assert done.stdout == "from a container\n"
    described = podman.describe()
    assert "\n" not in described
    if podman.containers_conf is not None:  # this machine needs more than podman's own configuration
        assert f"export CONTAINERS_CONF={podman.containers_conf}" in described
        assert all(need in described for need in podman.needs)
        assert "--runtime runc" not in podman.needs or 'runtime = "runc"' in podman.containers_conf.read_text()


def test_each_need_found_is_needed(podman: Podman, debian_images, monkeypatch):
    """Without the containers.conf it found necessary, podman cannot start the same container here."""
    if podman.containers_conf is None:
        pytest.skip("podman works as configured on this machine")
    monkeypatch.delenv("CONTAINERS_CONF", raising=False)
    bare = Podman(podman.binary).run("run", "--rm", debian_images["busybox"], "true", check=False)
    assert bare.returncode != 0


def test_a_failing_podman_command_names_itself_and_podmans_reason(podman: Podman):
    with pytest.raises(PodmanFailed) as raised:
        podman.run("image", "inspect", "localhost/taskhub-test/no-such-image:0")
    assert str(raised.value).startswith("podman image inspect localhost/taskhub-test/no-such-image:0: ")
    assert str(raised.value).endswith(": image not known")  # podman's own words


def test_a_detection_needs_no_image_and_leaves_the_users_configuration_alone(podman: Podman, tmp_path):
    before = _user_configuration()
    again = detect_podman(tmp_path / "conf")
    assert again.needs == podman.needs
    assert _user_configuration() == before
    assert again.containers_conf is None or again.containers_conf.parent == tmp_path / "conf"
    assert not list((tmp_path / "conf").glob("probe-rootfs-*"))  # the probe's root filesystem is removed


def test_without_podman_the_error_says_what_to_install(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(PodmanUnavailable) as raised:
        detect_podman(tmp_path / "conf")
    assert str(raised.value) == "container mode needs podman: apt-get install podman runc"


def test_a_podman_that_starts_nothing_gets_one_line_naming_each_setup_tried(tmp_path):
    broken = tmp_path / "podman"
    broken.write_text("#!/bin/sh\necho 'Error: no runtime here' >&2\nexit 125\n")
    broken.chmod(0o755)
    with pytest.raises(PodmanUnavailable) as raised:
        detect_podman(tmp_path / "conf", binary=str(broken))
    message = str(raised.value)
    assert "\n" not in message
    assert message.startswith("podman cannot start a container here (as configured: no runtime here; ")
    assert "--runtime runc and default_ulimits = []: no runtime here" in message


def _user_configuration() -> dict[Path, bytes]:
    places = [Path("/etc/containers"), Path.home() / ".config/containers"]
    return {path: path.read_bytes() for place in places for path in place.rglob("*") if path.is_file()}
