"""Resolving Tekton references to resource bytes pinned by digest, with Tekton's own resolver parameters.

Two resolvers, as in Tekton (tektoncd/pipeline: pkg/resolution/resolver/bundle/ and pkg/resolution/resolver/hub/,
docs/bundle-resolver.md, docs/hub-resolver.md):

- ``bundles``: ``bundle``, ``name``, ``kind``, ``cache``. The layer holding the object is read from the
  registry, and the answer is pinned to the image manifest's digest. Only registries on the allowlist are
  contacted, and the check comes before any connection.
- ``hub``: ``catalog``, ``type``, ``kind``, ``name``, ``version``, where ``version`` may be a constraint. The
  greatest matching version of the index wins (prereleases skipped), pinned to the sha256 of its bytes.

Errors carry Tekton's messages where Tekton defines them.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from catalog import metrics
from catalog.blobcache import BlobCache
from catalog.bundle_manifests import Descriptor, check_bundle_manifest, find_layer, parse_manifest
from catalog.bundles import read_layer
from catalog.constraints import Constraint
from catalog.errors import BundleError, InvalidReference, InvalidRequest, NotFound, RegistryNotAllowed
from catalog.manifests import KINDS, MAX_FILE_BYTES, ManifestError, compose_documents, decode_text
from catalog.metadata import parse_resource
from catalog.queries import CatalogIndex, artifact_catalog
from catalog.references import Reference, parse_reference
from catalog.registry import Registry
from catalog.resolver_cache import BoundedCache, SingleFlight, TagCache
from catalog.versions import Version

BUNDLE_PARAMS = ("bundle", "name", "kind", "cache", "serviceAccount", "secret")
HUB_PARAMS = ("catalog", "type", "kind", "name", "version", "url")
CACHE_MODES = ("always", "never", "auto")
_ANNOTATION = "resolution.tekton.dev/"


def params_mapping(params: Any) -> Mapping[str, Any]:
    """Resolver params as a mapping: given as one, or in Tekton's own shape, a list of {name, value}."""
    if isinstance(params, list):
        pairs = {}
        for item in params:
            if not isinstance(item, dict) or not isinstance(item.get("name"), str) or "value" not in item:
                raise InvalidRequest("each param must be an object with a name and a value", reason="invalid-payload")
            pairs[item["name"]] = item["value"]
        return pairs
    if not isinstance(params, dict):
        raise InvalidRequest("params must be an object or a list of {name, value}", reason="invalid-payload")
    return params


def resolver_for(params: Any) -> str:
    """Which of taskhub's resolvers answers a `resolver: taskhub` reference (`taskhub resolver serve`): "bundles"
    when its params (Tekton's list of {name, value}, or a mapping) name a `bundle`, else "hub"."""
    if isinstance(params, Mapping):
        return "bundles" if "bundle" in params else "hub"
    names = {item.get("name") for item in params or [] if isinstance(item, dict)}
    return "bundles" if "bundle" in names else "hub"


@dataclass(frozen=True)
class Resolved:
    """A resolved resource: its bytes as stored, Tekton's annotations and refSource, and what it resolved to."""

    resolver: str
    kind: str
    name: str
    data: bytes
    uri: str
    digest: str  # sha256 hex: of the image manifest for bundles, of the data for the hub
    version: str | None
    annotations: dict[str, str] = field(default_factory=dict)
    entry_point: str | None = None
    bundle: str | None = None  # a hub version's published bundle, pinned

    @property
    def ref_source(self) -> dict[str, Any]:
        source: dict[str, Any] = {"uri": self.uri, "digest": {"sha256": self.digest}}
        if self.entry_point is not None:
            source["entryPoint"] = self.entry_point
        return source

    def to_json(self) -> dict[str, Any]:
        """The answer of the resolver API: data as text, Tekton's annotations and refSource, the version."""
        try:
            data = self.data.decode()
        except UnicodeDecodeError:
            raise BundleError(f"{self.kind} {self.name} is not UTF-8 text") from None
        body: dict[str, Any] = {
            "resolver": self.resolver,
            "kind": self.kind,
            "name": self.name,
            "version": self.version,
            "data": data,
            "annotations": self.annotations,
            "refSource": self.ref_source,
        }
        if self.bundle:
            body["bundle"] = self.bundle
        return body

    def with_annotations(self, extra: dict[str, str]) -> Resolved:
        return Resolved(**{**self.__dict__, "annotations": {**self.annotations, **extra}})


