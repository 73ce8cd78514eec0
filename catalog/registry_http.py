"""One registry's HTTP exchanges for `OciRegistry`: bounded retries, one deadline per call, redirects, Basic and
Bearer token auth, bodies read within a limit, and the registry's errors turned into `catalog.errors`.

Retries: at most `attempts` tries of a request on connection errors and on 5xx/429 answers, sleeping `backoff`,
doubling, in between (or what a 429/503's Retry-After asks, when it is longer), all within `deadline` seconds;
each try has `connect_timeout` and `read_timeout`, cut to what is left of the deadline. Auth: credentials answer
Basic challenges (and are then sent up front) and go to Bearer token services, whose tokens are kept per scope.
The Authorization header is only ever sent to the registry itself, never to a host a redirect or an upload
Location points at.

Where a registry's answer may send the client (`check_redirect`): a redirect, an upload Location or a listing's
next page leads to the registry itself or to a blob-storage host the operator allows (`redirect_hosts`), over
https unless the registry itself is plain http; and never to a loopback, private or link-local address unless
the registry itself is at one (token realms too). A body from any other host is never quoted in an error.
"""

from __future__ import annotations

import base64
import json
import logging
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from http import HTTPStatus
from typing import NamedTuple
from urllib.parse import urlencode, urljoin, urlsplit

from catalog.addresses import NotPublic, check_public_host, is_public_host
from catalog.errors import (
    InsecureRegistry,
    RedirectRefused,
    RegistryAuthError,
    RegistryError,
    RegistryNotAllowed,
    RegistryNotFound,
    RegistryServerError,
    RegistryUnreachable,
)
from catalog.references import is_loopback
from catalog.registry_transport import Answer, HttpTransport, TransportError

log = logging.getLogger(__name__)

ERROR_BODY_BYTES = 64 * 1024  # error bodies are read only for their message
_CHUNK = 64 * 1024
_RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_MAX_REDIRECTS = 5
_RETRY_AFTER = frozenset({429, 503})
_USER_AGENT = "taskhub"
_CHALLENGE_PARAM = re.compile(r'([A-Za-z_][\w-]*)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,"]+))')
_LINK = re.compile(r"<([^>]*)>([^<]*)")
_REL = re.compile(r'rel\s*=\s*"?([^";,]*)')


class Reply(NamedTuple):
    status: int
    headers: Mapping[str, str]  # case-insensitive get()
    body: bytes
    url: str  # where the answer came from, after redirects


class BodyTooLarge(Exception):
    """A 2xx body longer than the call's limit; `declared` is its Content-Length when it gave one."""

    def __init__(self, declared: int | None) -> None:
        self.declared = declared


@dataclass
class Call:
    method: str
    url: str
    scope: str  # the bearer-token scope the request needs
    what: str  # the start of every message: "get blob sha256:... of host/repo"
    limit: int = 0  # the most body bytes a 2xx answer may have
    headers: dict[str, str] = field(default_factory=dict)
    data: bytes | None = None
    give_up_at: float = 0.0  # time.monotonic() deadline of the whole call, retries included


