"""The hub's one store of namespaced objects (Triggers resources, Tasks, Pipelines, StepActions, ConfigMaps,
Secrets, PersistentVolumeClaims), kept in its database so that every worker, on any machine, reads the same ones.

Objects are kept as a cluster keeps them: by group, kind, namespace and name, with a uid made at creation, the
labels, and `creationTimestamp`; a Secret's data sealed (runner.objects.sealing) and never given back by `get`
or `list` (its values read null), only by `secret_data`, which interceptors and runs use.
"""

from __future__ import annotations

import base64
import binascii
import copy
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, bindparam, delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from catalog.errors import InvalidRequest, NotFound
from catalog.models import utcnow
from runner.objects.kinds import KindInfo, kind_named, kind_of
from runner.objects.models import StoredObject
from runner.objects.sealing import Sealer

_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
_DNS_SUBDOMAIN = re.compile(r"^(?=.{1,253}$)[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_SECRET_KEY = re.compile(r"^[-._a-zA-Z0-9]{1,253}$")
# What the store sets itself: a manifest's own values are not kept.
_SERVER_FIELDS = ("uid", "creationTimestamp", "resourceVersion", "generation", "managedFields", "selfLink")
CREATED, CONFIGURED, UNCHANGED = "created", "configured", "unchanged"
# One object by its identity, built once: the sink reads its listener on every event.
_BY_IDENTITY = (
    StoredObject.api_group == bindparam("group"), StoredObject.kind == bindparam("kind"),
    StoredObject.namespace == bindparam("namespace"), StoredObject.name == bindparam("name"),
)  # fmt: skip
_MANIFEST = select(StoredObject.manifest).where(*_BY_IDENTITY)
_SEALED = select(StoredObject.sealed_data).where(*_BY_IDENTITY)


class InvalidObject(InvalidRequest):
    """A manifest the store cannot keep; the message names the object and every problem."""

    reason = "invalid-object"


@dataclass(frozen=True)
class Applied:
    kind: str
    namespace: str  # "" for cluster-scoped kinds
    name: str
    action: str  # created, configured or unchanged

    def describe(self) -> str:
        """As kubectl reports it: `triggerbinding.triggers.tekton.dev/name created`."""
        info = kind_named(self.kind)
        group = f".{info.group}" if info.group else ""
        return f"{info.kind.lower()}{group}/{self.name} {self.action}"


def check_namespace(namespace: str) -> str:
    if not _DNS_LABEL.match(namespace):
        raise InvalidRequest(
            f"invalid namespace {namespace[:80]!r}: expected a DNS-1123 label", reason="invalid-params"
        )
    return namespace


def check_name(name: str, what: str = "name") -> str:
    if not _DNS_SUBDOMAIN.match(name):
        raise InvalidRequest(f"invalid {what} {name[:80]!r}: expected a DNS-1123 subdomain", reason="invalid-params")
    return name


class ObjectStore:
    """Objects in the database of `engine`; `sealer` seals Secrets (a store without one refuses them)."""

    def __init__(self, engine: Engine, sealer: Sealer | None = None) -> None:
        self.engine, self.sealer = engine, sealer

    # -- writing ----------------------------------------------------------------------------------------------

    def apply(self, obj: Mapping[str, Any], *, namespace: str = "default", created_by: str = "") -> Applied:
        """Creates the object, or replaces the one of the same kind, namespace and name (keeping its uid)."""
        info, manifest, sealed = self._admit(obj, namespace)
        meta = manifest["metadata"]
        ns, name = meta.get("namespace", ""), meta["name"]
        for _ in range(3):  # a concurrent create of the same object: then it is an update
            with Session(self.engine) as session, session.begin():
                row = session.scalar(self._identity(info, ns, name))
                if row is None:
                    meta["uid"] = str(uuid.uuid4())
                    meta["creationTimestamp"] = utcnow().strftime("%Y-%m-%dT%H:%M:%SZ")
                    session.add(
                        StoredObject(
                            api_group=info.group, kind=info.kind, namespace=ns, name=name,
                            api_version=manifest["apiVersion"], uid=meta["uid"], labels=meta.get("labels") or {},
                            manifest=manifest, sealed_data=sealed, created_by=created_by[:63],
                        )
                    )  # fmt: skip
                    try:
                        session.flush()
                    except IntegrityError:
                        session.rollback()
                        continue
                    return Applied(info.kind, ns, name, CREATED)
                meta["uid"] = row.uid
                meta["creationTimestamp"] = row.manifest.get("metadata", {}).get("creationTimestamp")
                old_data = self._open(row) if info.kind == "Secret" else None
                new_data = self._open_bytes(sealed) if sealed is not None else None
                if row.manifest == manifest and old_data == new_data:
                    return Applied(info.kind, ns, name, UNCHANGED)
                row.manifest, row.api_version, row.labels = manifest, manifest["apiVersion"], meta.get("labels") or {}
                row.sealed_data, row.generation, row.updated_at = sealed, row.generation + 1, utcnow()
                return Applied(info.kind, ns, name, CONFIGURED)
        raise InvalidObject(f"{info.kind} {name} changed while it was applied; apply it again")

    def delete(self, kind: str, namespace: str | None, name: str) -> None:
        """Deletes one object; NotFound when there is none."""
        info = kind_named(kind)
        ns = self._scope(info, namespace)
        with self.engine.begin() as conn:
            done = conn.execute(
                delete(StoredObject).where(
                    StoredObject.api_group == info.group, StoredObject.kind == info.kind,
                    StoredObject.namespace == ns, StoredObject.name == name,
                )
            ).rowcount  # fmt: skip
        if not done:
            raise NotFound(_not_found(info, ns, name))

    # -- reading ----------------------------------------------------------------------------------------------

    def get(self, kind: str, namespace: str | None, name: str) -> dict[str, Any] | None:
        """The manifest of one object (a Secret's values null), or None."""
        info = kind_named(kind)
        with self.engine.connect() as conn:
            row = conn.execute(_MANIFEST, self._key(info, namespace, name)).first()
        return None if row is None else _shown(info, row.manifest)

    def require(self, kind: str, namespace: str | None, name: str) -> dict[str, Any]:
        found = self.get(kind, namespace, name)
        if found is None:
            info = kind_named(kind)
            raise NotFound(_not_found(info, self._scope(info, namespace), name))
        return found

    def list(self, kind: str, namespace: str | None = None) -> list[dict[str, Any]]:
        """Every object of a kind in a namespace (None: in every namespace), by namespace and name."""
        info = kind_named(kind)
        query = select(StoredObject).where(StoredObject.api_group == info.group, StoredObject.kind == info.kind)
        if namespace is not None and info.namespaced:
            query = query.where(StoredObject.namespace == namespace)
        with Session(self.engine) as session:
            rows = session.scalars(query.order_by(StoredObject.namespace, StoredObject.name))
            return [_shown(info, row.manifest) for row in rows]

    def secret_data(self, namespace: str, name: str) -> dict[str, bytes] | None:
        """The data of a Secret (key -> bytes), or None when there is no such Secret (SecretStore of Triggers)."""
        with self.engine.connect() as conn:
            row = conn.execute(_SEALED, self._key(kind_named("Secret"), namespace, name)).first()
        return None if row is None else self._open_bytes(row.sealed_data) if row.sealed_data is not None else {}

    # -- helpers ----------------------------------------------------------------------------------------------

    def _identity(self, info: KindInfo, namespace: str, name: str) -> Any:
        return select(StoredObject).where(
            StoredObject.api_group == info.group, StoredObject.kind == info.kind,
            StoredObject.namespace == namespace, StoredObject.name == name,
        )  # fmt: skip

    def _key(self, info: KindInfo, namespace: str | None, name: str) -> dict[str, str]:
        return {"group": info.group, "kind": info.kind, "namespace": self._scope(info, namespace), "name": name}

    @staticmethod
    def _scope(info: KindInfo, namespace: str | None) -> str:
        return (namespace or "default") if info.namespaced else ""

    def _open(self, row: StoredObject) -> dict[str, bytes]:
        return self._open_bytes(row.sealed_data) if row.sealed_data is not None else {}

    def _open_bytes(self, sealed: bytes) -> dict[str, bytes]:
        if self.sealer is None:
            raise InvalidObject("this store has no secrets key: Secrets cannot be read here")
        return self.sealer.open(sealed)

    def _admit(self, obj: Mapping[str, Any], namespace: str) -> tuple[KindInfo, dict[str, Any], bytes | None]:
        """The kind, the manifest as kept, and a Secret's sealed data; InvalidObject naming every problem."""
        if not isinstance(obj, Mapping):
            raise InvalidObject("an object must be a mapping with apiVersion, kind and metadata")
        api_version, kind = obj.get("apiVersion"), obj.get("kind")
        if not isinstance(api_version, str) or not isinstance(kind, str) or not api_version or not kind:
            raise InvalidObject("an object needs a string apiVersion and kind")
        info = kind_of(api_version, kind)
        manifest = copy.deepcopy(dict(obj))
        manifest.pop("status", None)
        meta = manifest.get("metadata")
        if not isinstance(meta, dict):
            raise InvalidObject(f"{kind}: metadata must be a mapping with a name")
        name = meta.get("name")
        problems = []
        if not isinstance(name, str) or not _DNS_SUBDOMAIN.match(name):
            problems.append(f"metadata.name {str(name)[:80]!r} is not a DNS-1123 subdomain (lowercase, '-', '.')")
        for key in ("labels", "annotations"):
            value = meta.get(key)
            if value is not None and not (
                isinstance(value, dict) and all(isinstance(k, str) and isinstance(v, str) for k, v in value.items())
            ):
                problems.append(f"metadata.{key} must map strings to strings")
        for key in _SERVER_FIELDS:
            meta.pop(key, None)
        if info.namespaced:
            given = meta.get("namespace") or namespace
            if not isinstance(given, str) or not _DNS_LABEL.match(given):
                problems.append(f"metadata.namespace {str(given)[:80]!r} is not a DNS-1123 label")
            meta["namespace"] = given
        else:
            meta.pop("namespace", None)
        sealed = None
        if info.kind == "Secret":
            data = _secret_values(manifest, problems)
            if not problems:
                if self.sealer is None:
                    raise InvalidObject("this store has no secrets key: Secrets cannot be kept here")
                sealed = self.sealer.seal(data)
            manifest.pop("data", None)
            manifest.pop("stringData", None)
            manifest["keys"] = sorted(data)
        if problems:
            raise InvalidObject(f'{kind} "{name}" is invalid: ' + "; ".join(problems))
        return info, manifest, sealed


def _secret_values(manifest: dict[str, Any], problems: list[str]) -> dict[str, bytes]:
    """A Secret's `data` (base64) and `stringData` (text, winning on the same key), as bytes."""
    out: dict[str, bytes] = {}
    data, string_data = manifest.get("data") or {}, manifest.get("stringData") or {}
    if not isinstance(data, dict) or not isinstance(string_data, dict):
        problems.append("data and stringData must be mappings")
        return out
    for key, value in data.items():
        if value is None:
            problems.append(f"data.{key} is null: `get` hides a Secret's values, give the value itself")
            continue
        try:
            out[key] = base64.b64decode(str(value), validate=True)
        except (binascii.Error, ValueError):
            problems.append(f"data.{key} is not base64 (use stringData for plain text)")
    for key, value in string_data.items():
        if not isinstance(value, str):
            problems.append(f"stringData.{key} must be a string")
            continue
        out[key] = value.encode()
    for key in out:
        if not _SECRET_KEY.match(key):
            problems.append(f"data key {key[:80]!r} may hold only letters, digits, '-', '_' and '.'")
    return out


def _shown(info: KindInfo, manifest: dict[str, Any]) -> dict[str, Any]:
    """A manifest as read (a copy of its own: the JSON column decodes one per read), a Secret's values null."""
    if info.kind == "Secret" and info.group == "":
        keys = manifest.pop("keys", [])
        manifest["data"] = dict.fromkeys(keys)  # the values are never shown again
    return manifest


def _not_found(info: KindInfo, namespace: str, name: str) -> str:
    where = f' in namespace "{namespace}"' if info.namespaced else ""
    return f'{info.kind} "{name}" not found{where}'
