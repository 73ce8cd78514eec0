"""The OCI registry client against a real docker-registry: round trips, auth, faults, tampering, the blob cache.
Bearer tokens, 5xx answers and unsized bodies use a scripted fake, because the real registry cannot show them here."""

import base64
import hashlib
import json
import re
import time

import pytest

from catalog.blobcache import BlobCache, CachedRegistry
from catalog.errors import (
    BlobDigestMismatch,
    BlobTooLarge,
    InsecureRegistry,
    InvalidReference,
    RegistryAuthError,
    RegistryNotFound,
    RegistryServerError,
    RegistryUnreachable,
)
from catalog.references import Reference, parse_reference
from catalog.registry import MANIFEST_MEDIA_TYPES, OciRegistry
from catalog.registry_transport import HttpTransport

OCI_MANIFEST, _, DOCKER_MANIFEST, _ = MANIFEST_MEDIA_TYPES
TASK_YAML = b"apiVersion: tekton.dev/v1\nkind: Task\nmetadata:\n  name: git-clone\n"


class CountingTransport(HttpTransport):
    """A transport that records every request it sends, including ones that never connect."""

    def __init__(self) -> None:
        super().__init__()
        self.sent: list[str] = []

    def send(self, method, url, headers, body=None, **kwargs):
        self.sent.append(f"{method} {url}")
        return super().send(method, url, headers, body, **kwargs)


def sha256(data: bytes) -> str:
    return f"sha256:{hashlib.sha256(data).hexdigest()}"


def client(server, **kwargs) -> OciRegistry:
    kwargs.setdefault("username", getattr(server, "username", None))
    kwargs.setdefault("password", getattr(server, "password", None))
    return OciRegistry(server.url, backoff=0.01, **kwargs)


def push_bundle(reg: OciRegistry, ref: str, layer: bytes = TASK_YAML, media_type: str = OCI_MANIFEST) -> bytes:
    """Push a one-layer artifact the way a bundle is built; returns the manifest bytes."""
    repo = parse_reference(ref).name
    config = reg.push_blob(repo, b"{}")
    layer_digest = reg.push_blob(repo, layer)
    manifest = {
        "schemaVersion": 2,
        "mediaType": media_type,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config, "size": 2},
        "layers": [{"mediaType": "application/vnd.tekton.task+yaml", "digest": layer_digest, "size": len(layer)}],
    }
    raw = json.dumps(manifest, indent=1).encode()
    assert reg.push_manifest(ref, raw, media_type) == sha256(raw)
    return raw


# -- round trips on the real registry ----------------------------------------------------------------------------


def test_pushed_manifest_and_blob_read_back_byte_for_byte(registry):
    reg = client(registry)
    raw = push_bundle(reg, f"{registry.host}/tekton/tasks/git-clone:0.9")
    by_tag = reg.get_manifest(f"{registry.host}/tekton/tasks/git-clone:0.9")
    assert by_tag == (raw, OCI_MANIFEST, sha256(raw))
    assert reg.get_manifest(f"{registry.host}/tekton/tasks/git-clone@{sha256(raw)}") == by_tag
    assert reg.head_manifest(f"{registry.host}/tekton/tasks/git-clone:0.9") == sha256(raw)
    layer = json.loads(raw)["layers"][0]
    assert reg.get_blob(f"{registry.host}/tekton/tasks/git-clone", layer["digest"], layer["size"]) == TASK_YAML


def test_docker_schema2_manifest_keeps_its_media_type(registry):
    reg = client(registry)
    raw = push_bundle(reg, f"{registry.host}/legacy/task:1", media_type=DOCKER_MANIFEST)
    assert reg.get_manifest(f"{registry.host}/legacy/task:1") == (raw, DOCKER_MANIFEST, sha256(raw))


def test_push_blob_skips_the_upload_when_the_registry_has_it(registry):
    transport = CountingTransport()
    reg = client(registry, transport=transport)
    repo = f"{registry.host}/tekton/tasks/git-clone"
    assert not reg.blob_exists(repo, sha256(TASK_YAML))
    assert reg.push_blob(repo, TASK_YAML) == sha256(TASK_YAML)
    assert reg.blob_exists(repo, sha256(TASK_YAML))
    transport.sent.clear()
    assert reg.push_blob(repo, TASK_YAML) == sha256(TASK_YAML)
    assert [line.split()[0] for line in transport.sent] == ["HEAD"]


