"""HTTP for the registry client: `HttpTransport`, a thin adapter over urllib3's connection pools.

urllib3 holds the protocol: kept-alive connections pooled per host and shared by threads, TLS, and proxies
(http and https ones, CONNECT tunnels for https targets) taken from ``http_proxy``/``https_proxy``/``no_proxy``
as requests takes them. The adapter holds what is ours: no retries and no redirects here (`catalog.registry_http`
decides both), bodies read by the caller within its limits and in the bytes served (no decoding: digests are over
them), certificates checked against the system's trust store and certifi's bundle (or `tls_verify` when it names a
CA bundle file), and failures told in a few words (`TransportError`).

`public_only` connections refuse, once connected and before anything is sent, a peer whose address is loopback,
private, link-local or otherwise not global (`catalog.addresses`): a name that resolves there (DNS rebinding
included) is not reached through them.
"""

from __future__ import annotations

import logging
import ssl
import threading
import time
import urllib.request
import warnings
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlsplit

import urllib3
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import (
    ConnectTimeoutError,
    HTTPError,
    InsecureRequestWarning,
    NameResolutionError,
    ProxyError,
    ReadTimeoutError,
    SSLError,
)

from catalog import metrics
from catalog.addresses import NotPublic, check_public_address

log = logging.getLogger(__name__)
_MAX_IDLE = 16  # kept connections per host: the sync reads over a few at once


class TransportError(Exception):
    """The request got no answer: `reason` says why in a few words (connection refused, timed out, ...)."""

    def __init__(self, reason: str, *, tls: bool = False, refused: bool = False) -> None:
        super().__init__(reason)
        self.reason, self.tls, self.refused = reason, tls, refused


class Answer:
    """A response whose body is read with `read`; `close` gives its connection back when the body was read."""

    def __init__(self, response: urllib3.BaseHTTPResponse, url: str) -> None:
        self._response, self.url = response, url
        self.status: int = response.status
        self.headers = response.headers  # case-insensitive get()
        self._done = False

    def read(self, amount: int | None = None) -> bytes:
        """Up to `amount` bytes of the body (all of it with None); b"" at its end. TransportError if cut off."""
        try:
            data = self._response.read(amount, decode_content=False)
        except (HTTPError, OSError) as exc:
            self._response.close()
            raise TransportError(describe(exc)) from None
        if not data or amount is None:
            self._done = True
        return data

    def close(self) -> None:
        """Give the connection back (the body was read) or close it; closing twice does nothing."""
        if not self._done:
            self._response.close()  # an unread body would be the next answer's start
            self._done = True
        self._response.release_conn()

    def __enter__(self) -> Answer:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


def _pool_classes(on_connect: Callable[[Any, HTTPConnection], None]) -> dict[str, type[HTTPConnectionPool]]:
    """urllib3 pool classes whose connections call on_connect(socket, connection) once TCP is up: before TLS and
    before any byte of a request."""

    class Http(HTTPConnection):
        def _new_conn(self) -> Any:
            sock = super()._new_conn()
            on_connect(sock, self)
            return sock

    class Https(HTTPSConnection):
        def _new_conn(self) -> Any:
            sock = super()._new_conn()
            on_connect(sock, self)
            return sock

    class HttpPool(HTTPConnectionPool):
        ConnectionCls = Http

    class HttpsPool(HTTPSConnectionPool):
        ConnectionCls = Https

    return {"http": HttpPool, "https": HttpsPool}


