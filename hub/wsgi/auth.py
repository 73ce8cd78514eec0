"""Who is asking: API tokens on every request, scopes on writes, private mode, and the rate limits.

Both checks run in a WSGI layer in front of the response cache (see `init_app`), not in a before_request hook:
the cache answers repeated GETs without running Flask at all, so a hook would let a cached page out of a
private hub and a cached search past its rate limit. The layer sees every request of every blueprint.

Cost: a public hub with no Authorization header does one dict lookup per request and touches no database.
A token is hashed and looked up once per worker per ``token_cache_seconds`` (30 s by default); expiry is
checked on every request, and a revocation takes effect in every worker within that window.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any, TypeVar

from flask import Blueprint, Flask, Response, current_app, jsonify, redirect, render_template, request
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session
from werkzeug.exceptions import HTTPException
from werkzeug.http import parse_cookie

from hub.errors import TEKTON_API_PREFIXES, goa_error
from hub.tokens import InvalidToken, MissingScope, TokenIdentity, hash_token, note_token_use, verify_token
from hub.wsgi.ratelimit import ENVIRON_CLIENT_KEY, Rate, RateLimitGate
from hub.wsgi.server import Environ, StartResponse, WSGIApp

log = logging.getLogger(__name__)
F = TypeVar("F", bound=Callable[..., Any])

ENVIRON_TOKEN_KEY = "taskhub.token"
COOKIE = "taskhub_token"
# Methods a login cookie is accepted for: a cross-site form can send the cookie, never a header, so the cookie
# grants reading only and every write needs the Authorization header.
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
LOGIN_PATHS = frozenset({"/login", "/logout"})
# Run records are read with these scopes unless they are public; so are jobs, which carry runs and their errors.
# The pages of both read the login cookie on any hub.
RUN_READ_SCOPES = ("runs:read", "runs:write")
RUN_PAGES = ("/runs", "/jobs")
MAX_CACHED_TOKENS = 1024
WWW_AUTHENTICATE = 'Bearer realm="taskhub"'

bp = Blueprint("auth", __name__)


def bearer_token(header: str) -> str:
    """The token of an Authorization header: ``Bearer <token>``, or the bare token as tkn and Tekton Hub's UI
    send it; InvalidToken for anything else."""
    value = header.strip()
    scheme, _, rest = value.partition(" ")
    if not value:
        raise InvalidToken("empty Authorization header; send 'Authorization: Bearer <token>'")
    if not rest:
        if scheme.lower() == "bearer":
            raise InvalidToken("Authorization: Bearer without a token")
        return value
    if scheme.lower() != "bearer":
        raise InvalidToken(f"unsupported Authorization scheme {scheme[:20]!r}; send 'Authorization: Bearer <token>'")
    token = rest.strip()
    if " " in token:
        raise InvalidToken("malformed Authorization header: a token has no spaces")
    return token


def _other_scheme(header: str) -> bool:
    """Whether the header is credentials for something else (Basic auth of a proxy in front of the hub)."""
    scheme, _, rest = header.strip().partition(" ")
    return bool(rest.strip()) and scheme.lower() != "bearer"


class TokenCache:
    """Verification results by token hash, each trusted for ttl seconds; at most max_entries are kept."""

    def __init__(self, ttl: float, max_entries: int = MAX_CACHED_TOKENS) -> None:
        self.ttl = ttl
        self.max_entries = max_entries
        self._lock = threading.Lock()
        # hash -> (identity, or (reason, message) of a refusal; when it was verified)
        self._entries: dict[str, tuple[TokenIdentity | tuple[str, str], float]] = {}

    def get(self, digest: str) -> TokenIdentity | tuple[str, str] | None:
        """The cached result for a token hash, or None when there is none or it is too old."""
        entry = self._entries.get(digest)
        if entry is None or time.monotonic() - entry[1] >= self.ttl:
            return None
        return entry[0]

    def put(self, digest: str, result: TokenIdentity | tuple[str, str]) -> None:
        """Remember a verification result, dropping the oldest entry when full."""
        if self.ttl <= 0:
            return
        with self._lock:
            self._entries.pop(digest, None)
            if len(self._entries) >= self.max_entries:
                del self._entries[next(iter(self._entries))]
            self._entries[digest] = (result, time.monotonic())


def current_identity() -> TokenIdentity | None:
    """The verified token of the current request, if it sent one."""
    identity: TokenIdentity | None = request.environ.get(ENVIRON_TOKEN_KEY)
    return identity


def require_scope(scope: str) -> Callable[[F], F]:
    """Decorate a view that needs scope: 401 without a valid token, 403 naming the scope without it.

    The view is also exempt from private mode's ``read`` requirement: its own scope is what it needs."""

    def decorate(view: F) -> F:
        @functools.wraps(view)
        def checked(*args: Any, **kwargs: Any) -> Any:
            identity = current_identity()
            if identity is None:
                message = f"this operation needs an API token with the {scope!r} scope"
                raise InvalidToken(message, reason="missing-token")
            if not identity.allows(scope):
                raise MissingScope(scope, identity.name)
            return view(*args, **kwargs)

        checked.required_scope = scope  # type: ignore[attr-defined]
        return checked  # type: ignore[return-value]

    return decorate


