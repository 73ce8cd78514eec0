"""The OCI registry client: the `Registry` protocol the hub codes against, image references, and `OciRegistry`.

`OciRegistry` speaks the distribution HTTP API with `requests` directly. oras-py (a dependency for building
bundles) is not used here, because every part of it a client needs would have to be worked around: its
`do_request` retries any exception five times with sleeps of 2+3^n s (131 s before "connection refused" is
reported) and passes no timeout at all (a stalled registry hangs the caller forever); its auth backend must be
chosen up front (the token backend cannot log in to a Basic-only registry, the basic one cannot do Bearer, and
with no credentials it fails with AttributeError); it reads ~/.docker/config.json, may run docker-credential
helpers, and `login` writes that file; its errors are bare ValueErrors whose registry message is only logged; its
blob download is neither size-limited nor verified; `upload_manifest` forces the OCI content type. What is left
(URL templates) is a few f-strings. Cookies are ignored, as oras does, because some registries (Harbor) switch to
CSRF checks when a client keeps them.
"""

from __future__ import annotations

import base64
import json
import logging
import re
import time
from dataclasses import dataclass, field
from http import HTTPStatus
from http.cookiejar import DefaultCookiePolicy
from typing import NamedTuple, Protocol
from urllib.parse import urlencode, urljoin, urlsplit, urlunsplit

import requests
from requests.structures import CaseInsensitiveDict
from requests.utils import parse_header_links
from urllib3.exceptions import NameResolutionError