class HttpTransport:
    """Requests over urllib3's kept-alive connection pools, one per scheme, host and port (and proxy)."""

    def __init__(self, *, tls_verify: bool | str = True, proxies: Mapping[str, str] | None = None) -> None:
        self.tls_verify = tls_verify
        self._proxies = dict(urllib.request.getproxies_environment() if proxies is None else proxies)
        self._lock = threading.Lock()
        self._managers: dict[tuple[str | None, bool], urllib3.PoolManager] = {}
        self._tls = _tls_context(tls_verify)
        self.opened = 0  # connections opened so far (the other requests went over kept ones)
        if tls_verify is False:
            log.warning("TLS certificates are not checked (tls_verify=False), as configured")
            warnings.filterwarnings("ignore", category=InsecureRequestWarning)

    def send(
        self,
        method: str,
        url: str,
        headers: Mapping[str, str],
        body: bytes | None = None,
        *,
        timeouts: tuple[float, float] = (10.0, 30.0),
        public_only: bool = False,
    ) -> Answer:
        """Send one request and read the answer's status and headers; TransportError if there is none."""
        parts = urlsplit(url)
        manager = self._manager(self._proxy_for(parts.scheme, parts.hostname or ""), public_only)
        started, code = time.monotonic(), "error"
        try:
            response = manager.urlopen(
                method,
                url,
                body=body,
                headers=dict(headers),
                retries=False,
                redirect=False,
                timeout=urllib3.Timeout(connect=timeouts[0], read=timeouts[1]),
                preload_content=False,
                decode_content=False,
            )
            code = str(response.status)
        except NotPublic as exc:
            raise TransportError(str(exc), refused=True) from None
        except SSLError as exc:
            raise TransportError(f"TLS with {parts.netloc} failed: {_cause(exc)}", tls=True) from None
        except (HTTPError, OSError) as exc:
            if isinstance(_root(exc), NotPublic):
                raise TransportError(str(_root(exc)), refused=True) from None
            raise TransportError(describe(exc)) from None
        finally:
            metrics.REGISTRY_REQUESTS.labels(parts.netloc, method, code).inc()
            metrics.REGISTRY_SECONDS.labels(parts.netloc).observe(time.monotonic() - started)
        return Answer(response, url)

    def close(self) -> None:
        """Close every idle connection."""
        with self._lock:
            managers, self._managers = self._managers, {}
        for manager in managers.values():
            manager.clear()

    def _manager(self, proxy: str | None, public_only: bool) -> urllib3.PoolManager:
        key = (proxy, public_only)
        with self._lock:
            manager = self._managers.get(key)
            if manager is None:
                options: dict[str, Any] = {"maxsize": _MAX_IDLE, "ssl_context": self._tls, "num_pools": 32}
                if self.tls_verify is False:
                    options.update(cert_reqs="CERT_NONE", assert_hostname=False)
                if proxy is None:
                    manager = urllib3.PoolManager(**options)
                else:
                    manager = urllib3.ProxyManager(proxy, proxy_headers=_proxy_headers(proxy), **options)
                manager.pool_classes_by_scheme = _pool_classes(self._checked if public_only else self._count)
                self._managers[key] = manager
            return manager

    def _count(self, sock: Any, conn: HTTPConnection) -> None:
        with self._lock:
            self.opened += 1

    def _checked(self, sock: Any, conn: HTTPConnection) -> None:
        """Refuse a peer that is not at a public address (a proxy is the operator's: its address is not checked)."""
        self._count(sock, conn)
        if conn.proxy is None:
            try:
                check_public_address(sock.getpeername()[0], conn.host)
            except NotPublic:
                sock.close()
                raise

    def _proxy_for(self, scheme: str, host: str) -> str | None:
        """The URL of the proxy for scheme://host, or None to connect directly."""
        url = self._proxies.get(scheme)
        if not url:
            return None
        bypass = urllib.request.proxy_bypass_environment  # type: ignore[attr-defined]  # public, not in typeshed
        if bypass(host, self._proxies):
            return None
        return url if "://" in url else f"http://{url}"


def _proxy_headers(proxy: str) -> dict[str, str]:
    parts = urlsplit(proxy)
    if parts.username is None:
        return {}
    return urllib3.make_headers(proxy_basic_auth=f"{parts.username}:{parts.password or ''}")


def _tls_context(tls_verify: bool | str) -> ssl.SSLContext:
    if isinstance(tls_verify, str):
        return ssl.create_default_context(cafile=tls_verify)
    context = ssl.create_default_context()
    if not tls_verify:
        context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
        return context
    try:  # certifi's bundle too (as requests does), for hosts whose system trust store is empty
        import certifi
    except ImportError:  # pragma: no cover - certifi comes with requests
        return context
    context.load_verify_locations(certifi.where())
    return context


def _root(exc: BaseException) -> BaseException:
    """The innermost cause urllib3 wrapped (its errors wrap the socket's)."""
    seen = 0
    while seen < 8:
        inner = getattr(exc, "reason", None)
        if not isinstance(inner, BaseException):
            inner = exc.__cause__ or exc.__context__
        if inner is None or inner is exc:
            return exc
        exc, seen = inner, seen + 1
    return exc


def _cause(exc: BaseException) -> str:
    root = _root(exc)
    return str(root) or type(root).__name__


def describe(exc: BaseException) -> str:
    """A short cause of a failed request: refused, unknown host, timed out, or the error's own words."""
    root = _root(exc)
    if isinstance(exc, NameResolutionError) or isinstance(root, NameResolutionError):
        return "the host name does not resolve"
    if isinstance(root, ConnectionRefusedError) or "Connection refused" in str(exc):
        return "connection refused"  # before timeouts: urllib3's NewConnectionError is a ConnectTimeoutError
    if isinstance(exc, ConnectTimeoutError | ReadTimeoutError | TimeoutError) or "timed out" in str(root):
        return "timed out"
    if isinstance(exc, ProxyError):
        return f"the proxy failed: {_cause(exc)}"
    if isinstance(root, urllib3.exceptions.IncompleteRead) or "IncompleteRead" in str(exc):
        return "the connection was closed in the middle of the answer"
    if "Remote end closed" in str(exc) or isinstance(root, ConnectionResetError | BrokenPipeError):
        return "the connection was closed without an answer"
    return _cause(exc)
