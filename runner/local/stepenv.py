"""The environment of a step process: host basics, a private HOME, `envFrom` and `env` (with `valueFrom`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from runner.local.errors import RunFailure
from runner.local.hostpaths import PathMap
from runner.local.status import TR_CONFIG_ERROR
from runner.local.workspaces import Lookup, fetch_object, object_files

# What an image usually sets; nothing of the executor's own environment (credentials, TASKHUB_* settings) reaches
# a step.
IMAGE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def step_environment(
    step: dict[str, Any], paths: PathMap, private: Path, pod: str, namespace: str, lookup: Lookup | None
) -> dict[str, str]:
    """The environment of a step process: an image's PATH, a private HOME, HOSTNAME, then envFrom and env."""
    env = {"PATH": IMAGE_PATH}
    # An image's HOME (usually /root) is private to its container: here a directory private to the step.
    env["HOME"] = str(private)
    env["HOSTNAME"] = pod
    env.update(declared_environment(step, paths, pod, namespace, lookup))
    return env


def declared_environment(
    step: dict[str, Any], paths: PathMap, pod: str, namespace: str, lookup: Lookup | None
) -> dict[str, str]:
    """What a container's `envFrom` and `env` (with `valueFrom`) give it, in that order; container paths in `env`
    values mapped by `paths`."""
    env: dict[str, str] = {}
    for source in step.get("envFrom") or []:
        prefix = str(source.get("prefix") or "")
        for kind, key in (("ConfigMap", "configMapRef"), ("Secret", "secretRef")):
            ref = source.get(key)
            if ref:
                obj = fetch_object(lookup, kind, str(ref.get("name")), optional=bool(ref.get("optional")))
                if obj is not None:
                    for name, content in object_files(kind, obj).items():
                        env[prefix + name] = content.decode(errors="replace")
    for item in step.get("env") or []:
        name = str(item.get("name"))
        if "valueFrom" in item:
            value = _value_from(item["valueFrom"] or {}, name, pod, namespace, lookup)
            if value is None:
                continue
        else:
            value = _text(item.get("value"))
        env[name] = paths.rewrite(value)
    return env


def _value_from(source: dict[str, Any], name: str, pod: str, namespace: str, lookup: Lookup | None) -> str | None:
    for kind, key in (("ConfigMap", "configMapKeyRef"), ("Secret", "secretKeyRef")):
        ref = source.get(key)
        if ref:
            optional = bool(ref.get("optional"))
            obj = fetch_object(lookup, kind, str(ref.get("name")), optional=optional)
            files = object_files(kind, obj) if obj is not None else {}
            if str(ref.get("key")) not in files:
                if optional:
                    return None
                raise RunFailure(
                    TR_CONFIG_ERROR,
                    f'env "{name}": key "{ref.get("key")}" not found in {kind.lower()} "{ref.get("name")}"',
                )
            return files[str(ref.get("key"))].decode(errors="replace")
    field_ref = source.get("fieldRef")
    if field_ref:
        fields = {"metadata.name": pod, "metadata.namespace": namespace}
        return fields.get(str(field_ref.get("fieldPath")), "")
    return ""


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)
