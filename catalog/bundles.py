"""Tekton bundles, built in the layout `tkn bundle push` writes and read as Tekton's bundles resolver reads them.

Each object becomes a gzip'd tar layer holding one file, named after the object, with its compact JSON; the
manifest annotates each layer with the object's kind, name and API version, which is all the resolver looks at
(tektoncd/pipeline: pkg/resolution/resolver/bundle/bundle.go). The bytes depend only on the input: the same
files give the same digest in any order, process, time zone or year, so publishing a catalog again pushes nothing.
They are not tkn's bytes: tkn's deflate stream (Go's compress/flate) cannot be reproduced with zlib, so no digest a
user sees could match tkn's anyway.

Reading a layer follows the resolver: its layer decoding (gzip or plain; the first tar entry, else the whole blob),
plus a size limit it does not have. The manifests around the layers: catalog/bundle_manifests.py.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import re
import tarfile
import zlib
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from catalog.errors import BundleError
from catalog.manifests import API_VERSIONS, MAX_FILE_BYTES, ManifestError, decode_text, load_documents

MAX_OBJECTS = 20
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"
API_VERSION_ANNOTATION = "dev.tekton.image.apiVersion"
KIND_ANNOTATION = "dev.tekton.image.kind"
NAME_ANNOTATION = "dev.tekton.image.name"

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_GZIP_MAGIC, _ZSTD_MAGIC = b"\x1f\x8b", b"\x28\xb5\x2f\xfd"
_OBJECT_NAME = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")  # DNS-1123 subdomain


@dataclass(frozen=True)
class BundleEntry:
    """One layer of a bundle as its manifest describes it."""

    kind: str  # the dev.tekton.image.kind annotation, lower-case ("task")
    name: str
    api_version: str  # as annotated: tkn writes the version only ("v1")
    digest: str  # of the layer blob
    size: int


@dataclass(frozen=True)
class BundleLayer(BundleEntry):
    """A built layer: its entry, the gzip'd tar and the digest of the tar."""

    blob: bytes
    diff_id: str


@dataclass(frozen=True)
class Bundle:
    """A built bundle: every byte a registry needs to serve it."""

    manifest: bytes
    config: bytes
    layers: tuple[BundleLayer, ...]

    @property
    def digest(self) -> str:
        return _sha256(self.manifest)

    @property
    def config_digest(self) -> str:
        return _sha256(self.config)

    @property
    def entries(self) -> list[BundleEntry]:
        return [BundleEntry(x.kind, x.name, x.api_version, x.digest, x.size) for x in self.layers]

    def blobs(self) -> dict[str, bytes]:
        """The config and layer blobs by digest, for pushing."""
        return {self.config_digest: self.config} | {layer.digest: layer.blob for layer in self.layers}


@dataclass(frozen=True)
class BundleObject:
    """A Tekton object read from a layer."""

    api_version: str  # in full ("tekton.dev/v1")
    kind: str  # as in the object ("Task")
    name: str
    text: str  # the layer content, JSON or YAML, as stored


def _sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def build_bundle(
    files: list[str],
    *,
    created: datetime | None = None,
    annotations: dict[str, str] | None = None,
    labels: dict[str, str] | None = None,
) -> Bundle:
    """A Tekton bundle of the Tekton objects in the files (YAML, multi-document, or JSON), laid out as tkn's.

    `created` defaults to 1970-01-01T00:00:00Z; a naive datetime is taken as UTC. Unlike tkn, the 20-object limit
    counts objects, not files, since that is what the resolver checks.
    """
    for pairs in (annotations or {}).items(), (labels or {}).items():
        if not all(isinstance(k, str) and isinstance(v, str) for k, v in pairs):
            raise BundleError("annotations and labels must map strings to strings")
    encoded: list[tuple[bytes, str]] = []
    for number, text in enumerate(files, 1):
        try:
            data = text.encode("utf-8")
        except UnicodeEncodeError:
            raise BundleError(f"file {number} is not valid Unicode text") from None
        if len(data) > MAX_FILE_BYTES:
            raise BundleError(f"file {number} is {len(data)} bytes, over the {MAX_FILE_BYTES}-byte limit")
        encoded.append((hashlib.sha256(data).digest(), text))
    layers: list[BundleLayer] = []
    for _, text in sorted(encoded, key=lambda pair: pair[0]):  # tkn's order: by the sha256 of each file
        layers += [_layer(*obj) for obj in _decode_objects(text)]
        if len(layers) > MAX_OBJECTS:
            raise BundleError(f"bundle contains more than the maximum {MAX_OBJECTS} allow objects")
    if not layers:
        raise BundleError("the files hold no Tekton object")
    moment = created or _EPOCH
    moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    config = _json(
        {
            "architecture": "",
            "created": moment.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "os": "",
            "rootfs": {"type": "layers", "diff_ids": [layer.diff_id for layer in layers]},
            "config": {"Labels": labels} if labels else {},
        }
    )
    manifest: dict[str, Any] = {
        "schemaVersion": 2,
        "mediaType": DOCKER_MANIFEST,
        "config": _descriptor(DOCKER_CONFIG, config),
        "layers": [
            _descriptor(
                DOCKER_LAYER,
                x.blob,
                {API_VERSION_ANNOTATION: x.api_version, KIND_ANNOTATION: x.kind, NAME_ANNOTATION: x.name},
            )
            for x in layers
        ],
    }
    if annotations:
        manifest["annotations"] = annotations
    return Bundle(_json(manifest), config, tuple(layers))


