"""The OCI registry client: the `Registry` protocol the hub codes against, and `OciRegistry`, its operations on
the distribution HTTP API (manifests, blobs, uploads, listings) with the checks on what comes back.

The HTTP under it lives beside it: retries, deadline, redirects and auth in `catalog.registry_http`, over
urllib3's kept-alive connection pools in `catalog.registry_transport`. oras-py is not used (the README says
why): what it would add over these two modules is a few URL templates.
Cookies are ignored, as oras does, because some registries (Harbor) switch to CSRF checks when a client keeps them.
"""

from __future__ import annotations

import json
from typing import NamedTuple, Protocol
from urllib.parse import urlencode, urljoin, urlsplit, urlunsplit

from catalog.errors import (
    BlobDigestMismatch,
    BlobTooLarge,
    InvalidReference,
    RedirectRefused,
    RegistryAuthError,
    RegistryError,
    RegistryNotFound,
)
from catalog.references import (
    DIGEST,
    HOST,
    Reference,
    check_content,
    check_digest,
    digest_of,
    is_loopback,
    parse_reference,
)
from catalog.registry_http import BodyTooLarge, Call, RegistryHttp, Reply, next_page
from catalog.registry_transport import HttpTransport

MANIFEST_MEDIA_TYPES = (
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
)
MAX_MANIFEST_BYTES = 4 * 1024 * 1024
DEFAULT_MAX_BLOB_BYTES = 64 * 1024 * 1024
_MAX_PAGES = 1000
_ACCEPT = ", ".join(MANIFEST_MEDIA_TYPES)


class Manifest(NamedTuple):
    raw: bytes  # exactly the bytes served: the digest is computed over them
    media_type: str
    digest: str


class Registry(Protocol):
    """What taskhub needs from an OCI registry (the distribution API v2), and nothing more.

    Names: each `ref` is a full reference `host[:port]/repository[:tag][@digest]` (a `Reference` or its text),
    and each `repo` is a full repository name `host[:port]/repository` (`Reference.name`), written as in a
    Tekton bundle reference. An implementation serves one registry host and refuses names on other hosts.

    Integrity: nothing unchecked comes back. A manifest is at most MAX_MANIFEST_BYTES, its digest is the sha256
    of exactly the bytes served, and one asked for by digest must match that digest. A blob is checked against
    its descriptor's digest and size before it is returned, and refused when it is larger than `max_bytes`.

    Errors (all `catalog.errors.RegistryError`): InvalidReference and InsecureRegistry before anything is sent;
    RegistryUnreachable when the registry cannot be reached within the bounded retries and deadline;
    RegistryAuthError for 401/403, with the registry's message; RegistryNotFound for 404; RegistryServerError
    when 5xx answers persist; BlobDigestMismatch and BlobTooLarge for content that fails the checks.
    """

    def get_manifest(self, ref: Reference | str) -> Manifest:
        """The manifest `ref` names (OCI or Docker schema 2; image or index), as served, with its digest."""
        ...

    def head_manifest(self, ref: Reference | str) -> str | None:
        """The digest of the manifest `ref` names, or None when there is none; downloads no manifest body."""
        ...

    def get_blob(self, repo: str, digest: str, size: int | None, max_bytes: int = DEFAULT_MAX_BLOB_BYTES) -> bytes:
        """The blob `digest` of `repo`, verified against the descriptor's `digest` and `size` (None: unknown)."""
        ...

    def blob_exists(self, repo: str, digest: str) -> bool:
        """Whether `repo` holds the blob `digest` (a HEAD request)."""
        ...

    def push_blob(self, repo: str, data: bytes, *, check: bool = True) -> str:
        """Upload `data` to `repo`, unless `check` finds it already there (one HEAD); returns its sha256 digest."""
        ...

    def push_manifest(self, ref: Reference | str, raw: bytes, media_type: str) -> str:
        """Store `raw` under the tag (or digest) of `ref`; returns its sha256 digest."""
        ...

    def list_tags(self, repo: str) -> list[str]:
        """Every tag of `repo`, in the registry's order."""
        ...

    def list_repositories(self) -> list[str]:
        """The full names of every repository (GET /v2/_catalog); RegistryError if the registry refuses it."""
        ...


