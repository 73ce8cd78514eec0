"""Syncing catalogs into the index, on SQLite and PostgreSQL: one transaction, idempotent, nothing lost."""

import shutil
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

import catalog.indexing
import catalog.sync
from catalog.errors import CatalogSourceError, Conflict, InvalidRequest
from catalog.models import Catalog, CatalogError, IndexState, Resource, ResourceVersion
from catalog.queries import CatalogIndex
from tests.catalog.factories import task_yaml, write_version
from tests.conftest import register, sync


def snapshot(engine):
    """Everything a client could observe of the index."""
    with Session(engine) as s:
        versions = s.execute(
            select(
                Resource.kind, Resource.name, ResourceVersion.id, ResourceVersion.version, ResourceVersion.digest,
                ResourceVersion.modified_at, ResourceVersion.indexed_at, ResourceVersion.removed_at,
            ).join(Resource)
        ).all()  # fmt: skip
        errors = s.execute(select(CatalogError.level, CatalogError.path, CatalogError.message)).all()
        generation = s.scalar(select(IndexState.generation))
    return sorted(map(tuple, versions)), sorted(map(tuple, errors)), generation


def test_sample_sync_summary(indexed):
    assert indexed.added == 47
    assert indexed.versions == 47
    assert indexed.resources == 19
    assert indexed.problems["error"] == 5
    lines = "\n".join(indexed.lines())
    assert "19 resources, 47 versions" in lines
    assert "5 error" in lines and "taskhub catalog errors tekton" in lines


def test_resync_of_unchanged_input_changes_nothing(engine, settings, indexed):
    before = snapshot(engine)
    again = sync(engine, settings, "tekton")
    assert not again.changed
    assert "no changes" in again.lines()[1]
    assert snapshot(engine) == before


def test_changed_removed_and_returning_versions(engine, settings, tmp_path):
    root = tmp_path / "cat"
    write_version(root, "hello", "0.1")
    write_version(root, "hello", "0.2")
    write_version(root, "bye", "0.1")
    register(engine, "mine", root)
    first = sync(engine, settings, "mine")
    assert (first.added, first.resources, first.versions) == (3, 2, 3)
    _, _, generation = snapshot(engine)

    write_version(root, "hello", "0.2", task_yaml("hello", "0.2", description="Says hello, louder."))
    shutil.rmtree(root / "task" / "hello" / "0.1")
    shutil.rmtree(root / "task" / "bye")
    second = sync(engine, settings, "mine")
    assert (second.updated, second.removed, second.resources, second.versions) == (1, 2, 1, 1)
    with Session(engine) as s:
        index = CatalogIndex(s)
        view = index.resource("mine", "Task", "hello")
        assert [v.version for v in view.versions] == ["0.2"]
        assert view.latest.description == "Says hello, louder."
        removed = index.version("mine", "Task", "hello", "0.1").latest  # kept for pinned references
        assert removed.removed_at is not None
        assert s.scalar(select(IndexState.generation)) > generation

    write_version(root, "hello", "0.1")
    third = sync(engine, settings, "mine")
    assert (third.updated, third.resources, third.versions) == (1, 1, 2)  # 0.1 is back; bye is still gone
    with Session(engine) as s:
        assert [v.version for v in CatalogIndex(s).resource("mine", "Task", "hello").versions] == [
            "0.1",
            "0.2",
        ]


def test_failed_sync_keeps_the_previous_index(engine, settings, indexed, monkeypatch, fixture_catalog, tmp_path):
    before = snapshot(engine)

    def explode(*args, **kwargs):
        raise RuntimeError("disk on fire")

    # Fail after every version row has been written, so the rollback has real work to undo.
    monkeypatch.setattr(catalog.indexing, "_replace_problems", explode)
    with Session(engine) as s:
        cat = s.scalar(select(Catalog))
        cat.source = str(tmp_path / "changed")
        s.commit()
    changed = tmp_path / "changed"
    shutil.copytree(fixture_catalog, changed, symlinks=True)
    write_version(changed, "brand-new", "0.1")
    with pytest.raises(RuntimeError, match="disk on fire"):
        sync(engine, settings, "tekton")
    assert snapshot(engine) == before


def test_missing_source_is_a_clear_error(engine, settings, tmp_path):
    register(engine, "gone", tmp_path / "nowhere")
    with pytest.raises(CatalogSourceError, match="does not exist"):
        sync(engine, settings, "gone")


def test_catalog_names_are_checked(engine, tmp_path):
    with pytest.raises(InvalidRequest, match="DNS-1123"):
        register(engine, "Bad Name", tmp_path)
    register(engine, "ok", tmp_path)
    with pytest.raises(Conflict, match="already exists"):
        register(engine, "ok", tmp_path)