def _string_params(params: Mapping[str, Any], known: tuple[str, ...], resolver: str) -> dict[str, str]:
    if not params:
        raise InvalidRequest("no params", reason="invalid-params")
    values = {}
    for key, value in params.items():
        if key not in known:
            raise InvalidRequest(
                f"unknown parameter {key!r} for the {resolver} resolver (known: {', '.join(known)})",
                reason="invalid-params",
            )
        if not isinstance(value, str):
            raise InvalidRequest(f"parameter {key!r} must be a string", reason="invalid-params")
        values[key] = value
    return values


def bundle_reference(text: str) -> Reference:
    """A bundle reference as go-containerregistry reads it: Docker Hub when no registry is named, `latest` when
    no tag or digest is given."""
    first, slash, _ = text.partition("/")
    if not slash or ("." not in first and ":" not in first.partition("@")[0] and first != "localhost"):
        path = text if slash else f"library/{text}"
        text = f"index.docker.io/{path}"
    elif first == "docker.io":
        text = "index.docker.io/" + text.split("/", 1)[1]
    try:
        ref = parse_reference(text)
    except InvalidReference as exc:
        raise InvalidRequest(f"invalid bundle reference: {exc}", reason="invalid-params") from None
    if ref.tag is None and ref.digest is None:
        ref = Reference(ref.registry, ref.repository, "latest")
    return ref


