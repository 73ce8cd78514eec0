"""A content-addressed blob cache on disk, and `CachedRegistry`, which serves blobs from it.

The cache is shared by every repository and registry: a digest names the same bytes everywhere. That also means
a blob is served from the cache to anyone who asks for its digest, so access checks belong to the manifest that
names it, which is always fetched from the registry.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from pathlib import Path

from catalog.errors import BlobDigestMismatch, BlobTooLarge
from catalog.references import Reference, check_content, check_digest
from catalog.registry import DEFAULT_MAX_BLOB_BYTES, Manifest, Registry

log = logging.getLogger(__name__)


class BlobCache:
    """Blobs in a directory, one file per digest (`<algorithm>/<hex>`), written atomically, checked on every read.

    With max_bytes, the blobs least recently used (a read touches a file's mtime) are removed when a write takes
    the directory past that size; processes sharing the directory each keep their own running total, so it may
    overshoot by what the others wrote since this one last looked.
    """

    def __init__(self, directory: str | os.PathLike[str], max_bytes: int | None = None) -> None:
        self.directory = Path(directory)
        self.max_bytes = max_bytes
        self._size: int | None = None  # bytes in the directory, counted at the first write

    def path(self, digest: str) -> Path:
        algorithm = check_digest(digest)
        return self.directory / algorithm / digest.split(":", 1)[1]

    def get(self, digest: str, max_bytes: int | None = None) -> bytes | None:
        """The blob, or None if it is not cached (a corrupt file is removed and counts as not cached)."""
        path = self.path(digest)
        try:
            if max_bytes is not None and path.stat().st_size > max_bytes:
                raise BlobTooLarge(f"cached blob {digest} is over the {max_bytes} bytes allowed", limit=max_bytes)
            data = path.read_bytes()
        except FileNotFoundError:
            return None
        try:
            check_content(data, digest, None, f"cached blob {path}")
        except BlobDigestMismatch as exc:
            log.warning("%s; removed, it will be downloaded again", exc)
            path.unlink(missing_ok=True)
            return None
        if self.max_bytes is not None:
            with contextlib.suppress(OSError):
                os.utime(path)  # recently used: evicted last
        return data

    def put(self, digest: str, data: bytes) -> None:
        """Store `data` under `digest` (which it must match); readers never see a partly written file. A cache
        that cannot take it (a full disk, a read-only one) is logged and skipped: the caller has the bytes."""
        check_content(data, digest, None, "blob to cache")
        try:
            self._write(digest, data)
        except OSError as exc:
            log.warning("could not keep blob %s in the cache %s: %s", digest, self.directory, exc)

    def _write(self, digest: str, data: bytes) -> None:
        path = self.path(digest)
        # A name of this thread's own (nothing else writes it at the same time) saves mkstemp's retries; the
        # directory is made on the first write into it only, not checked on every write.
        temporary = path.parent / f".{path.name[:16]}.{os.getpid()}.{threading.get_ident()}.part"
        try:
            fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        except FileNotFoundError:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            with os.fdopen(fd, "wb") as file:
                file.write(data)
            os.replace(temporary, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temporary)
            raise
        if self.max_bytes is not None:
            self._evict(len(data), keep=path)

    def _blobs(self) -> list[tuple[float, int, Path]]:
        found = []
        for algorithm in self.directory.iterdir() if self.directory.is_dir() else []:
            for entry in os.scandir(algorithm):
                if entry.is_file() and not entry.name.startswith("."):
                    info = entry.stat()
                    found.append((info.st_mtime, info.st_size, Path(entry.path)))
        return found

    def _evict(self, added: int, keep: Path) -> None:
        """Remove the least recently used blobs until the directory is within max_bytes again."""
        assert self.max_bytes is not None
        if self._size is None:
            self._size = sum(size for _, size, _ in self._blobs())
        else:
            self._size += added
        if self._size <= self.max_bytes:
            return
        blobs = sorted(self._blobs())
        self._size = sum(size for _, size, _ in blobs)
        for _, size, path in blobs:
            if self._size <= self.max_bytes:
                break
            if path == keep:
                continue
            with contextlib.suppress(OSError):
                path.unlink()
                self._size -= size


class CachedRegistry:
    """A `Registry` that keeps each blob it downloads or uploads in a `BlobCache`, so none is downloaded twice.

    Manifests, tags and listings always come from the registry: tags move, and a manifest is small.
    """

    def __init__(self, registry: Registry, cache: BlobCache) -> None:
        self.registry = registry
        self.cache = cache

    def get_blob(self, repo: str, digest: str, size: int | None, max_bytes: int = DEFAULT_MAX_BLOB_BYTES) -> bytes:
        what = f"get blob {digest} of {repo}"
        if size is not None and size > max_bytes:
            raise BlobTooLarge(
                f"{what}: its descriptor says {size} bytes, over the {max_bytes} allowed", limit=max_bytes
            )
        data = self.cache.get(digest, max_bytes)
        if data is None:
            data = self.registry.get_blob(repo, digest, size, max_bytes)
            self.cache.put(digest, data)
        elif size is not None and len(data) != size:
            message = f"{what}: its descriptor says {size} bytes, the blob with that digest has {len(data)}"
            raise BlobDigestMismatch(message, expected=digest, actual=digest)
        return data

    def push_blob(self, repo: str, data: bytes, *, check: bool = True) -> str:
        digest = self.registry.push_blob(repo, data, check=check)
        self.cache.put(digest, data)
        return digest

    def get_manifest(self, ref: Reference | str) -> Manifest:
        return self.registry.get_manifest(ref)

    def head_manifest(self, ref: Reference | str) -> str | None:
        return self.registry.head_manifest(ref)

    def blob_exists(self, repo: str, digest: str) -> bool:
        return self.registry.blob_exists(repo, digest)

    def push_manifest(self, ref: Reference | str, raw: bytes, media_type: str) -> str:
        return self.registry.push_manifest(ref, raw, media_type)

    def list_tags(self, repo: str) -> list[str]:
        return self.registry.list_tags(repo)

    def list_repositories(self) -> list[str]:
        return self.registry.list_repositories()
