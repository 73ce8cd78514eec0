"""The registry client's HTTP: kept-alive connections shared by threads, connections the registry closed, redirects
(credentials stay with the registry), proxies, and TLS."""

import base64
import hashlib
import threading

import pytest

from catalog.errors import RegistryUnreachable
from catalog.registry import OciRegistry
from catalog.registry_transport import HttpTransport
from tests.catalog.test_registry import TASK_YAML, client, push_bundle
from tests.registry_fixture import self_signed_certificate


def sha256(data: bytes) -> str:
    return f"sha256:{hashlib.sha256(data).hexdigest()}"


def test_requests_reuse_one_kept_connection(registry):
    transport = HttpTransport()
    reg = client(registry, transport=transport)
    ref = f"{registry.host}/tekton/task:1"
    push_bundle(reg, ref)
    for _ in range(20):
        reg.get_manifest(ref)
    assert transport.opened == 1


def test_threads_share_the_client_over_a_few_connections(registry):
    transport = HttpTransport()
    reg = client(registry, transport=transport)
    repo = f"{registry.host}/tekton/task"
    digest = reg.push_blob(repo, TASK_YAML)
    failures: list[BaseException] = []

    def pull() -> None:
        try:
            for _ in range(25):
                assert reg.get_blob(repo, digest, len(TASK_YAML)) == TASK_YAML
        except BaseException as exc:  # reported by the assertion below
            failures.append(exc)

    threads = [threading.Thread(target=pull) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert failures == []
    assert transport.opened <= 9  # one per thread at most (and the push's)


def test_a_kept_connection_the_registry_closed_costs_no_attempt(registry):
    transport = HttpTransport()
    reg = client(registry, transport=transport, attempts=1)
    ref = f"{registry.host}/tekton/task:1"
    raw = push_bundle(reg, ref)
    registry.restart()  # the kept connection is now closed on the registry's side
    assert reg.get_manifest(ref).raw == raw
    assert transport.opened == 2


def test_redirected_blob_is_followed_without_the_credentials(fake_registry):
    good = "Basic " + base64.b64encode(b"alice:s3cret").decode()
    storage = fake_registry(lambda request: (200, {}, TASK_YAML))

    def registry_answer(request):
        if request.headers.get("authorization") != good:
            return 401, {"WWW-Authenticate": 'Basic realm="test"'}, b""
        return 307, {"Location": f"{storage.url}/signed/blob?sig=1"}, b""

    fake = fake_registry(registry_answer)
    reg = OciRegistry(
        fake.url, username="alice", password="s3cret", backoff=0.01, redirect_hosts=frozenset({storage.host})
    )
    blob = reg.get_blob(f"{fake.host}/tekton/task", sha256(TASK_YAML), len(TASK_YAML))
    assert blob == TASK_YAML
    assert [r.path for r in storage.requests] == ["/signed/blob?sig=1"]
    assert "authorization" not in storage.requests[0].headers


def test_plain_http_goes_through_the_configured_proxy(fake_registry):
    proxy = fake_registry(lambda request: (200, {}, b'{"name": "tekton/task", "tags": ["1.0"]}'))
    transport = HttpTransport(proxies={"http": proxy.url})
    reg = OciRegistry("registry.internal:5000", insecure=True, transport=transport)
    assert reg.list_tags("registry.internal:5000/tekton/task") == ["1.0"]
    assert [r.path for r in proxy.requests] == ["http://registry.internal:5000/v2/tekton/task/tags/list"]


def test_hosts_on_no_proxy_are_reached_directly(registry):
    transport = HttpTransport(proxies={"http": "http://127.0.0.1:9", "no": registry.host.split(":")[0]})
    reg = client(registry, transport=transport)
    push_bundle(reg, f"{registry.host}/tekton/task:1")
    assert reg.list_tags(f"{registry.host}/tekton/task") == ["1"]


# -- TLS ----------------------------------------------------------------------------------------------------------


TAGS = (200, {"Content-Type": "application/json"}, b'{"name": "tekton/task", "tags": ["1.0"]}')


def test_https_with_the_given_ca_bundle(fake_registry, tmp_path):
    cert, key = self_signed_certificate(tmp_path)
    fake = fake_registry(lambda request: TAGS, tls=(cert, key))
    reg = OciRegistry(fake.url, tls_verify=str(cert))
    assert reg.base_url.startswith("https://")
    assert reg.list_tags(f"{fake.host}/tekton/task") == ["1.0"]


def test_https_with_an_unknown_certificate_is_refused_without_retrying(fake_registry, tmp_path):
    fake = fake_registry(lambda request: TAGS, tls=self_signed_certificate(tmp_path))
    transport = HttpTransport()
    reg = OciRegistry(fake.url, transport=transport, attempts=3, backoff=0.01)
    with pytest.raises(RegistryUnreachable, match=r"TLS with 127\.0\.0\.1:\d+ failed: .*certificate verify failed"):
        reg.list_tags(f"{fake.host}/tekton/task")
    assert transport.opened == 1
    assert fake.requests == []
    unchecked = OciRegistry(fake.url, tls_verify=False)  # as asked: no verification at all
    assert unchecked.list_tags(f"{fake.host}/tekton/task") == ["1.0"]