def test_tags_and_repositories_are_listed(registry):
    reg = client(registry)
    for ref in ("tekton/tasks/git-clone:0.9", "tekton/tasks/git-clone:0.10", "tekton/pipelines/build:1.0"):
        push_bundle(reg, f"{registry.host}/{ref}")
    assert sorted(reg.list_tags(f"{registry.host}/tekton/tasks/git-clone")) == ["0.10", "0.9"]
    assert sorted(reg.list_repositories()) == [f"{registry.host}/tekton/pipelines/build",
                                               f"{registry.host}/tekton/tasks/git-clone"]  # fmt: skip


def test_what_does_not_exist_is_not_found(registry):
    reg = client(registry)
    push_bundle(reg, f"{registry.host}/tekton/task:1")
    with pytest.raises(RegistryNotFound, match="MANIFEST_UNKNOWN"):
        reg.get_manifest(f"{registry.host}/tekton/task:2")
    with pytest.raises(RegistryNotFound, match="NAME_UNKNOWN"):
        reg.list_tags(f"{registry.host}/tekton/missing")
    with pytest.raises(RegistryNotFound, match="BLOB_UNKNOWN"):
        reg.get_blob(f"{registry.host}/tekton/task", sha256(b"never pushed"), None)
    assert reg.head_manifest(f"{registry.host}/tekton/task:2") is None


# -- faults -------------------------------------------------------------------------------------------------------


def test_stopped_registry_is_unreachable_after_the_configured_attempts(registry):
    transport = CountingTransport()
    reg = client(registry, transport=transport, attempts=3)
    repo = f"{registry.host}/tekton/task"
    reg.push_blob(repo, TASK_YAML)
    registry.stop()
    transport.sent.clear()
    with pytest.raises(RegistryUnreachable, match=r"connection refused \(gave up after 3 attempts\)"):
        reg.get_blob(repo, sha256(TASK_YAML), len(TASK_YAML))
    assert len(transport.sent) == 3
    registry.start()
    assert reg.get_blob(repo, sha256(TASK_YAML), len(TASK_YAML)) == TASK_YAML


def test_tampered_blob_is_refused_with_both_digests(registry):
    reg = client(registry)
    repo = f"{registry.host}/tekton/task"
    digest = reg.push_blob(repo, TASK_YAML)
    tampered = TASK_YAML.replace(b"git-clone", b"bad-clone")
    registry.blob_path(digest).write_bytes(tampered)
    with pytest.raises(BlobDigestMismatch, match=f"expected {digest} .*, got {sha256(tampered)}") as caught:
        reg.get_blob(repo, digest, len(TASK_YAML))
    assert (caught.value.expected, caught.value.actual) == (digest, sha256(tampered))


def test_blob_longer_than_its_descriptor_is_refused_while_downloading(registry):
    reg = client(registry)
    repo = f"{registry.host}/tekton/task"
    digest = reg.push_blob(repo, TASK_YAML)
    registry.blob_path(digest).write_bytes(TASK_YAML + b"  extra: line\n" * 1000)
    with pytest.raises(BlobDigestMismatch, match=f"served {len(TASK_YAML) + 14000} bytes, its descriptor says"):
        reg.get_blob(repo, digest, len(TASK_YAML))


def test_tampered_manifest_fetched_by_digest_is_refused(registry):
    reg = client(registry)
    raw = push_bundle(reg, f"{registry.host}/tekton/task:1")
    registry.blob_path(sha256(raw)).write_bytes(raw.replace(b'"layers"', b'"Layers"'))
    with pytest.raises(BlobDigestMismatch, match=sha256(raw)):
        reg.get_manifest(f"{registry.host}/tekton/task@{sha256(raw)}")


