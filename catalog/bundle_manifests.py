"""Image manifests as Tekton's bundles resolver checks them: Docker schema 2 and OCI manifests and indexes, the
bundle compliance rules (a dev.tekton.image.* annotation triple on every layer), and the lookup of an object's layer
(tektoncd/pipeline: pkg/resolution/resolver/bundle/bundle.go)."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from catalog.bundles import (
    API_VERSION_ANNOTATION,
    DOCKER_MANIFEST,
    KIND_ANNOTATION,
    MAX_OBJECTS,
    NAME_ANNOTATION,
    BundleEntry,
)
from catalog.errors import BundleEntryNotFound, BundleError

DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
SCHEMA1 = tuple(f"application/vnd.docker.distribution.manifest.v1+{suffix}" for suffix in ("json", "prettyjws"))
MAX_MANIFEST_BYTES = 4 * 1024 * 1024  # what registries accept
_DIGEST = re.compile(r"sha256:[0-9a-f]{64}")  # the only algorithm a caller can verify


@dataclass(frozen=True)
class Descriptor:
    """A manifest an image index points to."""

    media_type: str
    digest: str
    size: int


def parse_manifest(raw: bytes, media_type: str | None) -> dict[str, Any] | Descriptor:
    """A Docker schema 2 or OCI image manifest, checked; for an OCI index or a Docker manifest list, the linux/amd64
    child for the caller to fetch and parse in turn (a child without a platform counts as linux/amd64, as in
    go-containerregistry). `media_type` is the registry's Content-Type; the body decides when it is missing."""
    if len(raw) > MAX_MANIFEST_BYTES:
        raise BundleError(f"could not parse image manifest: it is over {MAX_MANIFEST_BYTES} bytes")
    try:
        document = json.loads(raw)
    except (ValueError, RecursionError) as exc:
        raise BundleError(f"could not parse image manifest: {exc}") from None
    if not isinstance(document, dict):
        raise BundleError("could not parse image manifest: not a JSON object")
    declared = (media_type or "").partition(";")[0].strip()
    if declared in (DOCKER_MANIFEST, OCI_MANIFEST, OCI_INDEX, DOCKER_MANIFEST_LIST, *SCHEMA1):
        kind = declared
    elif "mediaType" in document:
        kind = str(document["mediaType"])
    elif document.get("schemaVersion") == 1:
        kind = SCHEMA1[0]
    else:  # OCI manifests and indexes may leave mediaType out
        kind = OCI_INDEX if "manifests" in document else OCI_MANIFEST
    if kind in SCHEMA1:
        raise BundleError(f"unsupported MediaType: {json.dumps(kind)}: Docker schema 1 manifests cannot hold bundles")
    if kind in (OCI_INDEX, DOCKER_MANIFEST_LIST):
        children = document.get("manifests")
        if not isinstance(children, list):
            raise BundleError("could not parse image index: manifests is not a list")
        for number, child in enumerate(children):
            descriptor = _checked_descriptor(child, f"index entry {number}")
            platform = child.get("platform") or {"os": "linux", "architecture": "amd64"}
            if isinstance(platform, dict) and (platform.get("os"), platform.get("architecture")) == ("linux", "amd64"):
                return descriptor
        raise BundleError("no child with platform linux/amd64 in index")
    if kind not in (DOCKER_MANIFEST, OCI_MANIFEST):
        raise BundleError(f"unsupported MediaType: {json.dumps(kind)}: not an image manifest")
    if document.get("schemaVersion") != 2:
        raise BundleError("could not parse image manifest: schemaVersion is not 2")
    _checked_descriptor(document.get("config"), "config")
    layers = document.get("layers")
    if not isinstance(layers, list):
        raise BundleError("could not parse image manifest: layers is not a list")
    for number, layer in enumerate(layers):
        _checked_descriptor(layer, f"layer {number}")
    _check_annotations(document, "manifest")
    return document


def _checked_descriptor(value: Any, what: str) -> Descriptor:
    media_type = value.get("mediaType", "") if isinstance(value, dict) else None
    digest, size = (value.get("digest"), value.get("size")) if isinstance(value, dict) else (None, None)
    if not isinstance(media_type, str) or not isinstance(digest, str) or not _DIGEST.fullmatch(digest):
        raise BundleError(f"could not parse image manifest: {what} has no mediaType or no sha256 digest")
    if type(size) is not int or size < 0:
        raise BundleError(f"could not parse image manifest: {what} has no valid size")
    _check_annotations(value, what)
    return Descriptor(media_type, digest, size)


def _check_annotations(value: dict[str, Any], what: str) -> None:
    notes = value.get("annotations")
    if notes is not None and not (isinstance(notes, dict) and all(isinstance(v, str) for v in notes.values())):
        raise BundleError(f"could not parse image manifest: the annotations of {what} are not strings")


def check_bundle_manifest(manifest: dict[str, Any], ref: str) -> None:
    """The resolver's compliance checks, in its order and with its error strings."""

    def refuse(message: str) -> BundleError:
        return BundleError(f"invalid tekton bundle {ref}, error: {message}")

    layers = manifest.get("layers") or []
    if len(layers) > MAX_OBJECTS:
        raise refuse(f"contained more than the maximum {MAX_OBJECTS} allow objects")
    for index, layer in enumerate(layers):
        annotations = layer.get("annotations") or {}
        for key in (API_VERSION_ANNOTATION, NAME_ANNOTATION, KIND_ANNOTATION):
            if key not in annotations:
                raise refuse(f"the layer {index} does not contain a {key} annotation")
        kind = annotations[KIND_ANNOTATION]
        if kind.lower().removesuffix("s") != kind:
            must = "must be lowercased and singular"
            raise refuse(f"the layer {index} the annotation {KIND_ANNOTATION} {must}, found {kind}")


def bundle_entries(manifest: dict[str, Any]) -> list[BundleEntry]:
    """The layers of a manifest that passed check_bundle_manifest, in manifest order."""
    entries = []
    for layer in manifest.get("layers") or []:
        notes = layer.get("annotations") or {}
        kind, name, version = (notes.get(k, "") for k in (KIND_ANNOTATION, NAME_ANNOTATION, API_VERSION_ANNOTATION))
        entries.append(BundleEntry(kind, name, version, layer["digest"], layer["size"]))
    return entries


def find_layer(manifest: dict[str, Any], kind: str, name: str) -> BundleEntry:
    """The first layer annotated with this kind (any case) and exactly this name, as the resolver looks it up."""
    for entry in bundle_entries(manifest):
        if entry.kind.lower() == kind.lower() and entry.name == name:
            return entry
    raise BundleEntryNotFound(f"could not find object in image with kind: {kind} and name: {name}")
