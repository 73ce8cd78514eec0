"""HTTP for the registry client: `HttpTransport`, keep-alive connections on `http.client`, pooled per host.

A registry answers many small requests (tag listings, manifests, small layers), so the cost per request is what
counts: `http.client` spends about half of what `requests` and urllib3 do on each, and a connection kept open
saves the TCP (and TLS) set-up. Connections are pooled per scheme, host and port and are safe to share between
threads: each request takes an idle connection or opens one, and gives it back once its answer is read in full.

The transport only moves bytes: no retries (but one resend when a kept connection turns out to have been closed
by the server while idle), no redirects, no authentication. Proxies come from the environment's
``http_proxy``/``https_proxy``/``no_proxy``, read once when the transport is made; https goes through a CONNECT
tunnel. Certificates are checked against the system's trust store and certifi's bundle, or `tls_verify` when it
names a CA bundle file.
"""

from __future__ import annotations

import base64
import http.client
import select
import socket
import ssl
import threading
import urllib.request
from collections.abc import Mapping
from email.message import Message
from urllib.parse import unquote, urlsplit

_MAX_IDLE = 16  # kept connections per host: the sync reads over a few at once
# What reusing a kept connection the server has closed meanwhile raises (TLS: its close_notify, or none).
_KEPT_CLOSED = (
    BrokenPipeError,
    ConnectionResetError,
    ConnectionAbortedError,
    http.client.RemoteDisconnected,
    ssl.SSLEOFError,
    ssl.SSLZeroReturnError,
)
_Key = tuple[str, str, int]


class TransportError(Exception):
    """The request got no answer: `reason` says why in a few words (connection refused, timed out, ...)."""

    def __init__(self, reason: str, *, tls: bool = False) -> None:
        super().__init__(reason)
        self.reason, self.tls = reason, tls


class Answer:
    """A response whose body is read with `read`; `close` gives its connection back when the body was read."""

    def __init__(self, pool: HttpTransport, key: _Key, conn: http.client.HTTPConnection, url: str) -> None:
        self._pool, self._key, self._conn, self.url = pool, key, conn, url
        self._closed = False
        self._response = conn.getresponse()
        self.status: int = self._response.status
        self.headers: Message = self._response.msg

    def read(self, amount: int | None = None) -> bytes:
        """Up to `amount` bytes of the body (all of it with None); b"" at its end. TransportError if cut off."""
        try:
            return self._response.read(amount)
        except (OSError, http.client.HTTPException) as exc:
            self._response.close()
            raise TransportError(describe(exc)) from None

    def close(self) -> None:
        """Give the connection back (the body was read) or close it; closing twice does nothing."""
        if self._closed:
            return
        self._closed = True
        reusable = self._response.isclosed() and not self._response.will_close and self._conn.sock is not None
        self._response.close()
        if reusable:
            self._pool._give_back(self._key, self._conn)
        else:
            self._conn.close()

    def __enter__(self) -> Answer:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