def test_oversized_blob_is_refused_before_download(registry):
    transport = CountingTransport()
    reg = client(registry, transport=transport)
    repo = f"{registry.host}/tekton/task"
    digest = reg.push_blob(repo, TASK_YAML)
    transport.sent.clear()
    with pytest.raises(BlobTooLarge, match=f"descriptor says {len(TASK_YAML)} bytes, over the 10 allowed"):
        reg.get_blob(repo, digest, len(TASK_YAML), max_bytes=10)
    assert transport.sent == []
    with pytest.raises(BlobTooLarge, match=f": {len(TASK_YAML)} bytes, over the 10 allowed"):  # from Content-Length
        reg.get_blob(repo, digest, None, max_bytes=10)


def test_unsized_blob_is_cut_off_while_downloading(fake_registry):
    fake = fake_registry(lambda request: (200, {}, (b"x" * 1000 for _ in range(100))))
    with pytest.raises(BlobTooLarge, match="more, over the 5000 allowed"):
        client(fake).get_blob(f"{fake.host}/big/blob", sha256(b"x" * 100_000), None, max_bytes=5000)


def test_5xx_is_retried_up_to_the_configured_attempts(fake_registry):
    answers = [503, 502, 200]
    fake = fake_registry(lambda request: (answers.pop(0), {}, b'{"tags": ["1.0"]}'))
    assert client(fake, attempts=3).list_tags(f"{fake.host}/tekton/task") == ["1.0"]
    assert len(fake.requests) == 3

    down = fake_registry(lambda request: (503, {}, b'{"errors": [{"code": "UNAVAILABLE", "message": "busy"}]}'))
    with pytest.raises(RegistryServerError, match=r"HTTP 503: UNAVAILABLE: busy \(gave up after 2 attempts\)"):
        client(down, attempts=2).list_tags(f"{down.host}/tekton/task")
    assert len(down.requests) == 2


def stall(request):
    time.sleep(0.5)
    return 200, {}, b'{"tags": []}'


def test_stalled_registry_times_out_after_the_configured_attempts(fake_registry):
    fake = fake_registry(stall)
    with pytest.raises(RegistryUnreachable, match=r"timed out \(gave up after 2 attempts\)"):
        client(fake, attempts=2, read_timeout=0.1).list_tags(f"{fake.host}/tekton/task")
    assert len(fake.requests) == 2


def test_deadline_ends_the_retries(fake_registry):
    fake = fake_registry(stall)
    with pytest.raises(RegistryUnreachable, match=r"timed out \(gave up after 1 attempts\)"):
        client(fake, attempts=3, deadline=0.1).list_tags(f"{fake.host}/tekton/task")
    assert len(fake.requests) == 1


# -- the blob cache -----------------------------------------------------------------------------------------------


def test_cache_serves_the_second_get_without_any_request(registry, tmp_path):
    transport = CountingTransport()
    reg = client(registry, transport=transport)
    repo = f"{registry.host}/tekton/task"
    digest = reg.push_blob(repo, TASK_YAML)
    cached = CachedRegistry(reg, BlobCache(tmp_path / "blobs"))
    transport.sent.clear()
    assert cached.get_blob(repo, digest, len(TASK_YAML)) == TASK_YAML
    assert len(transport.sent) == 1
    registry.stop()
    assert cached.get_blob(repo, digest, len(TASK_YAML)) == TASK_YAML
    assert len(transport.sent) == 1
    assert (tmp_path / "blobs" / "sha256" / digest.split(":")[1]).read_bytes() == TASK_YAML


def test_corrupted_cache_file_is_detected_and_fetched_again(registry, tmp_path):
    transport = CountingTransport()
    reg = client(registry, transport=transport)
    repo = f"{registry.host}/tekton/task"
    digest = reg.push_blob(repo, TASK_YAML)
    cache = BlobCache(tmp_path / "blobs")
    cached = CachedRegistry(reg, cache)
    cached.get_blob(repo, digest, len(TASK_YAML))
    cache.path(digest).write_bytes(b"bit rot")
    transport.sent.clear()
    assert cached.get_blob(repo, digest, len(TASK_YAML)) == TASK_YAML
    assert [line.split()[0] for line in transport.sent] == ["GET"]
    assert cache.path(digest).read_bytes() == TASK_YAML
    assert [p.name for p in cache.path(digest).parent.iterdir()] == [digest.split(":")[1]]  # no temp files left


