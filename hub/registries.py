"""Registry clients as the hub and its command line build them: credentials from the store, one blob cache."""

from __future__ import annotations

from catalog.blobcache import BlobCache, CachedRegistry
from catalog.credentials import CredentialStore
from catalog.registry import OciRegistry, Registry
from hub.config import Settings


def credential_store(settings: Settings) -> CredentialStore:
    return CredentialStore(settings.data_dir / "registry-credentials.json")


def registry_client(settings: Settings, host: str, credentials: tuple[str, str] | None = None) -> Registry:
    """A client for host, with the given credentials or those stored for it, caching blobs in the data dir."""
    username, password = credentials or credential_store(settings).get(host) or (None, None)
    insecure = host in {h.strip() for h in settings.insecure_registries.split(",") if h.strip()}
    client = OciRegistry(host, username=username, password=password, insecure=insecure)
    return CachedRegistry(client, BlobCache(settings.data_dir / "blobs"))
