"""Re-syncs read only the version folders whose files changed: directories by a digest of the files a sync reads,
git repositories by each folder's tree id; everything else (rows, problems) stands as the last sync left it."""

from __future__ import annotations

import os
import shutil

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

import catalog.sources
import catalog.tree
from catalog.models import CatalogError
from catalog.queries import CatalogIndex
from tests.catalog.factories import task_yaml, write_version
from tests.catalog.test_sync import git, snapshot
from tests.conftest import register, sync


@pytest.fixture
def parsed(monkeypatch) -> list[str]:
    """The name of every manifest the syncs parse."""
    names: list[str] = []
    parse = catalog.tree.parse_resource

    def counting(text, **kwargs):
        meta = parse(text, **kwargs)
        names.append(meta.name)
        return meta

    monkeypatch.setattr(catalog.tree, "parse_resource", counting)
    return names


def problems(engine) -> list[tuple[str, str, str]]:
    with Session(engine) as s:
        rows = s.execute(select(CatalogError.level, CatalogError.path, CatalogError.message).order_by(CatalogError.id))
        return [tuple(row) for row in rows]


def test_a_directory_resync_reads_only_what_changed(engine, settings, tmp_path, parsed):
    root = tmp_path / "cat"
    for name in ("hello", "bye", "yo"):
        write_version(root, name, "0.1")
    write_version(root, "yo", "0.2", task_yaml("yo", "0.2").replace("Developer Tools", "Gardening"))  # a warning
    register(engine, "mine", root)
    assert sync(engine, settings, "mine").added == 4 and len(parsed) == 4
    before, reported = snapshot(engine), problems(engine)
    assert any("Gardening" in message for _, _, message in reported)

    parsed.clear()
    again = sync(engine, settings, "mine")
    assert parsed == [] and not again.changed and (again.versions, again.resources) == (4, 3)
    assert snapshot(engine) == before and problems(engine) == reported  # the skipped folders' problems stand

    (root / "task/bye/0.1/README.md").write_text("# bye, now with more words\n")
    changed = sync(engine, settings, "mine")
    assert parsed == ["bye"] and changed.updated == 1
    with Session(engine) as s:
        assert CatalogIndex(s).resource("mine", "Task", "bye", content=True).latest.readme.startswith("# bye, now")

    parsed.clear()
    os.utime(root / "task/yo/0.1/README.md", (1_600_000_000, 1_600_000_000))  # touched, not changed
    assert not sync(engine, settings, "mine").changed and parsed == []  # its bytes were read, not parsed
    manifest = root / "task/hello/0.1/hello.yaml"
    os.utime(manifest, (1_700_000_000, 1_700_000_000))  # same bytes, another time: updatedAt changes
    assert sync(engine, settings, "mine").updated == 1 and parsed == ["hello"]


def test_removed_and_returning_folders_and_a_full_resync(engine, settings, tmp_path, parsed):
    from catalog.sync import sync_by_name

    root = tmp_path / "cat"
    for version in ("0.1", "0.2"):
        write_version(root, "hello", version)
    register(engine, "mine", root)
    sync(engine, settings, "mine")
    kept = tmp_path / "kept"
    shutil.move(root / "task/hello/0.1", kept)
    assert sync(engine, settings, "mine").removed == 1
    shutil.move(kept, root / "task/hello/0.1")
    parsed.clear()
    back = sync(engine, settings, "mine")
    assert back.updated == 1 and parsed == []  # revived as it was: the same files
    with Session(engine) as s:
        assert [v.version for v in CatalogIndex(s).resource("mine", "Task", "hello").versions] == ["0.1", "0.2"]
    summary = sync_by_name(engine, "mine", settings.catalogs_dir, registries=lambda _: None, full=True)
    assert not summary.changed and sorted(parsed) == ["hello", "hello"]  # --full reads everything again


def test_a_git_resync_reads_only_folders_whose_tree_changed(engine, settings, tmp_path, parsed, monkeypatch):
    repo = tmp_path / "repo"
    for name in ("hello", "bye"):
        write_version(repo, name, "0.1")
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "one")
    register(engine, "mine", f"file://{repo}")
    assert sync(engine, settings, "mine").added == 2
    logs: list[object] = []
    real_log = catalog.sources._commit_times
    monkeypatch.setattr(catalog.sources, "_commit_times", lambda *a: logs.append(a) or real_log(*a))

    parsed.clear()
    assert not sync(engine, settings, "mine").changed
    assert parsed == [] and logs == []  # nothing read, and git's history not walked

    (repo / "task/bye/0.1/Dockerfile").write_text("FROM scratch\n")  # a file the hub does not read
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "two", date="2024-06-01T00:00:00+00:00")
    assert not sync(engine, settings, "mine").changed and parsed == ["bye"]  # read again, nothing to write
    parsed.clear()
    assert not sync(engine, settings, "mine").changed and parsed == []  # and its new tree id was kept

    write_version(repo, "bye", "0.1", task_yaml("bye", "0.1", description="Says bye."))
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "three", date="2024-07-01T00:00:00+00:00")
    changed = sync(engine, settings, "mine")
    assert changed.updated == 1 and parsed == ["bye"]
    with Session(engine) as s:
        latest = CatalogIndex(s).resource("mine", "Task", "bye").latest
    assert latest.description == "Says bye." and latest.modified_at.year == 2024 and latest.modified_at.month == 7


def test_folders_with_links_are_always_read_in_git(engine, settings, tmp_path, parsed):
    repo = tmp_path / "repo"
    write_version(repo, "hello", "0.1")
    write_version(repo, "bye", "0.1")
    samples = repo / "task/hello/0.1/samples"
    samples.mkdir()
    (samples / "run.yaml").symlink_to("../../../bye/0.1/bye.yaml")  # its target may change, its tree not
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "one")
    register(engine, "mine", f"file://{repo}")
    sync(engine, settings, "mine")
    parsed.clear()
    sync(engine, settings, "mine")
    assert parsed == ["hello"]
