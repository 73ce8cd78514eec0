"""Registry clients and resolvers as the hub and its command line build them, from the settings."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from catalog.blobcache import BlobCache, CachedRegistry
from catalog.errors import InvalidRequest
from catalog.models import Catalog
from catalog.publish import bundle_target
from catalog.queries import CatalogIndex
from catalog.registry import OciRegistry, Registry
from catalog.resolver import BundleResolver, HubResolver, Resolved
from catalog.sync import OCI
from hub.config import Settings
from hub.credentials import CredentialStore

RESOLVERS = ("bundles", "hub")


def credential_store(settings: Settings) -> CredentialStore:
    return CredentialStore(settings.data_dir / "registry-credentials.json")


def _oci_client(settings: Settings, host: str, credentials: tuple[str, str] | None, **limits: Any) -> OciRegistry:
    """A client for host with the given credentials or those stored for it, plain HTTP where configured."""
    username, password = credentials or credential_store(settings).get(host) or (None, None)
    insecure = host in {h.strip() for h in settings.insecure_registries.split(",") if h.strip()}
    return OciRegistry(host, username=username, password=password, insecure=insecure, **limits)


def registry_client(settings: Settings, host: str, credentials: tuple[str, str] | None = None) -> Registry:
    """A client for host, with the given credentials or those stored for it, caching blobs in the data dir."""
    client = _oci_client(settings, host, credentials)
    return CachedRegistry(client, BlobCache(settings.data_dir / "blobs", settings.blob_cache_bytes))


def _resolve_client(settings: Settings, host: str) -> Registry:
    """A client that gives up within settings.resolve_timeout: a resolve waits on a person or a cluster."""
    budget = settings.resolve_timeout
    return _oci_client(
        settings,
        host,
        None,
        attempts=2,
        backoff=0.1,
        connect_timeout=budget / 3,
        read_timeout=budget / 2,
        deadline=budget * 0.9,  # the answer, an error included, must reach the client within the budget
    )


class RegistryAllowlist:
    """The registry hosts resolve requests may reach: configured, or the hub's registries (re-read every 5 s)."""

    def __init__(self, settings: Settings, engine: Engine, refresh: float = 5.0) -> None:
        configured = {h.strip() for h in settings.resolve_registries.split(",") if h.strip()}
        self.any = "*" in configured
        self.configured = configured - {"*"}
        self.engine, self.refresh = engine, refresh
        self._hosts: set[str] = set()
        self._read_at = float("-inf")

    def __call__(self, host: str) -> bool:
        if self.any or host in self.configured:
            return True
        if self.configured:
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

        def client(host: str) -> Registry:
            with lock:
                if host not in clients:
                    clients[host] = _resolve_client(settings, host)
                return clients[host]

        self.registries: Callable[[str], Registry] = client
        self.bundles = BundleResolver(
            client,
            RegistryAllowlist(settings, engine),
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
        """Run the named resolver ("bundles" or "hub") on the params; the hub resolver reads this hub's index and
        names it by base_url."""
        if resolver not in RESOLVERS:
            raise InvalidRequest(f"resolver must be one of: {', '.join(RESOLVERS)}", reason="invalid-params")
        if resolver == "bundles":
            return self.bundles.resolve(params)
        with Session(self.engine) as session:
            return self.hub.resolve(CatalogIndex(session), params, base_url)