def check_run_reader() -> None:
    """Run records (params, results, logs) are for tokens with runs:read or runs:write, unless the operator made
    them public (TASKHUB_PUBLIC_RUNS): 401 without a token, 403 naming the scope with another."""
    if current_app.config["TASKHUB"].public_runs:
        return
    identity = current_identity()
    if identity is None:
        message = "run records are not public on this hub: send an API token with the 'runs:read' scope"
        raise InvalidToken(message, reason="missing-token")
    if not any(identity.allows(scope) for scope in RUN_READ_SCOPES):
        raise MissingScope("runs:read", identity.name)


def _wants_html() -> bool:
    return request.accept_mimetypes.best_match(["application/json", "text/html"]) == "text/html"


def refusal(status: int, name: str, message: str) -> Response:
    """An error answer in the shape of the request's API family: goa for Tekton Hub's, ``{"message"}`` for
    Artifact Hub's (/api/...), an HTML page (with the login form for 401s of a private hub) for the web UI."""
    path = request.path
    if path.startswith("/api/"):
        response = jsonify(message=message)
        response.status_code = status
        return response
    if path.startswith(TEKTON_API_PREFIXES) or (path == "/" and not _wants_html()):
        return goa_error(status, name, message)
    settings = current_app.config["TASKHUB"]
    runs_closed = not settings.public_runs and path.startswith(RUN_PAGES)
    if status == 401 and (settings.private or runs_closed):
        return Response(render_template("login.html", message=message, next=request.full_path.rstrip("?")), status)
    return Response(render_template("error.html", status=status, message=message), status)


class AccessGate:
    """WSGI layer that verifies tokens, enforces private mode and applies the rate limits (see the module doc)."""

    def __init__(self, app: Flask, wsgi: WSGIApp, engine: Engine) -> None:
        settings = app.config["TASKHUB"]
        self.app = app
        self.engine = engine
        self.private: bool = settings.private
        self.cache = TokenCache(settings.token_cache_seconds)
        self._touching = threading.Lock()  # held while a token's last use is being written
        self._touch_thread: threading.Thread | None = None
        limits = {
            "resolve": Rate.parse(settings.rate_limit_resolve, "TASKHUB_RATE_LIMIT_RESOLVE"),
            "search": Rate.parse(settings.rate_limit_search, "TASKHUB_RATE_LIMIT_SEARCH"),
        }
        self.wsgi = RateLimitGate(wsgi, limits, self.refuse)

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        header = environ.get("HTTP_AUTHORIZATION")
        if not self.private and header is not None and _other_scheme(header):
            header = None  # a proxy's Basic: not ours
        if not self.private and header is None and self._cookie_token(environ) is None:
            return self.wsgi(environ, start_response)
        if header is None and environ.get("PATH_INFO") in LOGIN_PATHS:
            return self.wsgi(environ, start_response)  # signing in replaces whatever cookie there was
        try:
            token = bearer_token(header) if header is not None else self._cookie_token(environ)
            identity = self.identify(token) if token is not None else None
            if self.private:
                self._check_private(environ, identity)
        except InvalidToken as exc:
            headers = {"WWW-Authenticate": WWW_AUTHENTICATE}
            return self.refuse(environ, start_response, 401, exc.reason, str(exc), headers)
        except MissingScope as exc:
            return self.refuse(environ, start_response, 403, "invalid-scopes", str(exc), {})
        except SQLAlchemyError:
            message = "the hub's database is unavailable; try again shortly"
            return self.refuse(environ, start_response, 503, "unavailable", message, {})
        if identity is not None:
            environ[ENVIRON_TOKEN_KEY] = identity
            environ[ENVIRON_CLIENT_KEY] = f"token:{identity.name}"
        if self.private:
            start_response = _private_caching(start_response)
        return self.wsgi(environ, start_response)

    def identify(self, token: str) -> TokenIdentity:
        """The identity of token, from the cache or the database; InvalidToken when it is not valid."""
        digest = hash_token(token)
        result = self.cache.get(digest)
        if result is None:
            try:
                with Session(self.engine) as session:
                    result = verify_token(session, token)
            except InvalidToken as exc:
                result = (exc.reason, str(exc))
            else:
                self._note_use(digest)
            self.cache.put(digest, result)
        if isinstance(result, tuple):
            raise InvalidToken(result[1], reason=result[0])
        if result.expires_at is not None and result.expires_at <= datetime.now(UTC):
            raise InvalidToken(f"API token {result.name!r} expired", reason="expired-token")
        return result

    def _note_use(self, digest: str) -> None:
        """Record the token's use beside the request, never in its way: a database that takes no writes (read-only,
        a full disk, a held write lock) must not fail reads. At most one such write waits at a time; others are
        dropped (the time is a hint, to the nearest few minutes)."""
        if not self._touching.acquire(blocking=False):
            return

        def touch() -> None:
            try:
                with Session(self.engine) as session, session.begin():
                    note_token_use(session, digest)
            except SQLAlchemyError as exc:
                log.warning("could not record a token's last use: %s", " ".join(str(exc).split())[:200])
            finally:
                self._touching.release()

        self._touch_thread = threading.Thread(target=touch, name="taskhub-token-use", daemon=True)
        self._touch_thread.start()

    def wait_for_token_uses(self) -> None:
        """Wait until the last use of a token being written is written (or failed)."""
        if self._touch_thread is not None:
            self._touch_thread.join()

    def _cookie_token(self, environ: Environ) -> str | None:
        if environ.get("REQUEST_METHOD") not in SAFE_METHODS:
            return None
        if not self.private and not str(environ.get("PATH_INFO", "")).startswith(RUN_PAGES):
            return None  # a public hub reads the login cookie only for the run pages, which may need a token
        return parse_cookie(environ).get(COOKIE) or None

    def _check_private(self, environ: Environ, identity: TokenIdentity | None) -> None:
        if environ.get("PATH_INFO") in LOGIN_PATHS:
            return
        if identity is None:
            raise InvalidToken(
                "this hub is private: send an API token with the 'read' scope (Authorization: Bearer <token>)",
                reason="missing-token",
            )
        if not identity.allows("read") and not self._declares_scope(environ):
            raise MissingScope("read", identity.name)

    def _declares_scope(self, environ: Environ) -> bool:
        """Whether the request goes to a view that checks a scope of its own (see `require_scope`)."""
        try:
            endpoint, _ = self.app.url_map.bind_to_environ(environ).match()
        except HTTPException:
            return False
        return getattr(self.app.view_functions.get(str(endpoint)), "required_scope", None) is not None

    def refuse(
        self, environ: Environ, start_response: StartResponse, status: int, name: str, message: str,
        headers: dict[str, str],
    ) -> Iterable[bytes]:  # fmt: skip
        """Answer the request in environ with a refusal rendered by the app, in the request's API family."""
        with self.app.request_context(environ):
            response = refusal(status, name, message)
        response.headers.update(headers)
        response.headers["Cache-Control"] = "no-store"
        return response(environ, start_response)


