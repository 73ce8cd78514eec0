"""One registry's HTTP exchanges for `OciRegistry`: bounded retries, one deadline per call, redirects, Basic and
Bearer token auth, bodies read within a limit, and the registry's errors turned into `catalog.errors`.

Retries: at most `attempts` tries of a request on connection errors and on 5xx/429 answers, sleeping `backoff`,
doubling, in between, all within `deadline` seconds; each try has `connect_timeout` and `read_timeout`, cut to
what is left of the deadline. Auth: credentials answer Basic challenges (and are then sent up front) and go to
Bearer token services, whose tokens are kept per scope. The Authorization header is only ever sent to the
registry itself, never to a host a redirect or an upload Location points at.
"""

from __future__ import annotations

import base64
import json
import logging
import re
import time
from dataclasses import dataclass, field
from email.message import Message
from http import HTTPStatus
from typing import NamedTuple
from urllib.parse import urlencode, urljoin, urlsplit

from catalog.errors import (
    InsecureRegistry,
    RegistryAuthError,
    RegistryError,
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
_USER_AGENT = "taskhub"
_CHALLENGE_PARAM = re.compile(r'([A-Za-z_][\w-]*)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,"]+))')
_LINK = re.compile(r"<([^>]*)>([^<]*)")
_REL = re.compile(r'rel\s*=\s*"?([^";,]*)')


class Reply(NamedTuple):
    status: int
    headers: Message  # case-insensitive get()
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
    ) -> None:
        self.base_url, self.insecure = base_url, insecure
        self.host = urlsplit(base_url).netloc
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

    def request(self, call: Call) -> Reply:
        """Up to `attempts` tries of `call` within the deadline; the body (at most `call.limit` bytes) is read."""
        self.check_url(call.url)
        call.give_up_at = time.monotonic() + self.deadline
        attempt, failure = 0, ""
        error: type[RegistryError] = RegistryUnreachable
        while attempt < self.attempts:
            attempt += 1
            try:
                reply = self._exchange(call)
            except TransportError as exc:
                if exc.tls:
                    raise RegistryUnreachable(f"{call.what}: {exc.reason}") from None
                failure, error = exc.reason, RegistryUnreachable
            else:
                if reply.status not in _RETRY_STATUSES:
                    return reply
                failure, error = f"HTTP {reply.status}: {message(reply)}", RegistryServerError
            delay = self.backoff * 2 ** (attempt - 1)
            if attempt == self.attempts or call.give_up_at - time.monotonic() <= delay:
                break
            log.info("%s: %s; try %d of %d in %.2f s", call.what, failure, attempt + 1, self.attempts, delay)
            time.sleep(delay)
        raise error(f"{call.what}: {urlsplit(call.url).netloc}: {failure} (gave up after {attempt} attempts)")

    def expect(self, reply: Reply, what: str, *statuses: int) -> int:
        """The reply's status if it is one of `statuses`; otherwise the error, with the registry's own message."""
        if reply.status in statuses:
            return reply.status
        text = message(reply)
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
                answer = self._send(call, url, self._authorization(call.scope))
        except BaseException:
            answer.close()  # the connection is not left open by a refused token or redirect
            raise
        return self._read(answer, call, call.limit)

    def _send(self, call: Call, url: str, authorization: str | None) -> Answer:
        headers = {"User-Agent": _USER_AGENT, **call.headers}
        if authorization and urlsplit(url)[:2] == self._origin:
            headers["Authorization"] = authorization  # never to another host (a redirect, an upload Location)
        return self.transport.send(call.method, url, headers, call.data, timeouts=self._timeout(call))

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
        query = urlencode({"service": challenge.get("service", ""), "scope": challenge.get("scope") or call.scope})
        headers = {"Accept": "application/json", "User-Agent": _USER_AGENT}
        if self.basic:
            headers["Authorization"] = self.basic
        url = f"{realm}{'&' if '?' in realm else '?'}{query}"
        answer = self.transport.send("GET", url, headers, timeouts=self._timeout(call))
        who = f"{call.what}: the token service {urlsplit(realm).netloc}"
        try:
            reply = self._read(answer, Call("GET", url, "", who, give_up_at=call.give_up_at), ERROR_BODY_BYTES)
            body = json.loads(reply.body) if reply.status == 200 else {}
            token = body.get("token") or body.get("access_token")
        except (BodyTooLarge, ValueError, AttributeError):
            raise RegistryAuthError(f"{who} answered with no token") from None
        if reply.status != 200:
            refused = "the credentials" if self.basic else "anonymous access"
            raise RegistryAuthError(f"{who} refused {refused} (HTTP {reply.status}): {message(reply)}")
        if not isinstance(token, str) or not token:
            raise RegistryAuthError(f"{who} answered with no token")
        return token


def _discard(answer: Answer) -> None:
    """Read a small unwanted body so the connection can be kept; a large one costs the connection instead."""
    answer.read(ERROR_BODY_BYTES)
    answer.close()


def next_page(reply: Reply) -> str:
    """The URL of the next page of a listing (`Link: <...>; rel="next"`), or "" on the last page."""
    for target, params in _LINK.findall(reply.headers.get("Link") or ""):
        rel = _REL.search(params)
        if rel and "next" in rel[1].split():
            return urljoin(reply.url, target)
    return ""


def message(reply: Reply) -> str:
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
