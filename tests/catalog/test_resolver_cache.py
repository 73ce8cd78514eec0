"""The resolver's single flights and tag cache: what a hub's data dir holds, and how a tag's answer ages."""

import hashlib
import itertools
import os
import threading
import time
from pathlib import Path

from catalog.resolver_cache import SingleFlight, TagCache


def test_single_flights_keep_one_lock_file_per_key_as_the_tag_cache_keeps_one_file_per_tag(tmp_path):
    flights = SingleFlight(tmp_path / "locks")
    keys = [f"tag registry.example.com/task:{i % 10}" for i in range(1000)]
    assert [flights.run(key, lambda i=i: i) for i, key in enumerate(keys)] == list(range(1000))
    assert len(list((tmp_path / "locks").iterdir())) == 10


def hold(flights: SingleFlight, key: str, store: dict[str, str]) -> tuple[threading.Thread, threading.Event]:
    """A thread running key's flight until `release` is set, as a worker fetching from a slow registry would, then
    storing its answer; returns once the flight holds its lock."""
    held, release = threading.Event(), threading.Event()

    def work() -> str:
        held.set()
        release.wait()
        store[key] = "from a"
        return store[key]

    thread = threading.Thread(target=flights.run, args=(key, work))
    thread.start()
    held.wait()
    return thread, release


def wait_for_a_blocked_lock(directory: Path) -> None:
    """Until a process waits in flock on a file of directory (the kernel lists it in /proc/locks with `->`)."""
    while True:
        inodes = {os.stat(directory / name).st_ino for name in os.listdir(directory)}
        for line in Path("/proc/locks").read_text().splitlines():
            fields = line.split()
            if "->" in fields and int(fields[fields.index("->") + 5].rsplit(":", 1)[1]) in inodes:
                return
        time.sleep(0.001)


def test_a_key_never_waits_for_another_keys_fetch(tmp_path):
    """Two workers (each SingleFlight opens its own lock files, as a process does): one hangs on a fetch, and the
    other still resolves a different key, even one that shared a lock file when keys shared 128 of them."""

    def old_slot(key: str) -> int:
        return int(hashlib.sha256(key.encode()).hexdigest()[:8], 16) % 128

    hung = "tag registry.example.com/hung:1"
    other = next(k for n in itertools.count() if old_slot(k := f"tag registry.example.com/other:{n}") == old_slot(hung))
    worker_a, worker_b = SingleFlight(tmp_path / "locks"), SingleFlight(tmp_path / "locks")
    thread, release = hold(worker_a, hung, {})
    answered = threading.Event()
    other_thread = threading.Thread(target=lambda: worker_b.run(other, lambda: "fresh") and answered.set())
    other_thread.start()
    try:
        assert answered.wait(60), "the other key waited for the hung fetch"  # the bound only ends a failure
    finally:
        release.set()
        thread.join()
        other_thread.join()


def test_one_key_is_fetched_by_one_worker_at_a_time(tmp_path):
    """A second worker asking for a key another one is fetching waits for it, then finds what it stored."""
    store: dict[str, str] = {}
    fetches, answers = [], []
    key = "tag registry.example.com/task:1"
    worker_a, worker_b = SingleFlight(tmp_path / "locks"), SingleFlight(tmp_path / "locks")
    thread, release = hold(worker_a, key, store)

    def fetch_unless_stored() -> str:  # what the resolver's work does: look in the shared caches first
        if key not in store:
            fetches.append("b")
        return store.get(key, "from b")

    waiting = threading.Thread(target=lambda: answers.append(worker_b.run(key, fetch_unless_stored)))
    waiting.start()
    wait_for_a_blocked_lock(tmp_path / "locks")  # worker b now waits in flock for worker a
    release.set()
    thread.join()
    waiting.join()
    assert (answers, fetches) == (["from a"], [])


def test_a_tag_answer_is_trusted_for_its_ttl_in_this_process_and_the_others(tmp_path):
    now = [1000.0]
    mine = TagCache(tmp_path / "tags", ttl=60, clock=lambda: now[0])
    mine.put("r.io/task:1", "sha256:" + "a" * 64)
    assert mine.remembered("r.io/task:1") == "sha256:" + "a" * 64
    other = TagCache(tmp_path / "tags", ttl=60)  # another worker: it reads the shared directory
    assert other.remembered("r.io/task:1") is None and other.get("r.io/task:1") == "sha256:" + "a" * 64
    now[0] += 61
    assert mine.remembered("r.io/task:1") is None