def test_cache_keeps_to_its_size_dropping_the_least_recently_used(tmp_path):
    import os

    cache = BlobCache(tmp_path / "blobs", max_bytes=300)
    blobs = {name: name.encode() * 100 for name in "abc"}  # 100 bytes each
    for age, data in enumerate(blobs.values()):
        cache.put(sha256(data), data)
        os.utime(cache.path(sha256(data)), (1000 + age, 1000 + age))  # a, then b, then c: a is the oldest
    assert cache.get(sha256(blobs["a"])) == blobs["a"]  # a is read: now b is the least recently used
    cache.put(sha256(b"d" * 100), b"d" * 100)
    kept = {name for name, data in blobs.items() if cache.get(sha256(data)) is not None}
    assert kept == {"a", "c"} and cache.get(sha256(b"d" * 100)) == b"d" * 100
    assert sum(p.stat().st_size for p in (tmp_path / "blobs").rglob("*") if p.is_file()) <= 300


def test_cache_never_stores_bytes_under_the_wrong_digest(tmp_path):
    with pytest.raises(BlobDigestMismatch):
        BlobCache(tmp_path).put(sha256(b"one thing"), b"another")
    assert not any(tmp_path.rglob("*"))


# -- auth ---------------------------------------------------------------------------------------------------------


def test_basic_auth_pushes_and_lists(auth_registry):
    reg = client(auth_registry)
    raw = push_bundle(reg, f"{auth_registry.host}/tekton/task:1")
    assert reg.get_manifest(f"{auth_registry.host}/tekton/task:1").digest == sha256(raw)
    assert reg.list_tags(f"{auth_registry.host}/tekton/task") == ["1"]
    assert reg.list_repositories() == [f"{auth_registry.host}/tekton/task"]


def test_wrong_password_is_refused_without_retrying(auth_registry):
    transport = CountingTransport()
    reg = client(auth_registry, password="wrong", transport=transport)
    with pytest.raises(RegistryAuthError, match=r"denied access \(HTTP 401\): UNAUTHORIZED: authentication required"):
        reg.list_tags(f"{auth_registry.host}/tekton/task")
    assert len(transport.sent) == 2  # the challenge, then the credentials once


def test_no_credentials_is_an_auth_error_and_the_catalog_is_refused(auth_registry):
    reg = client(auth_registry, username=None, password=None)
    with pytest.raises(RegistryAuthError, match="no credentials were given"):
        reg.get_manifest(f"{auth_registry.host}/tekton/task:1")
    with pytest.raises(RegistryAuthError, match="refuses GET /v2/_catalog"):
        reg.list_repositories()


def bearer_registry(fake_registry, tokens_issued):
    """A fake registry whose /token issues a token for alice:s3cret, and whose /v2/ API wants that token."""
    good = "Basic " + base64.b64encode(b"alice:s3cret").decode()

    def handle(request):
        if request.path.startswith("/token"):
            if request.headers.get("authorization") != good:
                return 401, {}, b'{"details": "incorrect username or password"}'
            tokens_issued.append(request.path)
            return 200, {"Content-Type": "application/json"}, b'{"token": "T0K3N", "expires_in": 300}'
        if request.headers.get("authorization") == "Bearer T0K3N":
            return 200, {"Content-Type": "application/json"}, b'{"name": "tekton/task", "tags": ["1.0", "2.0"]}'
        challenge = f'Bearer realm="{fake.url}/token",service="fake-registry",scope="repository:tekton/task:pull"'
        return 401, {"WWW-Authenticate": challenge}, b'{"errors": [{"code": "UNAUTHORIZED", "message": "token"}]}'

    fake = fake_registry(handle)
    return fake


def test_bearer_token_is_fetched_once_and_reused(fake_registry):
    issued: list[str] = []
    fake = bearer_registry(fake_registry, issued)
    reg = client(fake, username="alice", password="s3cret")
    assert reg.list_tags(f"{fake.host}/tekton/task") == ["1.0", "2.0"]
    assert reg.list_tags(f"{fake.host}/tekton/task") == ["1.0", "2.0"]
    assert issued == ["/token?service=fake-registry&scope=repository%3Atekton%2Ftask%3Apull"]
    assert [r.path.split("?")[0] for r in fake.requests] == ["/v2/tekton/task/tags/list", "/token"] + [
        "/v2/tekton/task/tags/list"
    ] * 2


