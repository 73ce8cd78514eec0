"""Workspace bindings and task volumes made real as host directories (§6, §1.7)."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from pathlib import Path
from typing import Any

from runner.local.errors import ResolutionError, RunFailure
from runner.local.sandbox import shared_dir
from runner.local.status import TR_CONFIG_ERROR, TR_VALIDATION_FAILED

Lookup = Callable[[str, str], dict[str, Any]]
SOURCES = ("emptyDir", "persistentVolumeClaim", "volumeClaimTemplate", "configMap", "secret", "projected", "csi")


def source_kind(binding: dict[str, Any]) -> str | None:
    """Which volume source a workspace binding or volume uses."""
    found = [key for key in (*SOURCES, "hostPath") if key in binding]
    return found[0] if len(found) == 1 else None


def _decode(value: str, where: str) -> bytes:
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise RunFailure(TR_CONFIG_ERROR, f"{where}: value is not valid base64") from exc


def object_files(kind: str, obj: dict[str, Any]) -> dict[str, bytes]:
    """The files a ConfigMap or Secret projects: one per key, Secret `data` base64-decoded."""
    name = obj.get("metadata", {}).get("name", "")
    files: dict[str, bytes] = {}
    if kind == "Secret":
        for key, value in (obj.get("data") or {}).items():
            files[str(key)] = _decode(str(value), f'secret "{name}" key "{key}"')
        for key, value in (obj.get("stringData") or {}).items():
            files[str(key)] = str(value).encode()
    else:
        for key, value in (obj.get("data") or {}).items():
            files[str(key)] = str(value).encode()
        for key, value in (obj.get("binaryData") or {}).items():
            files[str(key)] = _decode(str(value), f'configmap "{name}" key "{key}"')
    return files


def fetch_object(lookup: Lookup | None, kind: str, name: str, *, optional: bool = False) -> dict[str, Any] | None:
    """A ConfigMap or Secret by name through the executor's lookup; a clear run failure if it is missing."""
    if lookup is None:
        if optional:
            return None
        raise RunFailure(TR_CONFIG_ERROR, f'{kind.lower()} "{name}" not found: no lookup for {kind} objects was given')
    try:
        return lookup(kind, name)
    except ResolutionError as exc:
        if optional:
            return None
        raise RunFailure(TR_CONFIG_ERROR, f'{kind.lower()} "{name}" not found: {exc}') from exc


def _write_files(dest: Path, files: dict[str, bytes], items: list[dict[str, Any]] | None, where: str) -> None:
    selected: dict[str, bytes] = {}
    if items:
        for item in items:
            key, path = str(item.get("key")), str(item.get("path") or item.get("key"))
            if key not in files:
                raise RunFailure(TR_CONFIG_ERROR, f'{where}: key "{key}" not found')
            if path.startswith("/") or ".." in Path(path).parts:
                raise RunFailure(TR_VALIDATION_FAILED, f'{where}: item path "{path}" must be relative')
            selected[path] = files[key]
    else:
        selected = files
    for path, content in selected.items():
        target = dest / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content)


class VolumeMaker:
    """Creates the host directory for a volume source inside one pod's directory."""

    def __init__(self, pod_dir: Path, claims: Callable[[str], Path], lookup: Lookup | None) -> None:
        self.pod_dir = pod_dir
        self.claims = claims
        self.lookup = lookup

    def make(self, kind_of_use: str, name: str, source: dict[str, Any]) -> tuple[Path, bool]:
        """(host directory, read-only) for a workspace binding or volume named `name`."""
        kind = source_kind(source)
        where = f'{kind_of_use} "{name}"'
        if kind is None:
            raise RunFailure(TR_VALIDATION_FAILED, f"{where}: expected exactly one volume source")
        spec = source.get(kind) or {}
        if kind == "emptyDir":
            return shared_dir(self.pod_dir, "volumes", f"{kind_of_use}-{name}"), False
        if kind == "persistentVolumeClaim":
            claim = spec.get("claimName")
            if not claim:
                raise RunFailure(
                    TR_VALIDATION_FAILED, f"missing field(s): {kind_of_use}.persistentvolumeclaim.claimname"
                )
            try:
                return self.claims(str(claim)), bool(spec.get("readOnly"))
            except ResolutionError as exc:
                raise RunFailure(TR_VALIDATION_FAILED, f"{where}: {exc}") from exc
        if kind == "volumeClaimTemplate":
            return shared_dir(self.pod_dir, "claims", name), False
        if kind == "hostPath":
            return Path(str(spec.get("path"))), False
        if kind == "csi":
            raise RunFailure(TR_CONFIG_ERROR, f"{where}: csi volumes cannot be provided by the local executor")
        path = self.pod_dir / "volumes" / f"{kind_of_use}-{name}"
        path.mkdir(parents=True, exist_ok=True)
        sources = (spec.get("sources") or []) if kind == "projected" else [{kind: spec}]
        for projection in sources:
            self._project(path, projection, where)
        # Files keep Kubernetes' defaultMode 0644; containers mount the directory read-only.
        return path, True

    def _project(self, dest: Path, projection: dict[str, Any], where: str) -> None:
        if "configMap" in projection or "secret" in projection:
            kind = "ConfigMap" if "configMap" in projection else "Secret"
            spec = projection["configMap" if kind == "ConfigMap" else "secret"] or {}
            name = spec.get("name") or spec.get("secretName")
            if not name:
                field = "configmap.name" if kind == "ConfigMap" else "secret.secretName"
                raise RunFailure(TR_VALIDATION_FAILED, f"{where}: missing field(s): {field}")
            obj = fetch_object(self.lookup, kind, str(name), optional=bool(spec.get("optional")))
            if obj is not None:
                _write_files(dest, object_files(kind, obj), spec.get("items"), f'{where} {kind.lower()} "{name}"')
        # downwardAPI and serviceAccountToken projections have nothing to show outside a cluster.


def join_sub_path(base: Path, *sub_paths: str | None) -> Path:
    """`base` joined with workspace subPaths, created if missing as the kubelet does (writable by steps); no way
    out of `base`, not even through a symlink a step left there."""
    parts: list[str] = []
    for sub in sub_paths:
        if not sub:
            continue
        if Path(sub).is_absolute() or ".." in Path(sub).parts:
            raise RunFailure(TR_VALIDATION_FAILED, f'subPath "{sub}" must be a relative path inside the volume')
        parts += Path(sub).parts
    if not parts:
        base.mkdir(parents=True, exist_ok=True)
        return base
    return shared_dir(base, *parts)
