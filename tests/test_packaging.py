"""What the wheel (and so the container image) holds: an editable install finds any package, a wheel only those
pyproject.toml lists."""

from __future__ import annotations

import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def test_every_package_directory_is_listed_for_the_wheel():
    setuptools = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(setuptools["packages"])
    tops = {name.split(".")[0] for name in listed}
    found = {
        ".".join(init.parent.relative_to(REPO).parts) for top in tops for init in (REPO / top).rglob("__init__.py")
    }
    assert found - listed == set()