from catalog.errors import (
    BlobDigestMismatch,
    BlobTooLarge,
    InsecureRegistry,
    InvalidReference,
    RegistryAuthError,
    RegistryError,
    RegistryNotFound,
    RegistryServerError,
    RegistryUnreachable,
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

log = logging.getLogger(__name__)

MANIFEST_MEDIA_TYPES = (
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
)
MAX_MANIFEST_BYTES = 4 * 1024 * 1024
DEFAULT_MAX_BLOB_BYTES = 64 * 1024 * 1024
_ERROR_BODY_BYTES = 64 * 1024  # error bodies are read only for their message
_MAX_PAGES = 1000
_RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
_ACCEPT = ", ".join(MANIFEST_MEDIA_TYPES)

_CHALLENGE_PARAM = re.compile(r'([A-Za-z_][\w-]*)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,"]+))')


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


class _Reply(NamedTuple):
    status: int
    headers: CaseInsensitiveDict[str]
    body: bytes
    url: str


class _Overflow(Exception):
    """A 2xx body longer than the call's limit; `declared` is its Content-Length when it gave one."""

    def __init__(self, declared: int | None) -> None:
        self.declared = declared


@dataclass
class _Call:
    method: str
    url: str
    scope: str  # the bearer-token scope the request needs
    what: str  # the start of every message: "get blob sha256:... of host/repo"
    limit: int = 0  # the most body bytes a 2xx answer may have
    headers: dict[str, str] = field(default_factory=dict)
    data: bytes | None = None
    give_up_at: float = 0.0  # time.monotonic() deadline of the whole call, retries included


class OciRegistry:
    """`Registry` over the distribution HTTP API, for one registry.

    `registry` is `host[:port]` or `http(s)://host[:port]`. A bare host gets https, except loopback hosts and
    `insecure=True`, which get plain http; plain http to any other host is refused (InsecureRegistry) unless
    `insecure=True`. Credentials answer Basic challenges and are sent to Bearer token services. Each call makes
    at most `attempts` tries of each request on connection errors and 5xx/429 (sleeping `backoff`, doubling, in
    between) and gives up on it after `deadline` seconds, retries included; each try has `connect_timeout` and
    `read_timeout`.
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
        session: requests.Session | None = None,
    ) -> None:
        scheme, self.host = "http" if insecure or is_loopback(registry) else "https", registry
        if "://" in registry:
            parts = urlsplit(registry)
            scheme, self.host = parts.scheme.lower(), parts.netloc
            if parts.path.strip("/") or parts.query or parts.fragment:
                self.host = ""
        if not HOST.fullmatch(self.host) or scheme not in ("http", "https"):
            raise InvalidReference(f"{registry!r} is not a registry address (host[:port] or http(s)://host[:port])")
        self.base_url, self.insecure, self.tls_verify = f"{scheme}://{self.host}", insecure, tls_verify
        self._check_url(self.base_url)
        self.attempts, self.backoff, self.deadline = max(1, attempts), backoff, deadline
        self.timeouts = (connect_timeout, read_timeout)
        basic = base64.b64encode(f"{username}:{password or ''}".encode()).decode()
        self._basic = f"Basic {basic}" if username is not None else None
        self._basic_wanted = False  # the registry challenged with Basic: send it up front from now on
        self._tokens: dict[str, str] = {}  # bearer tokens by scope
        if session is None:
            session = requests.Session()
            session.cookies.set_policy(DefaultCookiePolicy(allowed_domains=[]))
        # Proxy settings are read once here rather than from the environment on every request (a measurable
        # share of a sync's time); trust_env off also keeps ~/.netrc credentials away from registries.
        session.trust_env = False
        self._proxies = requests.utils.get_environ_proxies(self.base_url)
        self._session = session

    def __repr__(self) -> str:
        return f"OciRegistry({self.base_url!r})"

    # -- the Registry protocol ------------------------------------------------------------------------------------

    def get_manifest(self, ref: Reference | str) -> Manifest:
        r = self._ref(ref)
        what = f"get manifest {r}"
        url = self._url(r, "manifests", r.digest or r.tag)
        try:
            reply = self._request(_Call("GET", url, _pull(r), what, MAX_MANIFEST_BYTES, {"Accept": _ACCEPT}))
        except _Overflow:
            raise BlobTooLarge(f"{what}: larger than {MAX_MANIFEST_BYTES} bytes", limit=MAX_MANIFEST_BYTES) from None
        self._expect(reply, what, 200)
        if r.digest:
            check_content(reply.body, r.digest, None, what)
        media_type = reply.headers.get("Content-Type", "").split(";")[0].strip()
        if media_type not in MANIFEST_MEDIA_TYPES:
            media_type = _declared_media_type(reply.body) or media_type
        return Manifest(reply.body, media_type, r.digest or digest_of(reply.body))

    def head_manifest(self, ref: Reference | str) -> str | None:
        r = self._ref(ref)
        what = f"check manifest {r}"
        url = self._url(r, "manifests", r.digest or r.tag)
        reply = self._request(_Call("HEAD", url, _pull(r), what, headers={"Accept": _ACCEPT}))
        if reply.status == 404:
            return None
        self._expect(reply, what, 200)
        served = reply.headers.get("Docker-Content-Digest", "")
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
            reply = self._request(_Call("GET", self._url(r, "blobs", digest), _pull(r), what, limit))
        except _Overflow as exc:
            served = "more" if exc.declared is None else f"{exc.declared} bytes"
            if size is None:
                raise BlobTooLarge(f"{what}: {served}, over the {max_bytes} allowed", limit=max_bytes) from None
            message = f"{what}: the registry served {served}, its descriptor says {size}"
            raise BlobDigestMismatch(message, expected=digest, actual=None) from None
        self._expect(reply, what, 200)
        check_content(reply.body, digest, size, what)
        return reply.body

    def blob_exists(self, repo: str, digest: str) -> bool:
        r = self._repo(repo)
        check_digest(digest)
        what = f"check blob {digest} of {r}"
        reply = self._request(_Call("HEAD", self._url(r, "blobs", digest), _pull(r), what))
        return self._expect(reply, what, 200, 404) == 200

    def push_blob(self, repo: str, data: bytes, *, check: bool = True) -> str:
        r = self._repo(repo)
        digest = digest_of(data)
        if check and self.blob_exists(r.name, digest):
            return digest
        what = f"push blob {digest} to {r}"
        reply = self._request(_Call("POST", self._url(r, "blobs", "uploads/"), _push(r), what))
        self._expect(reply, what, 202)
        location = reply.headers.get("Location")
        if not location:
            raise RegistryError(f"{what}: the registry started an upload but sent no Location for it")
        upload = urlsplit(urljoin(reply.url, location))
        query = "&".join(filter(None, [upload.query, urlencode({"digest": digest})]))
        headers = {"Content-Type": "application/octet-stream"}
        url = urlunsplit(upload._replace(query=query))
        self._check_stored(self._request(_Call("PUT", url, _push(r), what, 0, headers, data)), digest, what)
        return digest

    def push_manifest(self, ref: Reference | str, raw: bytes, media_type: str) -> str:
        r = self._ref(ref)
        what = f"push manifest {r}"
        if len(raw) > MAX_MANIFEST_BYTES:
            raise BlobTooLarge(f"{what}: larger than {MAX_MANIFEST_BYTES} bytes", limit=MAX_MANIFEST_BYTES)
        if r.digest:
            check_content(raw, r.digest, None, what)
        url = self._url(r, "manifests", r.tag or r.digest)
        reply = self._request(_Call("PUT", url, _push(r), what, 0, {"Content-Type": media_type}, raw))
        return self._check_stored(reply, r.digest or digest_of(raw), what)

    def list_tags(self, repo: str) -> list[str]:
        r = self._repo(repo)
        return self._listing(_Call("GET", self._url(r, "tags", "list"), _pull(r), f"list the tags of {r}"), "tags")

    def list_repositories(self) -> list[str]:
        call = _Call(
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

    def _check_url(self, url: str) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https"):
            raise RegistryError(f"{self.host}: {url!r} is not an http(s) address")
        if parts.scheme == "http" and not self.insecure and not is_loopback(parts.netloc):
            raise InsecureRegistry(
                f"refusing plain HTTP to {parts.netloc}: only loopback hosts may use it unless insecure=True is given"
            )

    # -- HTTP -----------------------------------------------------------------------------------------------------

    def _request(self, call: _Call) -> _Reply:
        """Up to `attempts` tries of `call` within the deadline; the body (at most `call.limit` bytes) is read."""
        self._check_url(call.url)
        call.give_up_at = time.monotonic() + self.deadline
        attempt, failure = 0, ""
        error: type[RegistryError] = RegistryUnreachable
        while attempt < self.attempts:
            attempt += 1
            try:
                reply = self._exchange(call)
            except requests.exceptions.SSLError as exc:
                raise RegistryUnreachable(f"{call.what}: TLS with {urlsplit(call.url).netloc} failed: {exc}") from None
            except (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError) as exc:
                failure, error = _describe(exc), RegistryUnreachable
            else:
                if reply.status not in _RETRY_STATUSES:
                    return reply
                failure, error = f"HTTP {reply.status}: {_message(reply)}", RegistryServerError
            delay = self.backoff * 2 ** (attempt - 1)
            if attempt == self.attempts or call.give_up_at - time.monotonic() <= delay:
                break
            log.info("%s: %s; try %d of %d in %.2f s", call.what, failure, attempt + 1, self.attempts, delay)
            time.sleep(delay)
        raise error(f"{call.what}: {urlsplit(call.url).netloc}: {failure} (gave up after {attempt} attempts)")

    def _exchange(self, call: _Call) -> _Reply:
        sent = self._authorization(call.scope)
        response = self._send(call, sent)
        if response.status_code == 401 and self._answer(response, call, sent):
            response.close()
            response = self._send(call, self._authorization(call.scope))
        return self._read(response, call, call.limit)

    def _send(self, call: _Call, authorization: str | None) -> requests.Response:
        headers = dict(call.headers)
        if authorization and urlsplit(call.url)[:2] == urlsplit(self.base_url)[:2]:
            headers["Authorization"] = authorization  # never to another host (an upload Location elsewhere)
        return self._session.request(
            call.method,
            call.url,
            headers=headers,
            data=call.data,
            stream=True,
            timeout=self._timeout(call),
            verify=self.tls_verify,
            proxies=self._proxies,
        )

    def _timeout(self, call: _Call) -> tuple[float, float]:
        remaining = call.give_up_at - time.monotonic()
        if remaining <= 0:
            raise RegistryUnreachable(f"{call.what}: not done within the {self.deadline:g} s deadline")
        return min(self.timeouts[0], remaining), min(self.timeouts[1], remaining)

    def _read(self, response: requests.Response, call: _Call, limit: int) -> _Reply:
        with response:
            ok = 200 <= response.status_code < 300 and response.request.method != "HEAD"
            cap = limit if ok else _ERROR_BODY_BYTES  # error bodies are read only for their message
            declared = response.headers.get("Content-Length", "")
            if ok and declared.isdigit() and int(declared) > cap:
                raise _Overflow(int(declared))  # refused before the body is downloaded
            chunks, total = [], 0
            for chunk in response.iter_content(64 * 1024):
                total += len(chunk)
                if total > cap and ok:
                    raise _Overflow(None)
                if total > cap:
                    break
                chunks.append(chunk)
                self._timeout(call)
            return _Reply(response.status_code, response.headers, b"".join(chunks), response.url)

    def _authorization(self, scope: str) -> str | None:
        if scope in self._tokens:
            return f"Bearer {self._tokens[scope]}"
        return self._basic if self._basic_wanted else None

    def _answer(self, response: requests.Response, call: _Call, sent: str | None) -> bool:
        """Act on a 401's WWW-Authenticate challenge; True when the request is worth sending again."""
        scheme, _, rest = response.headers.get("WWW-Authenticate", "").strip().partition(" ")
        params = {m[1].lower(): re.sub(r"\\(.)", r"\1", m[2]) or m[3] for m in _CHALLENGE_PARAM.finditer(rest)}
        if scheme.lower() == "basic" and self._basic and sent != self._basic:
            self._basic_wanted = True
            return True
        if scheme.lower() == "bearer" and params.get("realm"):
            self._tokens.pop(call.scope, None)
            self._tokens[call.scope] = self._fetch_token(params, call)
            return True
        return False  # no credentials, these were just refused, or a scheme we do not speak

    def _fetch_token(self, challenge: dict[str, str], call: _Call) -> str:
        """The standard token flow: GET realm?service=&scope= (with Basic credentials if any) -> {"token": ...}."""
        realm = challenge["realm"]
        self._check_url(realm)  # the credentials go there: no plain http to the outside
        query = urlencode({"service": challenge.get("service", ""), "scope": challenge.get("scope") or call.scope})
        headers = {"Accept": "application/json", **({"Authorization": self._basic} if self._basic else {})}
        response = self._session.get(
            f"{realm}{'&' if '?' in realm else '?'}{query}",
            headers=headers,
            stream=True,
            timeout=self._timeout(call),
            verify=self.tls_verify,
            proxies=self._proxies,
        )
        who = f"{call.what}: the token service {urlsplit(realm).netloc}"
        try:
            reply = self._read(response, call, _ERROR_BODY_BYTES)
            answer = json.loads(reply.body) if reply.status == 200 else {}
            token = answer.get("token") or answer.get("access_token")
        except (_Overflow, ValueError, AttributeError):
            raise RegistryAuthError(f"{who} answered with no token") from None
        if reply.status != 200:
            refused = "the credentials" if self._basic else "anonymous access"
            raise RegistryAuthError(f"{who} refused {refused} (HTTP {reply.status}): {_message(reply)}")
        if not isinstance(token, str) or not token:
            raise RegistryAuthError(f"{who} answered with no token")
        return token

    # -- answers --------------------------------------------------------------------------------------------------

    def _listing(self, call: _Call, key: str) -> list[str]:
        """Every item of a paginated `{key: [...]}` listing, following `Link: <...>; rel="next"`."""
        items: list[str] = []
        seen: set[str] = set()
        call.limit = MAX_MANIFEST_BYTES
        while call.url:
            if call.url in seen or len(seen) >= _MAX_PAGES:
                raise RegistryError(f"{call.what}: the registry's pages do not end (at {call.url})")
            seen.add(call.url)
            try:
                reply = self._request(call)
            except _Overflow:
                raise RegistryError(f"{call.what}: a page is larger than {MAX_MANIFEST_BYTES} bytes") from None
            self._expect(reply, call.what, 200)
            try:
                page = json.loads(reply.body).get(key) or []
            except (ValueError, AttributeError):
                page = None
            if not isinstance(page, list) or not all(isinstance(item, str) for item in page):
                raise RegistryError(f"{call.what}: the registry's answer is not a JSON {key} list")
            items.extend(page)
            links = parse_header_links(reply.headers.get("Link", ""))
            call.url = next((urljoin(reply.url, link["url"]) for link in links if link.get("rel") == "next"), "")
        return items

    def _check_stored(self, reply: _Reply, digest: str, what: str) -> str:
        self._expect(reply, what, 201, 200, 204)
        stored = reply.headers.get("Docker-Content-Digest")
        if stored and stored != digest:
            raise RegistryError(f"{what}: the registry stored it as {stored}, not {digest}")
        return digest

    def _expect(self, reply: _Reply, what: str, *statuses: int) -> int:
        """The reply's status if it is one of `statuses`; otherwise the error, with the registry's own message."""
        if reply.status in statuses:
            return reply.status
        message = _message(reply)
        if reply.status in (401, 403):
            hint = "" if self._basic else " (no credentials were given)"
            raise RegistryAuthError(f"{what}: {self.host} denied access (HTTP {reply.status}){hint}: {message}")
        if reply.status == 404:
            raise RegistryNotFound(f"{what}: not found on {self.host}: {message}")
        if reply.status >= 500:
            raise RegistryServerError(f"{what}: {self.host} failed (HTTP {reply.status}): {message}")
        raise RegistryError(f"{what}: {self.host} answered HTTP {reply.status}: {message}")


def _pull(r: Reference) -> str:
    return f"repository:{r.repository}:pull"


def _push(r: Reference) -> str:
    return f"repository:{r.repository}:pull,push"


def _message(reply: _Reply) -> str:
    """The registry's error codes and messages ({"errors": [...]}), else the start of its body."""
    try:
        errors = json.loads(reply.body)["errors"]
        return "; ".join(f"{e.get('code', '?')}: {e.get('message', '')}" for e in errors) or "no details"
    except (ValueError, KeyError, TypeError, AttributeError):
        text = " ".join(reply.body.decode("utf-8", "replace").split())[:300]
    if text:
        return text
    try:
        return HTTPStatus(reply.status).phrase
    except ValueError:
        return f"HTTP {reply.status}"


def _declared_media_type(raw: bytes) -> str | None:
    try:
        declared = json.loads(raw).get("mediaType")
    except (ValueError, AttributeError):
        return None
    return declared if isinstance(declared, str) else None


def _describe(exc: Exception) -> str:
    """A short cause of a connection failure: refused, unknown host, timed out."""
    reason = getattr(exc.args[0], "reason", None) if exc.args else None
    if isinstance(reason, NameResolutionError):
        return "the host name does not resolve"
    if "Connection refused" in str(reason or exc):
        return "connection refused"
    if isinstance(exc, requests.Timeout) or "timed out" in str(exc):
        return "timed out"
    return str(reason or exc)
