"""Where a registry's answers may send the client (redirects, next pages, token realms), and its HTTP's retries,
proxies and errors: hostile registries on loopback, and listeners that must see no connection where one is refused.

The private and link-local cases (10.1.2.3, 169.254.169.254) are refused before any connection: the tests of them
never reach the network."""

from __future__ import annotations

import hashlib
import re
import socket
import time

import pytest

from catalog.errors import RedirectRefused, RegistryError, RegistryNotAllowed, RegistryServerError
from catalog.registry import OciRegistry
from catalog.registry_transport import HttpTransport
from tests.registry_fixture import SECRET, self_signed_certificate

BLOB = b"apiVersion: tekton.dev/v1\nkind: Task\n"
DIGEST = f"sha256:{hashlib.sha256(BLOB).hexdigest()}"


def redirecting_to(location: str):
    def answer(request):
        return 307, {"Location": location}, b""

    return answer


@pytest.mark.parametrize("host", ["127.0.0.2", "localhost", "[::1]"])
def test_a_redirect_to_another_loopback_port_is_refused_and_never_sent(fake_registry, listener, host):
    victim = listener(host.strip("[]") if host != "localhost" else "127.0.0.1")
    fake = fake_registry(redirecting_to(f"http://{host}:{victim.port}/admin"))
    reg = OciRegistry(fake.url, backoff=0.01)
    expected = re.escape(f"sent the client to '{host}:{victim.port}', which is neither")
    with pytest.raises(RedirectRefused, match=expected) as info:
        reg.get_blob(f"{fake.host}/tekton/task", DIGEST, len(BLOB))
    assert victim.connections == 0
    assert SECRET.decode() not in str(info.value)
    assert len(fake.requests) == 1  # refused, not retried


@pytest.mark.parametrize("target", ["https://169.254.169.254/latest/meta-data/", "https://10.1.2.3/v2/"])
def test_a_redirect_to_private_and_link_local_addresses_is_refused_before_connecting(fake_registry, target):
    fake = fake_registry(redirecting_to(target))
    reg = OciRegistry(fake.url, backoff=0.01)
    with pytest.raises(RedirectRefused, match="neither this registry nor a blob host the hub allows"):
        reg.get_blob(f"{fake.host}/tekton/task", DIGEST, len(BLOB))
    # Even an allowed blob host is refused at such an address when the registry is at a public one: below.


def public_dns(monkeypatch, names: dict[str, str]) -> None:
    """Make names resolve as given (the registry and its blob host sit behind a proxy on loopback)."""
    real = socket.getaddrinfo

    def getaddrinfo(host, *args, **kwargs):
        if host in names:
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (names[host], 0))]
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)


def proxied_registry(fake_registry, blob_host: str):
    """A proxy on loopback standing for registry.test (which redirects blobs to blob_host) and blob_host."""

    def answer(request):
        if request.path.startswith("http://registry.test/"):
            return 307, {"Location": f"http://{blob_host}/blob"}, b""
        return 200, {}, BLOB

    proxy = fake_registry(answer)
    transport = HttpTransport(proxies={"http": proxy.url})
    reg = OciRegistry(
        "registry.test", insecure=True, transport=transport, redirect_hosts=frozenset({blob_host}), backoff=0.01
    )
    return proxy, reg


def test_an_allowed_blob_host_at_a_private_address_is_refused_when_the_registry_is_public(fake_registry, monkeypatch):
    public_dns(monkeypatch, {"registry.test": "8.8.8.8", "blobs.test": "10.1.2.3"})
    proxy, reg = proxied_registry(fake_registry, "blobs.test")
    with pytest.raises(RedirectRefused, match=r"blobs\.test is at 10\.1\.2\.3, not a public address"):
        reg.get_blob("registry.test/tekton/task", DIGEST, len(BLOB))
    assert [r.path for r in proxy.requests] == [f"http://registry.test/v2/tekton/task/blobs/{DIGEST}"]


def test_an_allowed_blob_host_at_a_public_address_is_followed(fake_registry, monkeypatch):
    public_dns(monkeypatch, {"registry.test": "8.8.8.8", "blobs.test": "8.8.4.4"})
    proxy, reg = proxied_registry(fake_registry, "blobs.test")
    assert reg.get_blob("registry.test/tekton/task", DIGEST, len(BLOB)) == BLOB
    assert [r.path for r in proxy.requests][-1] == "http://blobs.test/blob"


