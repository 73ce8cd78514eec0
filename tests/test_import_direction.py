"""The packages depend one way, and Flask stays in hub/ (ARCHITECTURE.md): every module is imported, and every
import statement in it, those inside functions included, is checked against what its package may use."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
# What each of our top-level packages may import of the others. jobs/ and triggers/ are planned packages: they
# are checked as soon as they exist.
MAY_IMPORT: dict[str, frozenset[str]] = {
    "catalog": frozenset(),
    "jobs": frozenset({"catalog"}),
    "runner": frozenset({"catalog", "jobs"}),
    "triggers": frozenset({"runner", "jobs", "catalog"}),
    "hub": frozenset({"catalog", "jobs", "runner", "triggers"}),
}
WEB_FRAMEWORK = frozenset({"flask", "werkzeug", "jinja2"})  # only hub/ serves HTTP through Flask
PACKAGES = [name for name in MAY_IMPORT if (REPO / name / "__init__.py").is_file()]


def modules_of(package: str) -> list[str]:
    return sorted(
        ".".join(path.relative_to(REPO).with_suffix("").parts).removesuffix(".__init__")
        for path in (REPO / package).rglob("*.py")
    )


def imported_names(path: Path) -> list[tuple[int, str]]:
    """(line, top-level name) of every absolute import in the file, wherever the statement is."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name.split(".")[0]) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module.split(".")[0]))
    return found


def forbidden_for(package: str) -> frozenset[str]:
    ours = frozenset(MAY_IMPORT) - {package} - MAY_IMPORT[package]
    return ours if package == "hub" else ours | WEB_FRAMEWORK


def test_the_checked_packages_are_there():
    assert {"catalog", "runner", "hub"} <= set(PACKAGES)


@pytest.mark.parametrize("package", PACKAGES)
def test_no_module_imports_upward_or_flask_below_hub(package):
    forbidden = forbidden_for(package)
    wrong = [
        f"{path.relative_to(REPO)}:{line} imports {name}"
        for path in sorted((REPO / package).rglob("*.py"))
        for line, name in imported_names(path)
        if name in forbidden
    ]
    assert wrong == [], f"{package} may import only {sorted(MAY_IMPORT[package])} of ours" + (
        "" if package == "hub" else " and no Flask"
    )


@pytest.mark.parametrize("package", PACKAGES)
def test_every_module_imports_and_loads_nothing_it_may_not(package):
    """Import every module of the package in a fresh interpreter: none fails, and what they load in turn (the
    imports they run at import time, through any chain) stays within what the package may use."""
    probe = (
        "import importlib, json, sys\n"
        f"for name in {modules_of(package)!r}:\n"
        "    importlib.import_module(name)\n"
        "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    loaded = set(json.loads(done.stdout.splitlines()[-1]))
    assert loaded & forbidden_for(package) == set()
