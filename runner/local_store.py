"""The local store of installed Tekton objects that the embedded runner reads: `taskhub hub install --local`.

Layout: ``<root>/<namespace>/<kind>/<name>.yaml`` with kind in lower case (``task``, ``pipeline``, ``stepaction``),
one object per file, stored with the labels and annotations a cluster would hold (``hub.tekton.dev/catalog``,
``app.kubernetes.io/version``, ...), so `check-upgrade`, `upgrade` and the runner treat both alike. Tasks and
Pipelines are kept as ``tekton.dev/v1``, StepActions as ``tekton.dev/v1beta1``: the versions the runner reads.
"""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path
from typing import Any

import yaml

from catalog.errors import TaskhubError

# The one version each kind is stored in.
STORED_VERSIONS = {"Task": "v1", "Pipeline": "v1", "StepAction": "v1beta1"}
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$")


class StoreError(TaskhubError):
    """The local store cannot hold or read an object (bad name, unreadable file)."""


def default_root(data_dir: Path) -> Path:
    """``<data_dir>/installed``: the CLI passes hub.config.Settings.data_dir ($TASKHUB_DATA_DIR)."""
    return Path(data_dir) / "installed"


class InstalledStore:
    """Installed objects under `root`, looked up by namespace, kind and name."""

    checks_pipelines_version = False

    def __init__(self, root: Path, namespace: str = "default") -> None:
        if not _DNS_LABEL.match(namespace):
            raise StoreError(f"invalid namespace {namespace!r}: expected a DNS-1123 label")
        self.root = Path(root)
        self.namespace = namespace
        self.description = f"{namespace} namespace of the local store ({self.root})"

    def in_namespace(self, namespace: str) -> InstalledStore:
        """The same store, another namespace."""
        return InstalledStore(self.root, namespace)

    def path(self, kind: str, name: str) -> Path:
        """Where the `kind` object `name` of this namespace is (or would be) stored."""
        if kind not in STORED_VERSIONS:
            raise StoreError(f"the local store holds Task, Pipeline and StepAction objects, not {kind}")
        if not _DNS_SUBDOMAIN.match(name):
            raise StoreError(f"invalid name {name!r}: expected a DNS-1123 subdomain")
        return self.root / self.namespace / kind.lower() / f"{name}.yaml"

    # The target interface the installer uses (shared with runner.kube.Cluster).

    def served_versions(self, kind: str) -> list[str]:
        """The one tekton.dev version `kind` is stored in."""
        return [STORED_VERSIONS[kind]] if kind in STORED_VERSIONS else []

    def pipelines_version(self) -> str | None:
        """The embedded runner has no Tekton Pipelines release: no minimum-version gate applies."""
        return None

    def get(self, kind: str, name: str) -> dict[str, Any] | None:
        """The stored object, or None."""
        path = self.path(kind, name)
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise StoreError(f"cannot read {path}: {exc.strerror}") from None
        try:
            obj = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise StoreError(f"{path} is not valid YAML: {' '.join(str(exc).split())}") from None
        if not isinstance(obj, dict):
            raise StoreError(f"{path} does not hold a Kubernetes object")
        return obj

    def list(self, kind: str) -> list[dict[str, Any]]:
        """Every stored `kind` object of the namespace, by name."""
        folder = self.root / self.namespace / kind.lower()
        names = sorted(p.stem for p in folder.glob("*.yaml")) if folder.is_dir() else []
        return [obj for name in names if (obj := self.get(kind, name)) is not None]

    def create(self, obj: dict[str, Any]) -> dict[str, Any]:
        """Store a new object; StoreError if one of that kind and name is already there."""
        kind, name = str(obj.get("kind")), str(obj.get("metadata", {}).get("name"))
        if self.path(kind, name).exists():
            raise StoreError(f"{kind} {name} already exists in the {self.description}")
        return self._write(obj)

    def replace(self, obj: dict[str, Any]) -> dict[str, Any]:
        """Overwrite the stored object."""
        return self._write(obj)

    def _write(self, obj: dict[str, Any]) -> dict[str, Any]:
        kind, name = str(obj.get("kind")), str(obj.get("metadata", {}).get("name"))
        path = self.path(kind, name)
        stored = {**obj, "metadata": {**obj.get("metadata", {}), "namespace": self.namespace}}
        path.parent.mkdir(parents=True, exist_ok=True)
        # Written to a temporary file and renamed, so a reader (the runner) never sees half an object.
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                yaml.safe_dump(stored, out, sort_keys=False, allow_unicode=True)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return stored