def _json(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


def _descriptor(media_type: str, blob: bytes, annotations: dict[str, str] | None = None) -> dict[str, Any]:
    descriptor: dict[str, Any] = {"mediaType": media_type, "size": len(blob), "digest": _sha256(blob)}
    if annotations:
        descriptor["annotations"] = annotations
    return descriptor


def _decode_objects(text: str) -> list[tuple[str, str, str, bytes]]:
    """(kind, version, name, JSON) of each object of a file; empty and null documents are skipped.

    tkn instead appends the previous object again for a document that holds only comments (its scratch
    RawExtension keeps the last value); that quirk is not reproduced.
    """
    try:
        values = _documents(text)
    except ManifestError as exc:
        raise BundleError(f"found a spec that isn't YAML or JSON parseable: {_excerpt(text)} ({exc})") from None
    return [_tekton_object(value, raw) for value, raw in values]


def _documents(text: str) -> list[tuple[Any, bytes]]:
    """Each non-null document of a YAML or JSON text, loaded safely, with its compact JSON."""
    # An alias repeats its anchor's value wherever it stands: a long string aliased many times is small in YAML and
    # huge in JSON, so with aliases the JSON is written a piece at a time, and refused once it is too long.
    aliased = "*" in text
    return [(value, _object_json(value, streamed=aliased)) for value in load_documents(text)]


def _object_json(value: Any, *, streamed: bool) -> bytes:
    """The compact JSON of a loaded document; ManifestError past MAX_FILE_BYTES or for what JSON cannot hold."""
    parts, size = [], 0
    try:
        for chunk in _OBJECT_JSON.iterencode(value) if streamed else [_OBJECT_JSON.encode(value)]:
            size += len(chunk)
            if size > MAX_FILE_BYTES:
                raise ManifestError(f"its JSON is over {MAX_FILE_BYTES} characters")
            parts.append(chunk)
    except (TypeError, ValueError) as exc:
        raise ManifestError(f"unsupported value: {exc}") from None
    return "".join(parts).encode()


def _timestamp(value: Any) -> str:
    if isinstance(value, date):  # an unquoted YAML timestamp: Kubernetes reads it as a string
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} has no JSON form")


_OBJECT_JSON = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False, default=_timestamp)


def _excerpt(text: str) -> str:
    return json.dumps(text if len(text) <= 200 else text[:200] + "…", ensure_ascii=False)


def _tekton_object(value: Any, raw: bytes) -> tuple[str, str, str, bytes]:
    def refuse(reason: str) -> BundleError:
        return BundleError(f"failed to parse string as a Tekton object: {_excerpt(raw.decode())} ({reason})")

    if not isinstance(value, dict):
        raise refuse("not a mapping")
    kind, api_version = value.get("kind"), value.get("apiVersion")
    if not isinstance(kind, str) or not isinstance(api_version, str) or not kind or not api_version:
        raise refuse("no kind or apiVersion")
    if kind not in API_VERSIONS or api_version not in API_VERSIONS[kind]:
        raise refuse(f"{api_version} {kind} is not a Tekton Task, Pipeline or StepAction taskhub serves")
    metadata = value.get("metadata") or {}
    name = metadata.get("name") if isinstance(metadata, dict) else None
    if not isinstance(metadata, dict) or not isinstance(name, str | None):
        raise refuse("metadata.name is not a string")
    if not name:
        raise BundleError(f"kubernetes resources should have a name: {_excerpt(raw.decode())}")
    if len(name) > 253 or not _OBJECT_NAME.fullmatch(name):
        raise BundleError(f"metadata.name {name!r} is not a valid Kubernetes object name (a DNS-1123 subdomain)")
    return kind, api_version.partition("/")[2], name, raw


