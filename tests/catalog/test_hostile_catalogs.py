"""Hostile files in a catalog, on SQLite and PostgreSQL: each is reported against its path, and never blocks the
rest of the catalog."""

from sqlalchemy import select
from sqlalchemy.orm import Session

from catalog.models import CatalogError, Resource, ResourceVersion
from catalog.queries import CatalogIndex
from tests.catalog.factories import task_yaml, write_version
from tests.conftest import register, sync


def errors(engine) -> dict[str, str]:
    with Session(engine) as s:
        return {path: message for path, message in s.execute(select(CatalogError.path, CatalogError.message))}


def indexed_names(engine) -> list[str]:
    with Session(engine) as s:
        live = select(Resource.name).join(ResourceVersion).where(ResourceVersion.removed_at.is_(None))
        return sorted(set(s.scalars(live)))


def test_a_nul_in_a_manifest_is_one_file_s_error(engine, settings, tmp_path):
    root = tmp_path / "cat"
    write_version(root, "good", "0.1")
    write_version(root, "bad", "0.1", task_yaml("bad", "0.1").replace(">-\n    Says hello.", '"a\\u0000b"'))
    write_version(root, "nul-readme", "0.1", readme="# Title\n\nbefore\x00after\n")
    register(engine, "mine", root)
    summary = sync(engine, settings, "mine")
    assert summary.versions == 2
    assert indexed_names(engine) == ["good", "nul-readme"]
    found = errors(engine)
    assert "NUL" in found["task/bad/0.1/bad.yaml"]
    with Session(engine) as s:
        readme = CatalogIndex(s).resource("mine", "Task", "nul-readme", content=True).latest.readme
    assert readme is not None and "before" in readme and "after" in readme and "\x00" not in readme


def test_python_tags_are_an_indexing_error(engine, settings, tmp_path):
    root = tmp_path / "cat"
    hostile = task_yaml("evil", "0.1").replace(
        "spec:", "spec:\n  params:\n    - name: x\n      default: !!python/object/apply:os.system ['true']", 1
    )
    write_version(root, "evil", "0.1", hostile)
    write_version(root, "good", "0.1")
    register(engine, "mine", root)
    sync(engine, settings, "mine")
    assert indexed_names(engine) == ["good"]
    assert "python/object/apply" in errors(engine)["task/evil/0.1/evil.yaml"]


def test_folders_whose_names_begin_with_a_dot_are_reported(engine, settings, tmp_path):
    root = tmp_path / "cat"
    write_version(root, "good", "0.1")
    (root / "task" / ".hidden" / "0.1").mkdir(parents=True)
    (root / "task" / "good" / ".0.2").mkdir(parents=True)
    register(engine, "mine", root)
    sync(engine, settings, "mine")
    found = errors(engine)
    assert "begins with a dot" in found["task/.hidden"]
    assert "begins with a dot" in found["task/good/.0.2"]