class RegistryHttp:
    """Requests to one registry (`base_url`, e.g. https://ghcr.io) with its retries, deadline and credentials."""

    def __init__(
        self,
        base_url: str,
        *,
        insecure: bool,
        username: str | None,
        password: str | None,
        attempts: int,
        backoff: float,
        timeouts: tuple[float, float],
        deadline: float,
        transport: HttpTransport,
        redirect_hosts: frozenset[str] = frozenset(),
        public_only: bool = False,
    ) -> None:
        self.base_url, self.insecure = base_url, insecure
        self.host = urlsplit(base_url).netloc
        self.hostname = urlsplit(base_url).hostname or ""
        self.redirect_hosts = frozenset(h.lower() for h in redirect_hosts)
        # public_only: the registry itself must be at a public address (a client chose it); else whether it is,
        # which decides whether its redirects may lead to private addresses, is found out when first needed.
        self.public_only = public_only
        self._public: bool | None = True if public_only else None
        self.attempts, self.backoff, self.deadline, self.timeouts = max(1, attempts), backoff, deadline, timeouts
        self.transport = transport
        basic = base64.b64encode(f"{username}:{password or ''}".encode()).decode()
        self.basic = f"Basic {basic}" if username is not None else None
        self._basic_wanted = False  # the registry challenged with Basic: send it up front from now on
        self._tokens: dict[str, str] = {}  # bearer tokens by scope
        self._origin = urlsplit(base_url)[:2]

    def check_url(self, url: str) -> None:
        """RegistryError unless url is http(s); InsecureRegistry for plain http off loopback unless insecure."""
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https"):
            raise RegistryError(f"{self.host}: {url!r} is not an http(s) address")
        if parts.scheme == "http" and not self.insecure and not is_loopback(parts.netloc):
            raise InsecureRegistry(
                f"refusing plain HTTP to {parts.netloc}: only loopback hosts may use it unless insecure=True is given"
            )

    def check_redirect(self, url: str, what: str) -> None:
        """RedirectRefused unless the registry may send the client to url (see the module's docstring)."""
        parts = urlsplit(url)
        if parts.scheme in ("http", "https") and (parts.scheme, parts.netloc) == self._origin:
            return
        host = (parts.hostname or "").lower()
        if not host or not (_allowed(parts.netloc.lower(), self.redirect_hosts) or _allowed(host, self.redirect_hosts)):
            raise RedirectRefused(
                f"{what}: {self.host} sent the client to {parts.netloc or url!r}, which is neither this registry "
                "nor a blob host the hub allows (TASKHUB_REGISTRY_REDIRECT_HOSTS)"
            )
        if parts.scheme != "https" and not (parts.scheme == "http" and self._origin[0] == "http"):
            raise RedirectRefused(f"{what}: {self.host} sent the client to {parts.scheme}://{parts.netloc}: refused")
        self._check_address(host, what)

    def _check_address(self, host: str, what: str) -> None:
        """RedirectRefused if host is not at a public address while the registry is."""
        if self._public is None:
            self._public = is_public_host(self.hostname)
        if not self._public:
            return
        try:
            check_public_host(host)
        except NotPublic as exc:
            raise RedirectRefused(f"{what}: {self.host} sent the client to {exc}") from None

    def request(self, call: Call) -> Reply:
        """Up to `attempts` tries of `call` within the deadline; the body (at most `call.limit` bytes) is read."""
        self.check_url(call.url)
        if (urlsplit(call.url).scheme, urlsplit(call.url).netloc) != self._origin:
            self.check_redirect(call.url, call.what)  # an upload Location or a next page elsewhere
        elif self.public_only:
            try:
                check_public_host(self.hostname)
            except NotPublic as exc:
                raise RegistryNotAllowed(f"{call.what}: {exc}; no request was made to it") from None
        call.give_up_at = time.monotonic() + self.deadline
        attempt, failure = 0, ""
        error: type[RegistryError] = RegistryUnreachable
        while attempt < self.attempts:
            attempt += 1
            wait = 0.0
            try:
                reply = self._exchange(call)
            except TransportError as exc:
                if exc.refused:
                    raise RegistryNotAllowed(f"{call.what}: {exc.reason}") from None
                if exc.tls:
                    raise RegistryUnreachable(f"{call.what}: {exc.reason}") from None
                failure, error = exc.reason, RegistryUnreachable
            else:
                if reply.status not in _RETRY_STATUSES:
                    return reply
                failure, error = f"HTTP {reply.status}: {self.message(reply)}", RegistryServerError
                if reply.status in _RETRY_AFTER:
                    wait = retry_after(reply.headers.get("Retry-After"))
            delay = max(self.backoff * 2 ** (attempt - 1), wait)
            if attempt < self.attempts and call.give_up_at - time.monotonic() <= delay and wait:
                failure += f"; it asked to retry after {wait:g} s, past the {self.deadline:g} s deadline"
                break
            if attempt == self.attempts or call.give_up_at - time.monotonic() <= delay:
                break
            log.info("%s: %s; try %d of %d in %.2f s", call.what, failure, attempt + 1, self.attempts, delay)
            time.sleep(delay)
        raise error(f"{call.what}: {urlsplit(call.url).netloc}: {failure} (gave up after {attempt} attempts)")

    def message(self, reply: Reply) -> str:
        """What the reply says went wrong; the body of a host other than the registry is not quoted."""
        return message(reply, quote_body=urlsplit(reply.url)[:2] == self._origin)

    def expect(self, reply: Reply, what: str, *statuses: int) -> int:
        """The reply's status if it is one of `statuses`; otherwise the error, with the registry's own message."""
        if reply.status in statuses:
            return reply.status
        text = self.message(reply)
        if reply.status in (401, 403):
            hint = "" if self.basic else " (no credentials were given)"
            raise RegistryAuthError(f"{what}: {self.host} denied access (HTTP {reply.status}){hint}: {text}")
        if reply.status == 404:
            raise RegistryNotFound(f"{what}: not found on {self.host}: {text}")
        if reply.status >= 500:
            raise RegistryServerError(f"{what}: {self.host} failed (HTTP {reply.status}): {text}")
        raise RegistryError(f"{what}: {self.host} answered HTTP {reply.status}: {text}")

    # -- one try --------------------------------------------------------------------------------------------------

    def _exchange(self, call: Call) -> Reply:
        sent = self._authorization(call.scope)
        answer = self._send(call, call.url, sent)
        try:
            if answer.status == 401 and self._answer_challenge(answer, call, sent):
                _discard(answer)
                answer = self._send(call, call.url, self._authorization(call.scope))
            for _ in range(_MAX_REDIRECTS):
                location = answer.headers.get("Location")
                if answer.status not in _REDIRECTS or not location:
                    break
                if call.method not in ("GET", "HEAD") and answer.status not in (307, 308):
                    break  # the method would change: not a redirect a registry API call follows
                url = urljoin(answer.url, location)
                _discard(answer)
                self.check_url(url)
                self.check_redirect(url, call.what)
                answer = self._send(call, url, self._authorization(call.scope))
        except BaseException:
            answer.close()  # the connection is not left open by a refused token or redirect
            raise
        return self._read(answer, call, call.limit)

    def _send(self, call: Call, url: str, authorization: str | None) -> Answer:
        headers = {"User-Agent": _USER_AGENT, **call.headers}
        here = urlsplit(url)[:2] == self._origin
        if authorization and here:
            headers["Authorization"] = authorization  # never to another host (a redirect, an upload Location)
        public_only = self.public_only or (not here and bool(self._public))
        return self.transport.send(
            call.method, url, headers, call.data, timeouts=self._timeout(call), public_only=public_only
        )

    def _timeout(self, call: Call) -> tuple[float, float]:
        remaining = call.give_up_at - time.monotonic()
        if remaining <= 0:
            raise RegistryUnreachable(f"{call.what}: not done within the {self.deadline:g} s deadline")
        return min(self.timeouts[0], remaining), min(self.timeouts[1], remaining)

    def _read(self, answer: Answer, call: Call, limit: int) -> Reply:
        with answer:
            ok = 200 <= answer.status < 300 and call.method != "HEAD"
            cap = limit if ok else ERROR_BODY_BYTES
            declared = answer.headers.get("Content-Length", "")
            if call.method == "HEAD":
                answer.read()
                return Reply(answer.status, answer.headers, b"", answer.url)
            if ok and limit == 0:  # no body wanted (an upload's answer): whatever comes is read up to a point, dropped
                answer.read(ERROR_BODY_BYTES)
                return Reply(answer.status, answer.headers, b"", answer.url)
            if ok and declared.isdigit() and int(declared) > cap:
                raise BodyTooLarge(int(declared))  # refused before the body is downloaded
            if declared.isdigit() and int(declared) <= min(cap, _CHUNK):
                return Reply(answer.status, answer.headers, answer.read(), answer.url)  # the usual small body
            chunks, total = [], 0
            while chunk := answer.read(_CHUNK):
                total += len(chunk)
                if total > cap and ok:
                    raise BodyTooLarge(None)
                if total > cap:
                    break
                chunks.append(chunk)
                self._timeout(call)
            return Reply(answer.status, answer.headers, b"".join(chunks), answer.url)

    # -- auth -----------------------------------------------------------------------------------------------------

    def _authorization(self, scope: str) -> str | None:
        token = self._tokens.get(scope)
        if token is not None:
            return f"Bearer {token}"
        return self.basic if self._basic_wanted else None

    def _answer_challenge(self, answer: Answer, call: Call, sent: str | None) -> bool:
        """Act on a 401's WWW-Authenticate challenge; True when the request is worth sending again."""
        scheme, _, rest = (answer.headers.get("WWW-Authenticate") or "").strip().partition(" ")
        params = {m[1].lower(): re.sub(r"\\(.)", r"\1", m[2]) or m[3] for m in _CHALLENGE_PARAM.finditer(rest)}
        if scheme.lower() == "basic" and self.basic and sent != self.basic:
            self._basic_wanted = True
            return True
        if scheme.lower() == "bearer" and params.get("realm"):
            self._tokens.pop(call.scope, None)
            self._tokens[call.scope] = self._fetch_token(params, call)
            return True
        return False  # no credentials, these were just refused, or a scheme we do not speak

    def _fetch_token(self, challenge: dict[str, str], call: Call) -> str:
        """The standard token flow: GET realm?service=&scope= (with Basic credentials if any) -> {"token": ...}."""
        realm = challenge["realm"]
        self.check_url(realm)  # the credentials go there: no plain http to the outside
        realm_parts = urlsplit(realm)
        if realm_parts[:2] != self._origin:
            self._check_address((realm_parts.hostname or "").lower(), call.what)
        query = urlencode({"service": challenge.get("service", ""), "scope": challenge.get("scope") or call.scope})
        headers = {"Accept": "application/json", "User-Agent": _USER_AGENT}
        if self.basic:
            headers["Authorization"] = self.basic
        url = f"{realm}{'&' if '?' in realm else '?'}{query}"
        public_only = self.public_only or (realm_parts[:2] != self._origin and bool(self._public))
        try:
            answer = self.transport.send("GET", url, headers, timeouts=self._timeout(call), public_only=public_only)
        except TransportError as exc:
            raise RegistryAuthError(f"{call.what}: the token service {realm_parts.netloc}: {exc.reason}") from None
        who = f"{call.what}: the token service {urlsplit(realm).netloc}"
        try:
            reply = self._read(answer, Call("GET", url, "", who, give_up_at=call.give_up_at), ERROR_BODY_BYTES)
            body = json.loads(reply.body) if reply.status == 200 else {}
            token = body.get("token") or body.get("access_token")
        except (BodyTooLarge, ValueError, AttributeError):
            raise RegistryAuthError(f"{who} answered with no token") from None
        if reply.status != 200:
            refused = "the credentials" if self.basic else "anonymous access"
            raise RegistryAuthError(f"{who} refused {refused} (HTTP {reply.status}): {self.message(reply)}")
        if not isinstance(token, str) or not token:
            raise RegistryAuthError(f"{who} answered with no token")
        return token


