"""deploy/'s kustomizations rendered as `kubectl kustomize` renders them, for tests on machines without kubectl:
only what deploy/ uses of kustomize (kubernetes-sigs/kustomize: api/types/kustomization.go), and an error for
anything else. `resources` (files, and directories holding a kustomization), `patches` with a target and an
inline JSON patch (RFC 6902: add, replace, remove), applied after the resources' own kustomizations, and `images`
(newName, newTag), renamed last, in patched-in containers too, as kustomize does. tests/test_deploy.py holds it to
kubectl's output where kubectl is installed.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

__all__ = ["KustomizeError", "render"]

KUSTOMIZATION = "kustomization.yaml"
FIELDS = {"apiVersion", "kind", "resources", "images", "patches"}
TARGET_FIELDS = {"kind", "name"}

Obj = dict[str, Any]


class KustomizeError(Exception):
    """A kustomization uses what this renderer does not do, or its patch does not apply."""


def render(directory: Path) -> list[Obj]:
    """The objects of the kustomization in `directory`, in the order of its resources."""
    path = directory / KUSTOMIZATION
    spec = yaml.safe_load(path.read_text()) or {}
    if unknown := set(spec) - FIELDS:
        raise KustomizeError(f"{path}: {', '.join(sorted(unknown))} not supported")
    objects: list[Obj] = []
    for entry in spec.get("resources") or []:
        resource = directory / entry
        if resource.is_dir():
            objects += render(resource)
        else:
            objects += [obj for obj in yaml.safe_load_all(resource.read_text()) if obj]
    for patch in spec.get("patches") or []:
        target = patch.get("target") or {}
        if set(target) - TARGET_FIELDS or "patch" not in patch:
            raise KustomizeError(f"{path}: only patches with an inline patch and a target by kind and name")
        matched = [obj for obj in objects if all(_field(obj, key) == value for key, value in target.items())]
        if not matched:
            raise KustomizeError(f"{path}: no resource matches the patch target {target}")
        for obj in matched:
            for operation in yaml.safe_load(patch["patch"]):
                _apply(obj, operation)
    for image in spec.get("images") or []:
        _set_image(objects, image)
    return objects


def _field(obj: Obj, key: str) -> Any:
    return obj.get("kind") if key == "kind" else obj.get("metadata", {}).get("name")


def _set_image(objects: list[Obj], image: Obj) -> None:
    """Every container and init container whose image is `image["name"]` (with or without a tag) renamed."""
    name = image["name"]
    for obj in objects:
        spec = obj.get("spec", {})
        pod = spec.get("template", {}).get("spec", {}) if "template" in spec else spec
        for container in pod.get("containers", []) + pod.get("initContainers", []):
            current = container.get("image", "")
            base, colon, tag = current.rpartition(":")
            if not colon or "/" in tag:  # no tag: "host:port/name" has a colon too
                base, tag = current, ""
            if base == name:
                new_tag = image.get("newTag", tag)
                container["image"] = image.get("newName", name) + (f":{new_tag}" if new_tag else "")


def _apply(obj: Obj, operation: Obj) -> None:
    """One RFC 6902 operation on obj, in place."""
    op, pointer = operation.get("op"), str(operation.get("path", ""))
    parts = [part.replace("~1", "/").replace("~0", "~") for part in pointer.split("/")[1:]]
    if op not in ("add", "replace", "remove") or not parts:
        raise KustomizeError(f"unsupported JSON patch operation {operation}")
    parent: Any = obj
    for part in parts[:-1]:
        parent = parent[int(part)] if isinstance(parent, list) else parent.get(part)
        if parent is None:
            raise KustomizeError(f"{pointer}: {part} does not exist")
    last = parts[-1]
    value = copy.deepcopy(operation.get("value"))
    if isinstance(parent, list):
        index = len(parent) if last == "-" else int(last)
        if op == "add":
            parent.insert(index, value)
        elif op == "replace":
            parent[index] = value
        else:
            del parent[index]
    elif op != "add" and last not in parent:
        raise KustomizeError(f"{pointer} does not exist")
    elif op == "remove":
        del parent[last]
    else:
        parent[last] = value
