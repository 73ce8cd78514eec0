"""The installed Tekton objects the embedded runner reads (`taskhub hub install --local`, `taskhub apply`): one
namespace of the hub's object store (runner.objects), so every worker, on any machine, sees the same ones.

Objects are kept with the labels and annotations a cluster would hold (``hub.tekton.dev/catalog``,
``app.kubernetes.io/version``, ...), so `check-upgrade`, `upgrade` and the runner treat both alike. Tasks and
Pipelines are kept as ``tekton.dev/v1``, StepActions as ``tekton.dev/v1beta1``: the versions the runner reads.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine

from catalog.errors import TaskhubError
from runner.objects import ObjectStore
from runner.objects.store import check_name, check_namespace

# The one version each kind is stored in.
STORED_VERSIONS = {"Task": "v1", "Pipeline": "v1", "StepAction": "v1beta1"}


class StoreError(TaskhubError):
    """The local store cannot hold or read an object (bad name, bad namespace, a kind it does not hold)."""


class InstalledStore:
    """Installed objects of one namespace, looked up by kind and name."""

    checks_pipelines_version = False

    def __init__(self, objects: ObjectStore | Engine, namespace: str = "default") -> None:
        try:
            check_namespace(namespace)
        except TaskhubError as exc:
            raise StoreError(str(exc)) from None
        self.objects = objects if isinstance(objects, ObjectStore) else ObjectStore(objects)
        self.namespace = namespace
        self.description = f"{namespace} namespace of the local store"

    def in_namespace(self, namespace: str) -> InstalledStore:
        """The same store, another namespace."""
        return InstalledStore(self.objects, namespace)

    def _checked(self, kind: str, name: str) -> None:
        if kind not in STORED_VERSIONS:
            raise StoreError(f"the local store holds Task, Pipeline and StepAction objects, not {kind}")
        try:
            check_name(name)
        except TaskhubError as exc:
            raise StoreError(str(exc)) from None

    # The target interface the installer uses (shared with runner.kube.Cluster).

    def served_versions(self, kind: str) -> list[str]:
        """The one tekton.dev version `kind` is stored in."""
        return [STORED_VERSIONS[kind]] if kind in STORED_VERSIONS else []

    def pipelines_version(self) -> str | None:
        """The embedded runner has no Tekton Pipelines release: no minimum-version gate applies."""
        return None

    def get(self, kind: str, name: str) -> dict[str, Any] | None:
        """The stored object, or None."""
        self._checked(kind, name)
        return self.objects.get(kind, self.namespace, name)

    def list(self, kind: str) -> list[dict[str, Any]]:
        """Every stored `kind` object of the namespace, by name."""
        if kind not in STORED_VERSIONS:
            raise StoreError(f"the local store holds Task, Pipeline and StepAction objects, not {kind}")
        return self.objects.list(kind, self.namespace)

    def create(self, obj: dict[str, Any]) -> dict[str, Any]:
        """Store a new object; StoreError if one of that kind and name is already there."""
        kind, name = str(obj.get("kind")), str(obj.get("metadata", {}).get("name"))
        if self.get(kind, name) is not None:
            raise StoreError(f"{kind} {name} already exists in the {self.description}")
        return self._write(obj)

    def replace(self, obj: dict[str, Any]) -> dict[str, Any]:
        """Overwrite the stored object."""
        return self._write(obj)

    def _write(self, obj: dict[str, Any]) -> dict[str, Any]:
        kind, name = str(obj.get("kind")), str(obj.get("metadata", {}).get("name"))
        self._checked(kind, name)
        stored = {**obj, "metadata": {**obj.get("metadata", {}), "namespace": self.namespace}}
        self.objects.apply(stored, namespace=self.namespace)
        return self.objects.get(kind, self.namespace, name) or stored
