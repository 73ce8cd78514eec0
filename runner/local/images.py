"""What a step's image would have provided, approximated on the host: its shell and its default entrypoint."""

from __future__ import annotations

import os
import shutil

# Images whose /bin/sh is busybox ash (alpine, busybox, and docker-library bash, which is FROM alpine): ash
# accepts `[[ ]]` and `==`, which dash rejects, so their scripts for `sh` or `ash` (no shebang, `#!/bin/sh`,
# `#!/usr/bin/env ash`...) run under the host's busybox, else under bash, the closest host shell.
_ASH_IMAGES = {"busybox", "alpine", "bash"}
_ASH_NAMES = {"sh", "ash"}

# The ENTRYPOINT/CMD of common shell images (§1.3), for steps that give only `args`.
_DEFAULT_COMMANDS: dict[str, list[str]] = {
    "ubuntu": ["/bin/bash"],
    "debian": ["bash"],
    "fedora": ["/bin/bash"],
}


def image_name(image: str) -> str:
    """The repository's last path component: `mirror.gcr.io/alpine@sha256:…` gives `alpine`."""
    ref = image.split("@", 1)[0]
    last = ref.rsplit("/", 1)[-1]
    return last.split(":", 1)[0].lower()


def _is_ash_image(image: str) -> bool:
    ref = image.split("@", 1)[0].lower()
    tag = ref.rsplit("/", 1)[-1].partition(":")[2]
    return image_name(image) in _ASH_IMAGES or "alpine" in tag


def script_shell(image: str) -> list[str]:
    """The host command that runs a script without a shebang the way the image's `/bin/sh` would."""
    if _is_ash_image(image):
        busybox = shutil.which("busybox")
        if busybox:
            return [busybox, "sh"]
        bash = shutil.which("bash")
        if bash:
            return [bash]
    return ["/bin/sh"]


def shebang_command(first_line: str, image: str) -> list[str]:
    """The host command for a script's `#!` line in `image`: `sh` or `ash` (`#!/bin/sh -e`, `#!/usr/bin/env ash`)
    as the image's own shell would be (script_shell), any other interpreter from the host, found by name where
    the image's path is not there (`/usr/local/bin/bash`)."""
    parts = first_line[2:].strip().split()
    if not parts:
        return script_shell(image)
    program, args = parts[0], parts[1:]
    via_env = os.path.basename(program) == "env" and bool(args)
    name, rest = (os.path.basename(args[0]), args[1:]) if via_env else (os.path.basename(program), args)
    if name in _ASH_NAMES and _is_ash_image(image):
        return [*script_shell(image), *rest]
    if not os.path.exists(program):
        program = shutil.which(os.path.basename(program)) or program
    return [program, *args]


def default_command(image: str, args: list[str]) -> list[str] | None:
    """The command a step with no `command` and no `script` runs, from the image's config; None if unknown."""
    name = image_name(image)
    if name == "bash":
        # docker-library bash's docker-entrypoint.sh: `bash "$@"` for no args or an option, else `exec "$@"`.
        if not args or args[0].startswith("-"):
            return [shutil.which("bash") or "bash", *args]
        return list(args)
    if name in ("busybox", "alpine"):
        return [*script_shell(image), *args]
    base = _DEFAULT_COMMANDS.get(name)
    if base is None:
        return None
    return [*base, *args]


def parse_image_map(text: str) -> dict[str, str]:
    """The TASKHUB_IMAGE_MAP setting read: comma-separated NAME=IMAGE pairs, NAME an image's last path component
    without tag or digest (as `image_name` gives it), IMAGE what container mode runs instead. ValueError names
    the first pair that is not one."""
    mapping: dict[str, str] = {}
    for pair in text.split(","):
        if not pair.strip():
            continue
        name, sep, image = (part.strip() for part in pair.partition("="))
        if not sep or not name or not image or "/" in name or ":" in name or "@" in name:
            raise ValueError(f"{pair.strip()!r} is not NAME=IMAGE (NAME an image's last path component, as alpine)")
        mapping[name.lower()] = image
    return mapping


def mapped_image(image: str, mapping: dict[str, str]) -> str:
    """The image container mode runs for a step's `image`: the map's entry for its name, else the image itself."""
    return mapping.get(image_name(image), image)