def _discard(answer: Answer) -> None:
    """Read a small unwanted body so the connection can be kept; a large one costs the connection instead."""
    answer.read(ERROR_BODY_BYTES)
    answer.close()


def _allowed(host: str, patterns: frozenset[str]) -> bool:
    """Whether host matches one of the patterns: a host[:port], or *.domain for any name under domain."""
    return host in patterns or any(p.startswith("*.") and host.endswith(p[1:]) for p in patterns)


def retry_after(value: str | None) -> float:
    """The seconds a Retry-After header asks to wait (a number or an HTTP date); 0 when absent or unreadable."""
    if not value:
        return 0.0
    if value.strip().isdigit():
        return float(value.strip())
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return 0.0
    if when.tzinfo is None:
        return 0.0
    return max(0.0, when.timestamp() - time.time())


def next_page(reply: Reply) -> str:
    """The URL of the next page of a listing (`Link: <...>; rel="next"`), or "" on the last page."""
    for target, params in _LINK.findall(reply.headers.get("Link") or ""):
        rel = _REL.search(params)
        if rel and "next" in rel[1].split():
            return urljoin(reply.url, target)
    return ""


def message(reply: Reply, *, quote_body: bool = True) -> str:
    """The registry's error codes and messages ({"errors": [...]}), else the start of its body (if quote_body)."""
    text = ""
    try:
        errors = json.loads(reply.body)["errors"]
        if quote_body:
            return "; ".join(f"{e.get('code', '?')}: {e.get('message', '')}" for e in errors) or "no details"
    except (ValueError, KeyError, TypeError, AttributeError):
        if quote_body:
            text = " ".join(reply.body.decode("utf-8", "replace").split())[:300]
    if text:
        return text
    try:
        return HTTPStatus(reply.status).phrase
    except ValueError:
        return f"HTTP {reply.status}"