def git(repo: Path, *args: str, date: str = "2024-05-01T10:00:00+00:00") -> str:
    env = {"GIT_AUTHOR_DATE": date, "GIT_COMMITTER_DATE": date, "HOME": str(repo), "PATH": "/usr/bin:/bin"}
    return subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.invalid", *args],
        cwd=repo, env=env, check=True, capture_output=True, text=True,
    ).stdout  # fmt: skip


def test_git_source_with_revision_context_dir_and_commit_times(engine, settings, tmp_path):
    repo = tmp_path / "repo"
    write_version(repo / "catalog", "hello", "0.1")
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "one", date="2024-05-01T10:00:00+00:00")
    git(repo, "tag", "v1")
    write_version(repo / "catalog", "hello", "0.2")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "two", date="2024-06-02T12:30:00+00:00")

    register(engine, "pinned", f"file://{repo}", revision="v1", context_dir="catalog")
    register(engine, "head", f"file://{repo}", context_dir="catalog")
    pinned, head = sync(engine, settings, "pinned"), sync(engine, settings, "head")
    assert (pinned.versions, head.versions) == (1, 2)
    assert pinned.revision == git(repo, "rev-parse", "v1").strip()
    with Session(engine) as s:
        index = CatalogIndex(s)
        versions = index.resource("head", "Task", "hello").versions
        assert [v.modified_at for v in versions] == [
            datetime(2024, 5, 1, 10, 0, tzinfo=UTC),
            datetime(2024, 6, 2, 12, 30, tzinfo=UTC),
        ]
        assert index.version("head", "Task", "hello", "0.1").latest.path == "task/hello/0.1/hello.yaml"
    assert not sync(engine, settings, "head").changed


def test_unreachable_git_source_is_a_clear_error(engine, settings, tmp_path):
    register(engine, "broken", f"file://{tmp_path}/no-such-repo")
    with pytest.raises(CatalogSourceError, match="git fetch failed"):
        sync(engine, settings, "broken")


def git_repo(tmp_path: Path) -> Path:
    repo = tmp_path / "repo"
    write_version(repo, "hello", "0.1")
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "one", date="2024-05-01T10:00:00+00:00")
    return repo


INJECTIONS = ["--upload-pack=touch {marker};git-upload-pack", "-c", "--output={marker}"]


@pytest.mark.parametrize("revision", INJECTIONS)
def test_a_revision_that_reads_as_a_git_option_is_refused(engine, tmp_path, revision):
    marker = tmp_path / "pwned"
    with pytest.raises(CatalogSourceError, match="must not begin with '-'"):
        register(engine, "x", f"file://{git_repo(tmp_path)}", revision=revision.format(marker=marker))
    assert not marker.exists()


@pytest.mark.parametrize("revision", INJECTIONS)
def test_a_stored_revision_that_reads_as_a_git_option_runs_nothing_at_sync(engine, settings, tmp_path, revision):
    marker = tmp_path / "pwned"
    register(engine, "x", f"file://{git_repo(tmp_path)}")
    with Session(engine) as s, s.begin():  # stored before the check existed, or written to the database directly
        s.scalars(select(Catalog).where(Catalog.name == "x")).one().revision = revision.format(marker=marker)
    with pytest.raises(CatalogSourceError, match="must not begin with '-'"):
        sync(engine, settings, "x")
    assert not marker.exists()


def test_a_source_that_reads_as_a_git_option_is_refused(engine, tmp_path):
    with pytest.raises(CatalogSourceError, match="must not begin with '-'"):
        register(engine, "x", "-ofoo@host:path")


@pytest.mark.parametrize("context_dir", ["../up", "/etc", "a/../../b"])
def test_context_dir_cannot_escape(engine, tmp_path, context_dir):
    with pytest.raises(CatalogSourceError, match="relative path inside the catalog"):
        register(engine, "esc", tmp_path, context_dir=context_dir)


def test_hub_resolves_skip_removed_versions_and_see_new_ones(engine, settings, tmp_path):
    from catalog.errors import NotFound
    from catalog.resolver import HubResolver

    root = tmp_path / "cat"
    for version in ("0.9", "0.10"):
        write_version(root, "hello", version)
    register(engine, "mine", root)
    sync(engine, settings, "mine")
    resolver = HubResolver(default_catalog="mine")

    def resolve(wanted: str) -> str | None:
        with Session(engine) as s:
            return resolver.resolve(CatalogIndex(s), {"name": "hello", "version": wanted}, "http://hub").version

    assert resolve(">=0.9") == "0.10"
    shutil.rmtree(root / "task" / "hello" / "0.10")
    write_version(root, "hello", "0.11")
    sync(engine, settings, "mine")
    assert resolve("<0.11") == "0.9"  # 0.10 is gone from the catalog
    assert resolve(">=0.9") == "0.11"
    with pytest.raises(NotFound, match=r"no version found for constraint =0\.10"):
        resolve("=0.10")