def test_bearer_token_service_refusing_the_password_is_an_auth_error(fake_registry):
    fake = bearer_registry(fake_registry, [])
    with pytest.raises(RegistryAuthError, match=r"token service .* refused the credentials.*incorrect username"):
        client(fake, username="alice", password="wrong").list_tags(f"{fake.host}/tekton/task")


def test_token_realm_over_plain_http_elsewhere_is_refused(fake_registry):
    realm = 'Bearer realm="http://auth.example.com/token",service="x"'
    fake = fake_registry(lambda request: (401, {"WWW-Authenticate": realm}, b""))
    transport = CountingTransport()
    with pytest.raises(InsecureRegistry, match=re.escape("auth.example.com")):
        client(fake, username="alice", password="s3cret", transport=transport).list_tags(f"{fake.host}/tekton/task")
    assert transport.sent == [f"GET {fake.url}/v2/tekton/task/tags/list"]


# -- addresses and references -------------------------------------------------------------------------------------


def test_plain_http_is_only_for_loopback_unless_insecure():
    transport = CountingTransport()
    with pytest.raises(InsecureRegistry, match=re.escape("registry.example.com")):
        OciRegistry("http://registry.example.com:5000", transport=transport)
    assert transport.sent == []
    assert OciRegistry("http://registry.example.com:5000", insecure=True).base_url == "http://registry.example.com:5000"
    assert OciRegistry("registry.example.com").base_url == "https://registry.example.com"
    for loopback in ("127.0.0.1:5000", "127.1.2.3:5000", "localhost:5000", "[::1]:5000"):
        assert OciRegistry(loopback).base_url == f"http://{loopback}"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("ghcr.io/tektoncd/catalog/git-clone:0.9", Reference("ghcr.io", "tektoncd/catalog/git-clone", "0.9")),
        ("localhost:5000/a/b", Reference("localhost:5000", "a/b")),
        (f"[::1]:5000/a@{'sha256:' + 'a' * 64}", Reference("[::1]:5000", "a", None, "sha256:" + "a" * 64)),
        (f"r.io/a_b/c-d:v1.0@{'sha256:' + 'b' * 64}", Reference("r.io", "a_b/c-d", "v1.0", "sha256:" + "b" * 64)),
    ],
)
def test_references_parse(text, expected):
    assert parse_reference(text) == expected
    assert str(parse_reference(text)) == text


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("ubuntu:22.04", "expected host"),
        ("tektoncd/catalog:0.9", "'tektoncd' is not a registry host"),
        ("ghcr.io", "expected host"),
        ("ghcr.io/Tekton/task", "not a repository path"),
        ("ghcr.io/tekton/task:bad tag", "not a valid tag"),
        ("ghcr.io/tekton/task:", "not a valid tag"),
        ("ghcr.io/tekton/task@sha256:abc", "the digest must be"),
        ("ghcr.io//task", "not a repository path"),
        ("-bad-.io/task", "not a valid host"),
        ("ghcr.io/tekton/task:t\u00e0g", "not a valid tag"),
        (f"ghcr.io/tekton/task@sha256:{'a' * 64}\n", "the digest must be"),
    ],
)
def test_malformed_references_are_refused(text, reason):
    with pytest.raises(InvalidReference, match=re.escape(reason)):
        parse_reference(text)


def test_references_must_name_this_registry_and_a_manifest():
    reg = OciRegistry("127.0.0.1:5000", transport=CountingTransport())
    with pytest.raises(InvalidReference, match=re.escape("this client talks to 127.0.0.1:5000")):
        reg.get_manifest("ghcr.io/tekton/task:1")
    with pytest.raises(InvalidReference, match="add a :tag or an @digest"):
        reg.get_manifest("127.0.0.1:5000/tekton/task")
    with pytest.raises(InvalidReference, match="a repository name"):
        reg.list_tags("127.0.0.1:5000/tekton/task:1")
