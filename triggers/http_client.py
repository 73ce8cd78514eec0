"""The real InterceptorHTTP: a thin adapter over requests that holds what is ours (tektoncd/triggers#2023,
upstream sends anywhere): the address check, no redirects, a deadline and a response size cap.

The host is resolved once and every address it resolves to must pass the caller's `allow(host, address)`;
the connection then goes to the checked address (the URL's host stays in the Host header and, for HTTPS, in
SNI and certificate checks), so a second DNS answer cannot point the call elsewhere.
"""

from __future__ import annotations

import ipaddress
import socket
import time
from collections.abc import Callable, Mapping
from urllib.parse import urlsplit, urlunsplit

import requests
from requests.adapters import HTTPAdapter

from triggers.ports import HTTPReply, InterceptorTransportError

DEFAULT_TIMEOUT = 10.0
DEFAULT_MAX_BYTES = 1 << 20


class _PinnedAdapter(HTTPAdapter):
    """Verifies TLS against the URL's host while connecting to an address given as the URL's host."""

    def __init__(self, hostname: str) -> None:
        self.hostname = hostname
        super().__init__(max_retries=0)

    def init_poolmanager(self, *args: object, **kwargs: object) -> None:
        kwargs["server_hostname"] = self.hostname
        kwargs["assert_hostname"] = self.hostname
        super().init_poolmanager(*args, **kwargs)  # type: ignore[arg-type]


class RequestsInterceptorHTTP:
    """HTTP for interceptors: `allow(host, address)` decides which resolved addresses may be reached."""

    def __init__(
        self,
        allow: Callable[[str, str], bool],
        *,
        timeout: float = DEFAULT_TIMEOUT,
        max_bytes: int = DEFAULT_MAX_BYTES,
    ) -> None:
        self.allow = allow
        self.timeout = timeout
        self.max_bytes = max_bytes

    def send(self, method: str, url: str, headers: Mapping[str, str], body: bytes = b"") -> HTTPReply:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise InterceptorTransportError(f"unsupported protocol scheme {parts.scheme!r}")
        host = parts.hostname
        try:
            port = parts.port or (443 if parts.scheme == "https" else 80)
        except ValueError:
            raise InterceptorTransportError(f"invalid port in {url}") from None
        address = self._checked_address(host, port)
        literal = f"[{address}]" if ":" in address else address
        pinned = urlunsplit((parts.scheme, f"{literal}:{port}", parts.path or "/", parts.query, ""))
        sent_headers = {**headers, "Host": parts.netloc.rsplit("@", 1)[-1]}
        deadline = time.monotonic() + self.timeout
        with requests.Session() as session:
            session.trust_env = False  # no proxy: the checked address is the one reached
            session.mount(f"{parts.scheme}://", _PinnedAdapter(host))
            try:
                response = session.request(
                    method, pinned, headers=sent_headers, data=body, allow_redirects=False,
                    timeout=(self.timeout, self.timeout), stream=True,
                )  # fmt: skip
                with response:
                    if 300 <= response.status_code < 400:
                        location = response.headers.get("location", "")
                        raise InterceptorTransportError(f"redirect refused ({response.status_code} to {location})")
                    data = self._read(response, deadline)
                    reply_headers = {k.lower(): v for k, v in response.headers.items()}
            except requests.RequestException as exc:
                raise InterceptorTransportError(_short(exc)) from None
        return HTTPReply(response.status_code, data, reply_headers)

    def _checked_address(self, host: str, port: int) -> str:
        try:
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except (OSError, UnicodeError) as exc:
            raise InterceptorTransportError(f"dial tcp: lookup {host}: {exc}") from None
        addresses = list(dict.fromkeys(str(ipaddress.ip_address(str(info[4][0]).split("%")[0])) for info in infos))
        refused = [a for a in addresses if not self.allow(host, a)]
        if refused or not addresses:
            raise InterceptorTransportError(f"address {', '.join(refused) or host} of {host} is not allowed")
        return addresses[0]

    def _read(self, response: requests.Response, deadline: float) -> bytes:
        chunks, size = [], 0
        for chunk in response.iter_content(64 * 1024):
            size += len(chunk)
            if size > self.max_bytes:
                raise InterceptorTransportError(f"response over {self.max_bytes} bytes")
            if time.monotonic() > deadline:
                raise InterceptorTransportError(f"no complete response within {self.timeout:g} s")
            chunks.append(chunk)
        return b"".join(chunks)


def _short(exc: Exception) -> str:
    text = str(exc)
    if isinstance(exc, requests.Timeout):
        return f"timeout: {text[:200]}"
    return text[:300]


def networks_allowed(networks: str) -> Callable[[str, str], bool]:
    """An allow-check for a hub: public addresses, and those in `networks` (comma-separated CIDRs, e.g. the
    private network custom interceptors run in). Loopback, link-local (cloud metadata) and private addresses are
    refused unless listed."""
    listed = [ipaddress.ip_network(n.strip(), strict=False) for n in networks.split(",") if n.strip()]

    def allow(host: str, address: str) -> bool:
        del host
        ip = ipaddress.ip_address(address)
        return ip.is_global or any(ip in network for network in listed)

    return allow


def loopback_only(host: str, address: str) -> bool:
    """An allow-check for tests and single-machine hubs: loopback addresses only."""
    del host
    return ipaddress.ip_address(address).is_loopback
