"""Registry clients and resolvers as the hub and its command line build them, from the settings."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from catalog.blobcache import BlobCache, CachedRegistry
from catalog.errors import InvalidRequest
from catalog.models import Catalog
from catalog.publish import bundle_target
from catalog.queries import CatalogIndex
from catalog.registry import OciRegistry, Registry
from catalog.resolver import BundleResolver, HubResolver, Resolved, resolver_for
from catalog.sync import OCI
from hub.config import Settings
from hub.credentials import CredentialStore

if TYPE_CHECKING:
    from runner.local.podman_pod import ContainerMode

RESOLVERS = ("bundles", "hub", "taskhub")


def credential_store(settings: Settings, engine: Engine | None) -> CredentialStore:
    """The registry logins kept in engine's database (none without one), sealed with the settings' secrets key."""
    return CredentialStore(engine, settings.data_dir, settings.secrets_key)


def local_containers(settings: Settings, engine: Engine | None) -> tuple[ContainerMode | None, str]:
    """How the local backend runs containers as the settings ask (TASKHUB_LOCAL_CONTAINERS, TASKHUB_IMAGE_MAP),
    images pulled with the registry credentials of the hub; and one line saying so."""
    from runner.backends import local_containers as choose

    return choose(
        settings.local_containers,
        settings.data_dir / "podman",
        settings.image_map,
        credential_store(settings, engine).get,
        _hosts(settings.insecure_registries),
    )


def _hosts(setting: str) -> frozenset[str]:
    return frozenset(h.strip() for h in setting.split(",") if h.strip())


def _oci_client(
    settings: Settings, engine: Engine | None, host: str, credentials: tuple[str, str] | None, **limits: Any
) -> OciRegistry:
    """A client for host with the given credentials or those stored for it, plain HTTP where configured."""
    username, password = credentials or credential_store(settings, engine).get(host) or (None, None)
    return OciRegistry(
        host,
        username=username,
        password=password,
        insecure=host in _hosts(settings.insecure_registries),
        redirect_hosts=_hosts(settings.registry_redirect_hosts),
        **limits,
    )


def registry_client(
    settings: Settings, engine: Engine | None, host: str, credentials: tuple[str, str] | None = None
) -> Registry:
    """A client for host, with the given credentials or those stored in engine's database, caching blobs in the
    data dir."""
    client = _oci_client(settings, engine, host, credentials)
    return CachedRegistry(client, BlobCache(settings.data_dir / "blobs", settings.blob_cache_bytes))


def _resolve_client(settings: Settings, engine: Engine, host: str, *, public_only: bool) -> Registry:
    """A client that gives up within settings.resolve_timeout: a resolve waits on a person or a cluster."""
    budget = settings.resolve_timeout
    return _oci_client(
        settings,
        engine,
        host,
        None,
        public_only=public_only,
        attempts=2,
        backoff=0.1,
        connect_timeout=budget / 3,
        read_timeout=budget / 2,
        deadline=budget * 0.9,  # the answer, an error included, must reach the client within the budget
    )


def publish_allowed(settings: Settings, session: Session, target: str) -> bool:
    """Whether the publish API may push to target (host[:port]/prefix): under a registry added to the hub, or under
    one of settings.publish_registries."""
    host, prefix = bundle_target(target)
    places = set(_hosts(settings.publish_registries))
    places.update(session.scalars(select(Catalog.source).where(Catalog.provider == OCI)))
    for place in places:
        place_host, _, place_prefix = place.rstrip("/").partition("/")
        if place_host == host and (not place_prefix or f"{prefix}/".startswith(f"{place_prefix}/")):
            return True
    return False


class RegistryAllowlist:
    """The registry hosts resolve requests may reach: configured, or the hub's registries (re-read every 5 s)."""

    def __init__(self, settings: Settings, engine: Engine, refresh: float = 5.0) -> None:
        configured = _hosts(settings.resolve_registries)
        self.any = "*" in configured
        self.configured = configured - {"*"}
        self.engine, self.refresh = engine, refresh
        self._hosts: set[str] = set()
        self._read_at = float("-inf")

    def __call__(self, host: str) -> bool:
        return self.any or self.named(host)

    def named(self, host: str) -> bool:
        """Whether the operator named host (configured, or a registry added to the hub), not just allowed "*"."""
        if host in self.configured:
            return True
        if self.configured and not self.any:
            return False
        if time.monotonic() - self._read_at > self.refresh:
            with Session(self.engine) as session:
                sources = session.scalars(select(Catalog.source).where(Catalog.provider == OCI))
                self._hosts = {bundle_target(source)[0] for source in sources}
            self._read_at = time.monotonic()
        return host in self._hosts


class Resolvers:
    """The hub's two resolvers, built once per process and shared by its threads."""

    def __init__(self, settings: Settings, engine: Engine) -> None:
        clients: dict[str, Registry] = {}
        lock = threading.Lock()
        allowlist = RegistryAllowlist(settings, engine)

        def client(host: str) -> Registry:
            with lock:
                if host not in clients:
                    # A registry only "*" allows was named by a client: it must be at a public address.
                    clients[host] = _resolve_client(settings, engine, host, public_only=not allowlist.named(host))
                return clients[host]

        self.registries: Callable[[str], Registry] = client
        self.bundles = BundleResolver(
            client,
            allowlist,
            settings.data_dir,
            tag_ttl=settings.resolve_tag_ttl,
            blob_cache_bytes=settings.blob_cache_bytes,
            memory_bytes=settings.resolve_cache_bytes,
        )
        self.hub = HubResolver(
            default_catalog=settings.default_catalog,
            artifact_default_catalog=settings.artifact_hub_default_catalog,
        )
        self.engine = engine

    def resolve(self, resolver: Any, params: Mapping[str, Any], base_url: str) -> Resolved:
        """Run the named resolver ("bundles", "hub", or "taskhub": whichever of the two the params are for, as
        `taskhub resolver serve` answers it) on the params; the hub resolver reads this hub's index and names it
        by base_url."""
        if resolver not in RESOLVERS:
            raise InvalidRequest(f"resolver must be one of: {', '.join(RESOLVERS)}", reason="invalid-params")
        if resolver == "taskhub":
            resolver = resolver_for(params)
        if resolver == "bundles":
            return self.bundles.resolve(params)
        with Session(self.engine) as session:
            return self.hub.resolve(CatalogIndex(session), params, base_url)