class HttpTransport:
    """Requests over kept-alive `http.client` connections, a pool of them per scheme, host and port."""

    def __init__(self, *, tls_verify: bool | str = True, proxies: Mapping[str, str] | None = None) -> None:
        self.tls_verify = tls_verify
        self._proxies = dict(urllib.request.getproxies_environment() if proxies is None else proxies)
        self._idle: dict[_Key, list[http.client.HTTPConnection]] = {}
        self._lock = threading.Lock()
        self._tls: ssl.SSLContext | None = None
        self.opened = 0  # connections opened so far (the others were kept ones, reused)

    def send(
        self,
        method: str,
        url: str,
        headers: Mapping[str, str],
        body: bytes | None = None,
        *,
        timeouts: tuple[float, float] = (10.0, 30.0),
    ) -> Answer:
        """Send one request and read the answer's status and headers; TransportError if there is none."""
        parts = urlsplit(url)
        scheme, host, port = parts.scheme, parts.hostname or "", parts.port
        key = (scheme, host, port or (443 if scheme == "https" else 80))
        target = f"{parts.path or '/'}{'?' + parts.query if parts.query else ''}"
        proxy = self._proxy_for(scheme, host)
        if proxy is not None and scheme == "http":
            target = url  # a plain http proxy is asked for the whole URL
        while True:
            conn, kept = self._take(key, proxy, timeouts[0])
            try:
                if conn.sock is not None:
                    conn.sock.settimeout(timeouts[1])
                conn.request(method, target, body, dict(headers))
                return Answer(self, key, conn, url)
            except _KEPT_CLOSED as exc:
                conn.close()
                if not kept:
                    raise TransportError(describe(exc)) from None
                # The server closed this idle connection just as it was reused: try again on another.
            except (OSError, http.client.HTTPException) as exc:  # TLS errors too: the handshake was in _take
                conn.close()
                raise TransportError(describe(exc)) from None

    def close(self) -> None:
        """Close every idle connection."""
        with self._lock:
            idle, self._idle = self._idle, {}
        for conns in idle.values():
            for conn in conns:
                conn.close()

    def _take(
        self, key: _Key, proxy: tuple[str, int, str | None] | None, connect_timeout: float
    ) -> tuple[http.client.HTTPConnection, bool]:
        """An idle connection still open (True), or a new one, connected (False)."""
        while True:
            with self._lock:
                idle = self._idle.get(key)
                conn = idle.pop() if idle else None
            if conn is None:
                break
            if _still_open(conn):
                return conn, True
            conn.close()
        scheme, host, port = key
        where = (proxy[0], proxy[1]) if proxy else (host, port)
        new: http.client.HTTPConnection
        if scheme == "https":
            new = http.client.HTTPSConnection(*where, timeout=connect_timeout, context=self._tls_context())
            if proxy:
                new.set_tunnel(host, port, {"Proxy-Authorization": proxy[2]} if proxy[2] else None)
        else:
            new = http.client.HTTPConnection(*where, timeout=connect_timeout)
        self.opened += 1
        try:
            new.connect()
        except ssl.SSLError as exc:
            new.close()
            raise TransportError(f"TLS with {host}:{port} failed: {exc}", tls=True) from None
        except (OSError, http.client.HTTPException) as exc:
            new.close()
            raise TransportError(describe(exc)) from None
        return new, False

    def _give_back(self, key: _Key, conn: http.client.HTTPConnection) -> None:
        with self._lock:
            idle = self._idle.setdefault(key, [])
            if len(idle) < _MAX_IDLE:
                idle.append(conn)
                return
        conn.close()

    def _proxy_for(self, scheme: str, host: str) -> tuple[str, int, str | None] | None:
        """(host, port, Proxy-Authorization) of the proxy for scheme://host, or None to connect directly."""
        url = self._proxies.get(scheme)
        if not url:
            return None
        bypass = urllib.request.proxy_bypass_environment  # type: ignore[attr-defined]  # public, not in typeshed
        if bypass(host, self._proxies):
            return None
        parts = urlsplit(url if "://" in url else f"http://{url}")
        if parts.scheme != "http":
            raise TransportError(f"the proxy {url} is not an http:// proxy, the only kind this client speaks")
        login = None
        if parts.username is not None:
            pair = f"{unquote(parts.username)}:{unquote(parts.password or '')}"
            login = "Basic " + base64.b64encode(pair.encode()).decode()
        return parts.hostname or "", parts.port or 80, login

    def _tls_context(self) -> ssl.SSLContext:
        if self._tls is None:
            if isinstance(self.tls_verify, str):
                context = ssl.create_default_context(cafile=self.tls_verify)
            else:
                context = ssl.create_default_context()
                if self.tls_verify:
                    _add_certifi(context)
                else:
                    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
            self._tls = context
        return self._tls


def _add_certifi(context: ssl.SSLContext) -> None:
    """Trust certifi's bundle too (as requests does), for hosts whose system trust store is empty."""
    try:
        import certifi
    except ImportError:
        return
    context.load_verify_locations(certifi.where())


def _still_open(conn: http.client.HTTPConnection) -> bool:
    """Whether an idle kept connection is usable: nothing to read on it (readable means closed, or junk)."""
    sock = conn.sock
    if sock is None:
        return False
    try:
        poller = select.poll()  # not select(): a worker may hold more than 1024 file descriptors
        poller.register(sock, select.POLLIN)
        return not poller.poll(0)
    except (OSError, ValueError):
        return False


def describe(exc: BaseException) -> str:
    """A short cause of a failed request: refused, unknown host, timed out, or the error's own words."""
    if isinstance(exc, socket.gaierror):
        return "the host name does not resolve"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, TimeoutError | socket.timeout) or "timed out" in str(exc):
        return "timed out"
    if isinstance(exc, http.client.RemoteDisconnected | ConnectionResetError):
        return "the connection was closed without an answer"
    if isinstance(exc, http.client.IncompleteRead):
        return "the connection was closed in the middle of the answer"
    return str(exc) or type(exc).__name__
