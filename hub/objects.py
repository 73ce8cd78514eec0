"""Applying, reading and deleting the hub's objects: what `taskhub apply|get|delete|secret` and the objects API
share. Every document is admitted before any is written: Triggers resources as upstream's admission webhook
admits them (triggers.admission), Tekton objects converted to the version the runner reads; a file with one bad
document changes nothing and names every problem.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine

from catalog.convert import ConversionError, can_convert, convert
from catalog.errors import Conflict, InvalidRequest
from hub.config import Settings
from runner.objects import Applied, InvalidObject, ObjectStore, kind_of
from runner.objects.kinds import TEKTON, TRIGGERS
from runner.objects.sealing import sealer_for
from runner.objects.store import check_name, check_namespace
from triggers.admission import parse_resource


def object_store(settings: Settings, engine: Engine) -> ObjectStore:
    """The object store of a hub: its database, Secrets sealed with its key."""
    return ObjectStore(engine, sealer_for(settings.data_dir, settings.secrets_key))


class NamespaceMismatch(InvalidRequest):
    reason = "namespace-mismatch"


def admitted(obj: Mapping[str, Any], namespace: str, *, given_namespace: bool) -> dict[str, Any]:
    """The object as it is to be kept; an InvalidRequest naming what is wrong with it."""
    kind = str(obj.get("kind") or "")
    if not isinstance(obj.get("apiVersion"), str) or not kind:
        raise InvalidObject("an object needs a string apiVersion and kind")
    info = kind_of(str(obj["apiVersion"]), kind)
    meta = obj.get("metadata")
    if not isinstance(meta, Mapping):
        raise InvalidObject(f"{kind}: metadata must be a mapping with a name")
    own = meta.get("namespace")
    name = meta.get("name")
    if given_namespace and info.namespaced and own and own != namespace:
        raise NamespaceMismatch(
            f'{kind} "{name}": the namespace from the object "{own}" does not match the namespace "{namespace}"; '
            f"pass -n {own} (or ?namespace={own}) to apply it"
        )
    out = dict(obj)
    if info.group == TRIGGERS:
        parse_resource(out, namespace=namespace)  # raises InvalidResource listing every violation
    elif info.group == TEKTON and str(obj["apiVersion"]) != info.api_version():
        if not can_convert(kind, str(obj["apiVersion"]).rpartition("/")[2], info.stored_version):
            raise InvalidObject(f"{kind} {name}: {obj['apiVersion']} cannot be kept as {info.api_version()}")
        try:
            out = convert(out, info.stored_version)
        except ConversionError as exc:
            raise InvalidObject(f"{kind} {name}: {exc}") from None
    return out


@dataclass
class ObjectService:
    store: ObjectStore

    def apply(
        self, objects: list[dict[str, Any]], *, namespace: str | None = None, created_by: str = ""
    ) -> list[Applied]:
        """Admits every object, then applies them in order; nothing is written if one is refused."""
        ns = check_namespace(namespace or "default")
        ready = self.admit(objects, namespace=namespace)
        return [self.store.apply(obj, namespace=ns, created_by=created_by) for obj in ready]

    def admit(self, objects: list[dict[str, Any]], *, namespace: str | None = None) -> list[dict[str, Any]]:
        """Every object as it is to be kept (`admitted`); InvalidObject naming every refused one."""
        ns = check_namespace(namespace or "default")
        ready, problems = [], []
        for i, obj in enumerate(objects):
            try:
                ready.append(admitted(obj, ns, given_namespace=namespace is not None))
            except InvalidRequest as exc:
                problems.append(str(exc) if len(objects) == 1 else f"document {i + 1}: {exc}")
        if problems:
            raise InvalidObject("; ".join(problems) + ("" if len(objects) == 1 else " (nothing was applied)"))
        return ready

    def create_secret(
        self, name: str, values: Mapping[str, str], *, namespace: str | None = None, created_by: str = ""
    ) -> Applied:
        """A generic Secret from literal values (`taskhub secret create NAME --from-literal KEY=VALUE`)."""
        ns = check_namespace(namespace or "default")
        check_name(name)
        if self.store.get("Secret", ns, name) is not None:
            raise Conflict(f'Secret "{name}" already exists in namespace "{ns}"; `taskhub delete secret {name}` first')
        if not values:
            raise InvalidRequest("a Secret needs at least one KEY=VALUE", reason="invalid-payload")
        manifest = {
            "apiVersion": "v1", "kind": "Secret", "type": "Opaque",
            "metadata": {"name": name, "namespace": ns}, "stringData": dict(values),
        }  # fmt: skip
        return self.store.apply(manifest, namespace=ns, created_by=created_by)