def _layer(kind: str, version: str, name: str, payload: bytes) -> BundleLayer:
    tar = _tar(name, payload)
    blob = gzip.compress(tar, mtime=0)
    return BundleLayer(kind.lower(), name, version, _sha256(blob), len(blob), blob, _sha256(tar))


def _tar(name: str, data: bytes) -> bytes:
    """One file in a tar, with nothing of this machine in it (mtime 0, owner 0, mode 0600, as tkn writes it)."""
    member = tarfile.TarInfo(name)
    member.size, member.mode = len(data), 0o600
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as archive:
        archive.addfile(member, io.BytesIO(data))
    return out.getvalue()


def read_layer(blob: bytes, max_bytes: int) -> bytes:
    """What the resolver serves from a layer blob, gzip'd or not: the first tar entry's content, or the whole content
    when it is not a tar. BundleError past max_bytes uncompressed (inflated on demand: a gzip bomb stays small)."""
    if blob.startswith(_ZSTD_MAGIC):
        raise BundleError("the layer is zstd-compressed, which the Tekton bundle contract forbids")
    try:  # headers and padding may take a little more than the content
        with tarfile.open(fileobj=_Uncompressed(blob, max_bytes + 64 * 1024), mode="r|") as archive:
            member = archive.next()
            if member is not None:
                if member.size > max_bytes:
                    raise BundleError(f"the layer's object is {member.size} bytes, over the {max_bytes}-byte limit")
                file = archive.extractfile(member)  # None for links, directories and the like: no content
                return file.read() if file is not None else b""
    except tarfile.TarError:
        pass  # not a tar: the resolver serves the whole content
    return _Uncompressed(blob, max_bytes).read()


def read_object(content: bytes, entry: BundleEntry | None = None) -> BundleObject:
    """The Tekton object a layer holds, checked as build_bundle checks its input (kind, apiVersion, name); given
    the layer's entry, also that its annotations name this object."""
    try:
        text = decode_text(content)
        documents = _documents(text)
    except ManifestError as exc:
        raise BundleError(f"the layer holds no readable object: {exc}") from None
    if len(documents) != 1:
        raise BundleError(f"a layer must hold one object, this one holds {len(documents)}")
    ((value, _),) = documents
    kind, _, name, _ = _tekton_object(value, text.encode())
    if entry is not None and (entry.kind.lower(), entry.name) != (kind.lower(), name):
        raise BundleError(f"the layer annotated as {entry.kind} {entry.name!r} holds {kind} {name!r}")
    return BundleObject(value["apiVersion"], kind, name, text)


class _Uncompressed(io.RawIOBase):
    """The uncompressed bytes of a layer blob (gzip, possibly multi-member, or plain), inflated only as they are
    read; BundleError rather than more than `limit` bytes."""

    def __init__(self, blob: bytes, limit: int) -> None:
        self._input, self._limit, self._produced = blob, limit, 0
        self._inflater = zlib.decompressobj(31) if blob.startswith(_GZIP_MAGIC) else None

    def readable(self) -> bool:
        return True

    def read(self, size: int | None = -1) -> bytes:
        wanted = self._limit + 1 - self._produced if size is None or size < 0 else size
        out = self._inflate(wanted) if self._inflater else self._input[self._produced : self._produced + wanted]
        self._produced += len(out)
        if self._produced > self._limit:
            raise BundleError(f"the layer is over {self._limit} bytes uncompressed; refusing it")
        return out

    def _inflate(self, size: int) -> bytes:
        out = bytearray()
        try:
            while len(out) < size and self._inflater is not None:
                if self._inflater.eof:
                    self._input = self._inflater.unused_data
                    if not self._input:
                        break
                    if not self._input.startswith(_GZIP_MAGIC):
                        raise BundleError("the layer has data after its gzip stream")
                    self._inflater = zlib.decompressobj(31)
                out += self._inflater.decompress(self._input, size - len(out))
                self._input = self._inflater.unconsumed_tail
                if not self._inflater.eof and not self._input and len(out) < size:
                    raise BundleError("the layer's gzip stream is truncated")
        except zlib.error as exc:
            raise BundleError(f"the layer's gzip stream is corrupt: {exc}") from None
        return bytes(out)