class OciRegistry:
    """`Registry` over the distribution HTTP API, for one registry.

    `registry` is `host[:port]` or `http(s)://host[:port]`. A bare host gets https, except loopback hosts and
    `insecure=True`, which get plain http; plain http to any other host is refused (InsecureRegistry) unless
    `insecure=True`. Credentials answer Basic challenges and are sent to Bearer token services. Each call makes
    at most `attempts` tries of each request on connection errors and 5xx/429 (sleeping `backoff`, doubling, in
    between) and gives up on it after `deadline` seconds, retries included; each try has `connect_timeout` and
    `read_timeout`. Requests go over `transport`'s kept-alive connections (a new `HttpTransport` by default);
    the client is safe to share between threads. Redirects, upload Locations and next pages may lead only to the
    registry itself or to `redirect_hosts` (host[:port] or *.domain); `public_only` refuses a registry that is not
    at a public address (one a client named, not the operator).
    """

    def __init__(
        self,
        registry: str,
        *,
        username: str | None = None,
        password: str | None = None,
        insecure: bool = False,
        tls_verify: bool | str = True,
        attempts: int = 3,
        backoff: float = 0.2,
        connect_timeout: float = 3.05,
        read_timeout: float = 30.0,
        deadline: float = 120.0,
        transport: HttpTransport | None = None,
        redirect_hosts: frozenset[str] = frozenset(),
        public_only: bool = False,
    ) -> None:
        scheme, self.host = "http" if insecure or is_loopback(registry) else "https", registry
        if "://" in registry:
            parts = urlsplit(registry)
            scheme, self.host = parts.scheme.lower(), parts.netloc
            if parts.path.strip("/") or parts.query or parts.fragment:
                self.host = ""
        if not HOST.fullmatch(self.host) or scheme not in ("http", "https"):
            raise InvalidReference(f"{registry!r} is not a registry address (host[:port] or http(s)://host[:port])")
        self.base_url, self.insecure = f"{scheme}://{self.host}", insecure
        self.http = RegistryHttp(
            self.base_url,
            insecure=insecure,
            username=username,
            password=password,
            attempts=attempts,
            backoff=backoff,
            timeouts=(connect_timeout, read_timeout),
            deadline=deadline,
            transport=transport or HttpTransport(tls_verify=tls_verify),
            redirect_hosts=redirect_hosts,
            public_only=public_only,
        )
        self.http.check_url(self.base_url)

    def __repr__(self) -> str:
        return f"OciRegistry({self.base_url!r})"

    # -- the Registry protocol ------------------------------------------------------------------------------------

    def get_manifest(self, ref: Reference | str) -> Manifest:
        r = self._ref(ref)
        what = f"get manifest {r}"
        url = self._url(r, "manifests", r.digest or r.tag)
        try:
            reply = self.http.request(Call("GET", url, _pull(r), what, MAX_MANIFEST_BYTES, {"Accept": _ACCEPT}))
        except BodyTooLarge:
            raise BlobTooLarge(f"{what}: larger than {MAX_MANIFEST_BYTES} bytes", limit=MAX_MANIFEST_BYTES) from None
        self.http.expect(reply, what, 200)
        if r.digest:
            check_content(reply.body, r.digest, None, what)
        media_type = (reply.headers.get("Content-Type") or "").split(";")[0].strip()
        if media_type not in MANIFEST_MEDIA_TYPES:
            media_type = _declared_media_type(reply.body) or media_type
        return Manifest(reply.body, media_type, r.digest or digest_of(reply.body))

    def head_manifest(self, ref: Reference | str) -> str | None:
        r = self._ref(ref)
        what = f"check manifest {r}"
        url = self._url(r, "manifests", r.digest or r.tag)
        reply = self.http.request(Call("HEAD", url, _pull(r), what, headers={"Accept": _ACCEPT}))
        if reply.status == 404:
            return None
        self.http.expect(reply, what, 200)
        served = reply.headers.get("Docker-Content-Digest") or ""
        if r.digest or DIGEST.fullmatch(served):
            return r.digest or served
        return self.get_manifest(r).digest  # the registry did not say: compute it from the body

    def get_blob(self, repo: str, digest: str, size: int | None, max_bytes: int = DEFAULT_MAX_BLOB_BYTES) -> bytes:
        r = self._repo(repo)
        check_digest(digest)
        what = f"get blob {digest} of {r}"
        if size is not None and size > max_bytes:
            raise BlobTooLarge(
                f"{what}: its descriptor says {size} bytes, over the {max_bytes} allowed", limit=max_bytes
            )
        limit = max_bytes if size is None else size
        try:
            reply = self.http.request(Call("GET", self._url(r, "blobs", digest), _pull(r), what, limit))
        except BodyTooLarge as exc:
            served = "more" if exc.declared is None else f"{exc.declared} bytes"
            if size is None:
                raise BlobTooLarge(f"{what}: {served}, over the {max_bytes} allowed", limit=max_bytes) from None
            message = f"{what}: the registry served {served}, its descriptor says {size}"
            raise BlobDigestMismatch(message, expected=digest, actual=None) from None
        self.http.expect(reply, what, 200)
        check_content(reply.body, digest, size, what)
        return reply.body

    def blob_exists(self, repo: str, digest: str) -> bool:
        r = self._repo(repo)
        check_digest(digest)
        what = f"check blob {digest} of {r}"
        reply = self.http.request(Call("HEAD", self._url(r, "blobs", digest), _pull(r), what))
        return self.http.expect(reply, what, 200, 404) == 200

    def push_blob(self, repo: str, data: bytes, *, check: bool = True) -> str:
        r = self._repo(repo)
        digest = digest_of(data)
        if check and self.blob_exists(r.name, digest):
            return digest
        what = f"push blob {digest} to {r}"
        reply = self.http.request(Call("POST", self._url(r, "blobs", "uploads/"), _push(r), what))
        self.http.expect(reply, what, 202)
        location = reply.headers.get("Location")
        if not location:
            raise RegistryError(f"{what}: the registry started an upload but sent no Location for it")
        upload = urlsplit(urljoin(reply.url, location))
        query = "&".join(filter(None, [upload.query, urlencode({"digest": digest})]))
        headers = {"Content-Type": "application/octet-stream"}
        url = urlunsplit(upload._replace(query=query))
        self._check_stored(self.http.request(Call("PUT", url, _push(r), what, 0, headers, data)), digest, what)
        return digest

    def push_manifest(self, ref: Reference | str, raw: bytes, media_type: str) -> str:
        r = self._ref(ref)
        what = f"push manifest {r}"
        if len(raw) > MAX_MANIFEST_BYTES:
            raise BlobTooLarge(f"{what}: larger than {MAX_MANIFEST_BYTES} bytes", limit=MAX_MANIFEST_BYTES)
        if r.digest:
            check_content(raw, r.digest, None, what)
        url = self._url(r, "manifests", r.tag or r.digest)
        reply = self.http.request(Call("PUT", url, _push(r), what, 0, {"Content-Type": media_type}, raw))
        return self._check_stored(reply, r.digest or digest_of(raw), what)

    def list_tags(self, repo: str) -> list[str]:
        r = self._repo(repo)
        return self._listing(Call("GET", self._url(r, "tags", "list"), _pull(r), f"list the tags of {r}"), "tags")

    def list_repositories(self) -> list[str]:
        call = Call(
            "GET", f"{self.base_url}/v2/_catalog", "registry:catalog:*", f"list the repositories of {self.host}"
        )
        try:
            names = self._listing(call, "repositories")
        except (RegistryAuthError, RegistryNotFound) as exc:
            raise type(exc)(
                f"{exc} (the registry refuses GET /v2/_catalog, so repositories cannot be listed)"
            ) from None
        return [f"{self.host}/{name}" for name in names]

    # -- names ----------------------------------------------------------------------------------------------------

    def _ref(self, ref: Reference | str) -> Reference:
        r = self._here(ref if isinstance(ref, Reference) else parse_reference(ref))
        if not (r.tag or r.digest):
            raise InvalidReference(f"{r} names no manifest: add a :tag or an @digest")
        return r

    def _repo(self, repo: str) -> Reference:
        r = parse_reference(repo)
        if r.tag or r.digest:
            raise InvalidReference(f"{repo!r} is a reference; a repository name (host/repository) was expected")
        return self._here(r)

    def _here(self, r: Reference) -> Reference:
        if r.registry.lower() != self.host.lower():
            raise InvalidReference(f"{r} is on registry {r.registry}; this client talks to {self.host}")
        return r

    def _url(self, r: Reference, *parts: str | None) -> str:
        return "/".join([f"{self.base_url}/v2/{r.repository}", *(p or "" for p in parts)])

    # -- answers --------------------------------------------------------------------------------------------------

    def _listing(self, call: Call, key: str) -> list[str]:
        """Every item of a paginated `{key: [...]}` listing, following `Link: <...>; rel="next"`."""
        items: list[str] = []
        seen: set[str] = set()
        call.limit = MAX_MANIFEST_BYTES
        while call.url:
            if call.url in seen or len(seen) >= _MAX_PAGES:
                raise RegistryError(f"{call.what}: the registry's pages do not end (at {call.url})")
            seen.add(call.url)
            try:
                reply = self.http.request(call)
            except BodyTooLarge:
                raise RegistryError(f"{call.what}: a page is larger than {MAX_MANIFEST_BYTES} bytes") from None
            self.http.expect(reply, call.what, 200)
            try:
                page = json.loads(reply.body).get(key) or []
            except (ValueError, AttributeError):
                page = None
            if not isinstance(page, list) or not all(isinstance(item, str) for item in page):
                raise RegistryError(f"{call.what}: the registry's answer is not a JSON {key} list")
            items.extend(page)
            call.url = next_page(reply)
            if call.url and urlsplit(call.url)[:2] != urlsplit(self.base_url)[:2]:
                raise RedirectRefused(
                    f"{call.what}: {self.host} pointed the next page at {urlsplit(call.url).netloc or call.url!r}; "
                    "a listing's pages stay on the registry"
                )
        return items

    def _check_stored(self, reply: Reply, digest: str, what: str) -> str:
        self.http.expect(reply, what, 201, 200, 204)
        stored = reply.headers.get("Docker-Content-Digest")
        if stored and stored != digest:
            raise RegistryError(f"{what}: the registry stored it as {stored}, not {digest}")
        return digest


def _pull(r: Reference) -> str:
    return f"repository:{r.repository}:pull"


def _push(r: Reference) -> str:
    return f"repository:{r.repository}:pull,push"


def _declared_media_type(raw: bytes) -> str | None:
    try:
        declared = json.loads(raw).get("mediaType")
    except (ValueError, AttributeError):
        return None
    return declared if isinstance(declared, str) else None