def _private_caching(start_response: StartResponse) -> StartResponse:
    """Mark answers of a private hub ``private``: shared proxies must not keep them for the next client."""

    def start(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        headers = [(k, v.replace("public", "private")) if k.lower() == "cache-control" else (k, v) for k, v in headers]
        return start_response(status, headers, exc_info)

    return start


@bp.route("/login", methods=["GET", "POST"])
def login() -> Response | str:
    """A form that keeps an API token in a cookie, so a browser can read a private hub."""
    target = request.values.get("next", "/")
    if not _local_path(target):
        target = "/"  # only paths of this hub: no open redirect
    if request.method == "GET":
        return render_template("login.html", message=None, next=target)
    token = request.form.get("token", "").strip()
    gate: AccessGate = current_app.extensions["taskhub.access_gate"]
    try:
        identity = gate.identify(token)
    except InvalidToken as exc:
        return Response(render_template("login.html", message=str(exc), next=target), 401)
    if not any(identity.allows(scope) for scope in ("read", *RUN_READ_SCOPES)):
        message = str(MissingScope("read", identity.name))
        return Response(render_template("login.html", message=message, next=target), 403)
    response = redirect(target)
    max_age = int((identity.expires_at - datetime.now(UTC)).total_seconds()) if identity.expires_at else None
    response.set_cookie(COOKIE, token, max_age=max_age, httponly=True, samesite="Lax", secure=request.is_secure)
    return response  # type: ignore[return-value]


def _local_path(target: str) -> bool:
    """Whether target is a path of this hub: one '/' then no '/' or '\\', and nothing a browser drops or bends
    (whitespace and control characters: "/<TAB>/evil.example" is followed as "//evil.example")."""
    if any(c.isspace() or ord(c) < 32 or ord(c) == 127 or c == "\\" for c in target):
        return False
    return target.startswith("/") and not target.startswith("//")


@bp.post("/logout")
def logout() -> Response:
    """Forget the login cookie."""
    response = redirect("/login")
    response.delete_cookie(COOKIE)
    return response  # type: ignore[return-value]


def init_app(app: Flask) -> None:
    """Put the access gate (and the rate limits inside it) in front of the app, the response cache included."""
    gate = AccessGate(app, app.wsgi_app, app.extensions["taskhub.engine"])
    app.extensions["taskhub.access_gate"] = gate
    app.wsgi_app = gate  # type: ignore[method-assign]
    if gate.private or not app.config["TASKHUB"].public_runs:
        app.register_blueprint(bp)  # the login form: to read a private hub, or the run pages

    @app.errorhandler(InvalidToken)
    def invalid_token(error: InvalidToken) -> Response:
        response = refusal(401, error.reason, str(error))
        response.headers["WWW-Authenticate"] = WWW_AUTHENTICATE
        return response

    @app.errorhandler(MissingScope)
    def missing_scope(error: MissingScope) -> Response:
        return refusal(403, "invalid-scopes", str(error))
