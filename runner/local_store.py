"""The installed Tekton objects the embedded runner reads (`taskhub hub install --local`, `taskhub apply`): one
namespace of the hub's object store (runner.objects), so every worker, on any machine, sees the same ones.

Objects are kept with the labels and annotations a cluster would hold (``hub.tekton.dev/catalog``,
``app.kubernetes.io/version``, ...), so `check-upgrade`, `upgrade` and the runner treat both alike. Tasks and
Pipelines are kept as ``tekton.dev/v1``, StepActions as ``tekton.dev/v1beta1``: the versions the runner reads.
"""

from __future__ import annotations

import base64
import copy
import shutil
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from catalog.errors import TaskhubError
from runner.local import ResolutionError
from runner.objects import ObjectStore
from runner.objects.store import check_name, check_namespace

# The one version each kind is stored in.
STORED_VERSIONS = {"Task": "v1", "Pipeline": "v1", "StepAction": "v1beta1"}


class StoreError(TaskhubError):
    """The local store cannot hold or read an object (bad name, bad namespace, a kind it does not hold)."""


class InstalledStore:
    """Installed objects of one namespace, looked up by kind and name."""

    checks_pipelines_version = False

    def __init__(
        self, objects: ObjectStore | Engine, namespace: str = "default", pending: list[dict[str, Any]] | None = None
    ) -> None:
        """`pending` objects are read as if they were stored, before the store's own (a file's documents that are
        not to be written)."""
        try:
            check_namespace(namespace)
        except TaskhubError as exc:
            raise StoreError(str(exc)) from None
        self.objects = objects if isinstance(objects, ObjectStore) else ObjectStore(objects)
        self.namespace = namespace
        self.description = f"{namespace} namespace of the local store"
        self.pending = {
            (str(obj.get("kind")), str((obj.get("metadata") or {}).get("name"))): obj
            for obj in pending or []
            if (obj.get("metadata") or {}).get("namespace", namespace) == namespace
        }

    def in_namespace(self, namespace: str) -> InstalledStore:
        """The same store, another namespace."""
        return InstalledStore(self.objects, namespace, list(self.pending.values()))

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
        found = self.pending.get((kind, name))
        return copy.deepcopy(found) if found is not None else self.objects.get(kind, self.namespace, name)

    def uri_of(self, obj: dict[str, Any]) -> str:
        """Where a stored object is, for a run's lock: `installed:<namespace>/<kind>/<name>`."""
        return f"installed:{self.namespace}/{str(obj.get('kind')).lower()}/{obj['metadata']['name']}"

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


class NamespaceObjects:
    """What a local run reads from one namespace of the object store: the Tasks, Pipelines and StepActions it
    names, the ConfigMaps and Secrets (with their values) it mounts or reads, and the directory of each
    PersistentVolumeClaim it binds, under `claims_root/<namespace>/<name>`: kept across runs as a cluster keeps a
    claim's volume, and emptied when the claim was deleted and made again (another uid)."""

    def __init__(self, objects: ObjectStore, namespace: str, claims_root: Path) -> None:
        self.objects, self.namespace, self.claims_root = objects, namespace, claims_root

    def lookup(self, ref: dict[str, Any], kind: str) -> dict[str, Any]:
        """The object a reference by name points at (the executor's resolver); ResolutionError if there is none."""
        name = str(ref.get("name") or "")
        if ref.get("resolver") or kind not in (*STORED_VERSIONS, "ConfigMap", "Secret"):
            raise ResolutionError(f"{kind} {name or ref.get('resolver')} is not available locally")
        found = self._get(kind, name)
        if kind == "Secret" and found is not None:
            data = self.objects.secret_data(self.namespace, name) or {}
            found["data"] = {key: base64.b64encode(value).decode() for key, value in data.items()}
        if found is None:
            raise ResolutionError(f'{kind.lower()} "{name}" not found in namespace "{self.namespace}"')
        return found

    def claim(self, name: str) -> Path:
        """The directory of the PersistentVolumeClaim `name`; ResolutionError when the namespace has none."""
        found = self._get("PersistentVolumeClaim", name)
        if found is None:
            raise ResolutionError(
                f'persistentvolumeclaim "{name}" not found in namespace "{self.namespace}" '
                "(`taskhub apply -f` one, or put it in the run's file)"
            )
        uid = str(found["metadata"].get("uid") or "")
        path = self.claims_root / self.namespace / name
        marker = path.with_name(f"{name}.uid")
        if marker.is_file() and marker.read_text() != uid and path.exists():
            shutil.rmtree(path)  # the claim was deleted and made again: a new, empty volume
        path.parent.mkdir(parents=True, exist_ok=True)
        marker.write_text(uid)
        return path

    def _get(self, kind: str, name: str) -> dict[str, Any] | None:
        try:
            check_name(name)
        except TaskhubError as exc:
            raise ResolutionError(str(exc)) from None
        return self.objects.get(kind, self.namespace, name)