def test_a_next_page_on_another_host_is_refused(fake_registry, listener):
    victim = listener("127.0.0.2")
    next_page = f'<http://127.0.0.2:{victim.port}/v2/tekton/task/tags/list?last=1>; rel="next"'
    fake = fake_registry(lambda request: (200, {"Link": next_page}, b'{"name": "tekton/task", "tags": ["1"]}'))
    reg = OciRegistry(fake.url, backoff=0.01)
    with pytest.raises(RedirectRefused, match="a listing's pages stay on the registry"):
        reg.list_tags(f"{fake.host}/tekton/task")
    assert victim.connections == 0


def test_the_error_body_of_a_blob_host_is_not_quoted(fake_registry):
    storage = fake_registry(lambda request: (404, {}, SECRET))
    fake = fake_registry(redirecting_to(f"{storage.url}/blob"))
    reg = OciRegistry(fake.url, backoff=0.01, redirect_hosts=frozenset({storage.host}))
    with pytest.raises(RegistryError) as info:
        reg.get_blob(f"{fake.host}/tekton/task", DIGEST, len(BLOB))
    assert len(storage.requests) == 1
    assert SECRET.decode() not in str(info.value)
    assert "Not Found" in str(info.value)


def test_a_registry_named_by_a_client_at_a_loopback_address_is_refused(fake_registry):
    fake = fake_registry(lambda request: (200, {}, BLOB))
    reg = OciRegistry(fake.url, public_only=True)
    with pytest.raises(RegistryNotAllowed, match=r"127\.0\.0\.1 is at 127\.0\.0\.1, not a public address"):
        reg.get_blob(f"{fake.host}/tekton/task", DIGEST, len(BLOB))
    assert fake.requests == []


def test_a_token_realm_at_a_private_address_gets_no_credentials(fake_registry, monkeypatch):
    public_dns(monkeypatch, {"registry.test": "8.8.8.8", "auth.test": "169.254.169.254"})
    challenge = 'Bearer realm="http://auth.test/token",service="registry.test"'
    proxy = fake_registry(lambda request: (401, {"WWW-Authenticate": challenge}, b""))
    reg = OciRegistry(
        "registry.test",
        insecure=True,
        username="alice",
        password="s3cret",
        transport=HttpTransport(proxies={"http": proxy.url}),
    )
    with pytest.raises(RedirectRefused, match=r"auth\.test is at 169\.254\.169\.254, not a public address"):
        reg.list_tags("registry.test/tekton/task")
    assert [r.path for r in proxy.requests] == ["http://registry.test/v2/tekton/task/tags/list"]


# -- retries and proxies ------------------------------------------------------------------------------------------


def test_retry_after_of_a_429_is_honoured(fake_registry):
    seen: list[float] = []

    def answer(request):
        seen.append(time.monotonic())
        if len(seen) == 1:
            return 429, {"Retry-After": "1"}, b""
        return 200, {}, b'{"name": "tekton/task", "tags": ["1.0"]}'

    fake = fake_registry(answer)
    reg = OciRegistry(fake.url, backoff=0.01, attempts=2)
    assert reg.list_tags(f"{fake.host}/tekton/task") == ["1.0"]
    assert seen[1] - seen[0] >= 1.0  # waited as asked, not the 0.01 s backoff


def test_a_retry_after_past_the_deadline_gives_up_at_once(fake_registry):
    fake = fake_registry(lambda request: (503, {"Retry-After": "3600"}, b""))
    reg = OciRegistry(fake.url, backoff=0.01, attempts=3, deadline=5)
    with pytest.raises(RegistryServerError, match="asked to retry after 3600 s, past the 5 s deadline"):
        reg.list_tags(f"{fake.host}/tekton/task")
    assert len(fake.requests) == 1


def test_plain_http_goes_through_an_https_proxy(fake_registry, tmp_path):
    cert, key = self_signed_certificate(tmp_path)
    proxy = fake_registry(lambda request: (200, {}, b'{"name": "tekton/task", "tags": ["1.0"]}'), tls=(cert, key))
    transport = HttpTransport(tls_verify=str(cert), proxies={"http": proxy.url})
    assert proxy.url.startswith("https://")
    reg = OciRegistry("registry.internal:5000", insecure=True, transport=transport)
    assert reg.list_tags("registry.internal:5000/tekton/task") == ["1.0"]
    assert [r.path for r in proxy.requests] == ["http://registry.internal:5000/v2/tekton/task/tags/list"]
