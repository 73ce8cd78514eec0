"""The resolver's single flights and tag cache: what a hub's data dir holds, and how a tag's answer ages."""

from catalog.resolver_cache import LOCK_FILES, SingleFlight, TagCache


def test_single_flights_keep_a_fixed_set_of_lock_files(tmp_path):
    flights = SingleFlight(tmp_path / "locks")
    assert [flights.run(f"tag registry.example.com/task:{i}", lambda i=i: i) for i in range(1000)] == list(range(1000))
    assert 0 < len(list((tmp_path / "locks").iterdir())) <= LOCK_FILES


def test_a_tag_answer_is_trusted_for_its_ttl_in_this_process_and_the_others(tmp_path):
    now = [1000.0]
    mine = TagCache(tmp_path / "tags", ttl=60, clock=lambda: now[0])
    mine.put("r.io/task:1", "sha256:" + "a" * 64)
    assert mine.remembered("r.io/task:1") == "sha256:" + "a" * 64
    other = TagCache(tmp_path / "tags", ttl=60)  # another worker: it reads the shared directory
    assert other.remembered("r.io/task:1") is None and other.get("r.io/task:1") == "sha256:" + "a" * 64
    now[0] += 61
    assert mine.remembered("r.io/task:1") is None