class BundleResolver:
    """`resolver: bundles` over registry clients (one per host), with content, tag and flight caches."""

    def __init__(
        self,
        registries: Callable[[str], Registry],
        allowed: Callable[[str], bool],
        cache_dir: Path,
        *,
        tag_ttl: float = 60.0,
        memory_bytes: int = 64 * 1024 * 1024,
        blob_cache_bytes: int | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.registries, self.allowed, self.clock = registries, allowed, clock
        self.store = BlobCache(cache_dir / "blobs", blob_cache_bytes)  # manifests and layers, shared with syncs
        self.tags = TagCache(cache_dir / "resolve" / "tags", tag_ttl)
        self.answers: BoundedCache[Resolved] = BoundedCache(memory_bytes)
        self.flights = SingleFlight(cache_dir / "resolve" / "locks")

    def resolve(self, params: Mapping[str, Any]) -> Resolved:
        """Resolve Tekton bundle resolver params to the object's bytes, pinned to the image's digest."""
        values = _string_params(params, BUNDLE_PARAMS, "bundles")
        if not values.get("bundle"):
            raise InvalidRequest('parameter "bundle" required', reason="invalid-params")
        ref = bundle_reference(values["bundle"])
        name = values.get("name", "")
        if not name:
            raise InvalidRequest('parameter "name" required', reason="invalid-params")
        kind = values.get("kind") or "task"
        mode = values.get("cache", "")
        if mode not in (*CACHE_MODES, ""):
            raise InvalidRequest(
                f"invalid cache mode '{mode}', must be one of: [always never auto] (or empty for default)",
                reason="invalid-params",
            )
        if not self.allowed(ref.registry):
            raise RegistryNotAllowed(
                f"registry {ref.registry} is not on this hub's allowlist of registries to resolve from "
                "(TASKHUB_RESOLVE_REGISTRIES); no request was made to it"
            )
        caching = mode == "always" or (mode in ("auto", "") and "@sha256:" in values["bundle"])
        if ref.digest:
            answer, operation = self._pinned(ref, ref.digest, kind, name, values["bundle"])
        else:
            answer, operation = self._tagged(ref, kind, name, values["bundle"], fresh=mode == "never")
        if not caching:
            return answer
        return answer.with_annotations(
            {
                f"{_ANNOTATION}cached": "true",
                f"{_ANNOTATION}cache-timestamp": self.clock().strftime("%Y-%m-%dT%H:%M:%SZ"),
                f"{_ANNOTATION}cache-resolver-type": "bundles",
                f"{_ANNOTATION}cache-operation": operation,
            }
        )

    def _pinned(self, ref: Reference, digest: str, kind: str, name: str, bundle: str) -> tuple[Resolved, str]:
        """The object of the image `digest` names, and whether it was in memory ("retrieve") or not ("store")."""
        key = _answer_key(ref, digest, kind, name)
        answer = self.answers.get(key)
        metrics.cache_lookup("answers", answer)
        if answer is not None:
            return answer, "retrieve"
        answer = self.flights.run(key, lambda: self._fetch(ref, digest, kind, name, bundle))
        self.answers.put(key, answer, len(answer.data) + 512)
        return answer, "store"

    def _tagged(self, ref: Reference, kind: str, name: str, bundle: str, *, fresh: bool) -> tuple[Resolved, str]:
        """The object of the image a tag points at: the registry is asked at most once per TTL, unless fresh."""
        text = str(ref)
        digest = None if fresh else self.tags.remembered(text)
        if not fresh:
            metrics.cache_lookup("tags", digest)
        if digest is not None:
            return self._pinned(ref, digest, kind, name, bundle)

        def ask() -> tuple[str, Resolved | None]:
            # Under the tag's lock; another worker may have asked the registry while this one waited for it.
            known = None if fresh else self.tags.get(text)
            if known is not None:
                return known, None
            manifest = self.registries(ref.registry).get_manifest(ref)
            self.store.put(manifest.digest, manifest.raw)
            # Read while the tag's lock is held, and the tag recorded only then: whoever learns the digest from
            # the tag cache finds the content stored. The manifest is used as read, not read back from the store.
            answer = self._fetch(ref, manifest.digest, kind, name, bundle, manifest.raw)
            self.answers.put(_answer_key(ref, manifest.digest, kind, name), answer, len(answer.data) + 512)
            self.tags.put(text, manifest.digest)
            return manifest.digest, answer

        digest, answer = ask() if fresh else self.flights.run(f"tag {text}|{kind.lower()}|{name}", ask)
        if answer is None:  # no lock is held here: locks are never nested
            return self._pinned(ref, digest, kind, name, bundle)
        return answer, "store"

    def _manifest(self, ref: Reference, digest: str) -> tuple[bytes, str]:
        raw = self.store.get(digest)
        metrics.cache_lookup("blobs", raw)
        if raw is None:
            raw = self.registries(ref.registry).get_manifest(Reference(ref.registry, ref.repository, None, digest)).raw
            self.store.put(digest, raw)
        return raw, digest

    def _fetch(
        self, ref: Reference, digest: str, kind: str, name: str, bundle: str, raw: bytes | None = None
    ) -> Resolved:
        """Read the object from the image manifest `digest` (`raw`, when the caller has just read it)."""
        if raw is None:
            raw, digest = self._manifest(ref, digest)
        parsed = parse_manifest(raw, None)
        if isinstance(parsed, Descriptor):  # an index: its linux/amd64 image is the bundle, and what is pinned
            raw, digest = self._manifest(ref, parsed.digest)
            parsed = parse_manifest(raw, None)
            if isinstance(parsed, Descriptor):
                raise BundleError("the index points at another index")
        check_bundle_manifest(parsed, bundle)
        entry = find_layer(parsed, kind, name)
        blob = self.store.get(entry.digest, None)
        metrics.cache_lookup("blobs", blob)
        if blob is None:
            blob = self.registries(ref.registry).get_blob(ref.name, entry.digest, entry.size)
            self.store.put(entry.digest, blob)
        data = read_layer(blob, MAX_FILE_BYTES)
        try:  # what is served must pass the hardened loader: no alias bomb reaches a client or a pinned run
            compose_documents(decode_text(data))
        except ManifestError as exc:
            raise BundleError(f"the {entry.kind} {name} in {bundle} is refused: {exc}") from None
        return Resolved(
            resolver="bundles",
            kind=kind,
            name=name,
            data=data,
            uri=ref.name,
            digest=digest.split(":", 1)[1],
            version=_version_label(data, entry.kind),
            annotations={
                f"{_ANNOTATION}dev.tekton.image.kind": entry.kind,
                f"{_ANNOTATION}dev.tekton.image.name": entry.name,
                f"{_ANNOTATION}dev.tekton.image.apiVersion": entry.api_version,
            },
            entry_point=name,
        )


def _answer_key(ref: Reference, digest: str, kind: str, name: str) -> str:
    return f"{ref.name}@{digest}|{kind.lower()}|{name}"


def _version_label(data: bytes, kind: str) -> str | None:
    """The object's app.kubernetes.io/version, when it has a readable one."""
    canonical = KINDS.get(kind.lower())
    if canonical is None:
        return None
    try:
        return parse_resource(decode_text(data), kind=canonical).version.text
    except ManifestError:
        return None


class HubResolver:
    """`resolver: hub` against this hub's own index, for both API types."""

    def __init__(self, *, default_catalog: str = "tekton", artifact_default_catalog: str = "tekton") -> None:
        self.default_catalog, self.artifact_default_catalog = default_catalog, artifact_default_catalog

    def resolve(self, index: CatalogIndex, params: Mapping[str, Any], base_url: str) -> Resolved:
        """Resolve Tekton hub resolver params to the greatest matching version's bytes."""
        values = _string_params(params, HUB_PARAMS, "hub")
        hub_type = values.get("type") or "tekton"
        if hub_type not in ("artifact", "tekton"):
            raise InvalidRequest("type param must be artifact or tekton", reason="invalid-params")
        kind = values.get("kind") or "task"
        if kind not in KINDS:
            raise InvalidRequest("kind param must be one of: task, pipeline, stepaction", reason="invalid-params")
        if not values.get("name") or not values.get("version"):
            raise InvalidRequest("missing required hub resolver params: name, version", reason="invalid-params")
        if values.get("url"):
            raise InvalidRequest(
                "the url param names another hub; this hub resolves from its own index", reason="invalid-params"
            )
        name, wanted = values["name"], values["version"]
        catalog = self._catalog(index, hub_type, kind, values.get("catalog", ""))
        base = base_url.rstrip("/")
        list_url = (
            f"{base}/api/v1/packages/tekton-{kind}/{catalog}/{name}"
            if hub_type == "artifact"
            else f"{base}/v1/resource/{catalog}/{kind}/{name}"
        )
        try:
            rows = index.manifests(catalog, KINDS[kind], name)
        except NotFound:
            raise NotFound(f"requested resource '{list_url}' not found on hub") from None
        constraint = Constraint.parse(wanted)
        by_version = {Version.parse(row[0]): row for row in rows}
        best = constraint.best(by_version)
        if best is None:
            raise NotFound(f"no version found for constraint {wanted}")
        version, manifest, bundle_ref = by_version[best]
        data = manifest.encode()
        uri = f"{list_url}/{best.full}" if hub_type == "artifact" else f"{list_url}/{best.short}/yaml"
        return Resolved(
            resolver="hub",
            kind=kind,
            name=name,
            data=data,
            uri=uri,
            digest=hashlib.sha256(data).hexdigest(),
            version=version,
            bundle=bundle_ref,
        )

    def _catalog(self, index: CatalogIndex, hub_type: str, kind: str, given: str) -> str:
        if hub_type == "tekton":
            return given or self.default_catalog
        if not given:
            defaults = {"task": "tekton-catalog-tasks", "pipeline": "tekton-catalog-pipelines"}
            if kind not in defaults:
                raise InvalidRequest(f"failed to resolve catalog name with kind: {kind}", reason="invalid-params")
            given = defaults[kind]
        catalog, _ = artifact_catalog(index, given, KINDS[kind], self.artifact_default_catalog)
        return catalog
