"""The resolver's caches: answers by digest in memory (bounded), tag answers with a TTL, and single flights.

Content named by a digest never changes, so it is kept until the memory bound pushes it out. What a tag points
at may change, so a tag's digest is trusted for a TTL only. Tag answers also go to disk, beside the blob cache,
so the workers of one hub share them; a lock file per key makes concurrent identical misses, in one process or
several, cost one upstream fetch, and never makes another key wait.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from pathlib import Path
from typing import Generic, TypeVar

T = TypeVar("T")


class BoundedCache(Generic[T]):
    """A thread-safe least-recently-used map whose entries' sizes add up to at most max_bytes."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._entries: OrderedDict[str, tuple[T, int]] = OrderedDict()
        self._size = 0
        self._lock = threading.Lock()

    def get(self, key: str) -> T | None:
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            self._entries.move_to_end(key)
            return entry[0]

    def put(self, key: str, value: T, size: int) -> None:
        if size > self.max_bytes:
            return  # larger than the whole cache: serving it is fine, keeping it would evict everything
        with self._lock:
            old = self._entries.pop(key, None)
            if old is not None:
                self._size -= old[1]
            self._entries[key] = (value, size)
            self._size += size
            while self._size > self.max_bytes:
                _, (_, evicted) = self._entries.popitem(last=False)
                self._size -= evicted

    def __len__(self) -> int:
        return len(self._entries)


class TagCache:
    """What each tag pointed at when last asked, trusted for ttl seconds; in memory and in a shared directory."""

    def __init__(self, directory: Path, ttl: float, clock: Callable[[], float] = time.time) -> None:
        self.directory, self.ttl, self.clock = directory, ttl, clock
        self._memory: dict[str, tuple[str, float]] = {}

    def remembered(self, ref: str) -> str | None:
        """The digest ref pointed at less than ttl seconds ago, if this process knows it (no disk read)."""
        known = self._memory.get(ref)
        if known is not None and self.clock() - known[1] < self.ttl:
            return known[0]
        return None

    def _path(self, ref: str) -> Path:
        return self.directory / hashlib.sha256(ref.encode()).hexdigest()

    def get(self, ref: str) -> str | None:
        """The digest ref pointed at less than ttl seconds ago, or None."""
        known = self.remembered(ref)
        if known is not None:
            return known
        now = self.clock()
        try:
            path = self._path(ref)
            stored, digest = path.read_text().split("\n", 1)
            when = path.stat().st_mtime
        except (OSError, ValueError):
            return None
        if stored != ref or now - when >= self.ttl:
            return None
        self._memory[ref] = (digest, when)
        return digest

    def put(self, ref: str, digest: str) -> None:
        self._memory[ref] = (digest, self.clock())
        path = self._path(ref)
        partial = path.with_suffix(f".{os.getpid()}.{threading.get_ident()}")
        try:
            partial.write_text(f"{ref}\n{digest}")
        except FileNotFoundError:  # the first write, or the directory was removed: made only then
            self.directory.mkdir(parents=True, exist_ok=True)
            partial.write_text(f"{ref}\n{digest}")
        os.replace(partial, path)

    def forget(self, ref: str) -> None:
        self._memory.pop(ref, None)
        self._path(ref).unlink(missing_ok=True)


class SingleFlight:
    """Concurrent calls with one key share one execution: the first caller runs it, the others wait for it.

    With a lock directory, the runs are also serialized across processes; `work` re-checks what another
    process may have done while this one waited (the blob store, the tag cache) before asking the registry.
    Across processes, each key locks a file of its own (flock), made at its first run and kept, as the tag
    cache keeps a file per tag: a key never waits for another, whatever registry the other one is waiting on.
    """

    def __init__(self, lock_directory: Path | None = None) -> None:
        self.lock_directory = lock_directory
        self._running: dict[str, Future[object]] = {}
        self._lock = threading.Lock()

    def run(self, key: str, work: Callable[[], T]) -> T:
        with self._lock:
            running = self._running.get(key)
            if running is None:
                mine: Future[object] = Future()
                self._running[key] = mine
        if running is not None:
            return running.result()  # type: ignore[return-value]
        try:
            with self._across_processes(key):
                result = work()
        except BaseException as exc:
            mine.set_exception(exc)
            raise
        else:
            mine.set_result(result)
            return result
        finally:
            with self._lock:
                del self._running[key]

    @contextmanager
    def _across_processes(self, key: str) -> Iterator[None]:
        if self.lock_directory is None:
            yield
            return
        path = self.lock_directory / hashlib.sha256(key.encode()).hexdigest()
        try:
            handle = open(path, "a")  # noqa: SIM115 - closed below
        except FileNotFoundError:  # the first lock, or the directory was removed: made only then
            self.lock_directory.mkdir(parents=True, exist_ok=True)
            handle = open(path, "a")  # noqa: SIM115
        with handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)
