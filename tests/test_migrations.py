"""The schema exists only through Alembic, and the migrations agree with the models."""

import subprocess
import sys

from alembic.script import ScriptDirectory
from sqlalchemy import inspect, select, text
from sqlalchemy.orm import Session

from catalog.db import alembic_config, current_revision, make_engine, upgrade
from catalog.models import Catalog
from tests.conftest import REPO

HEAD = ScriptDirectory.from_config(alembic_config()).get_current_head()


def test_upgrade_head_on_an_empty_database_then_alembic_check(empty_database_url):
    engine = make_engine(empty_database_url)
    assert current_revision(engine) is None
    upgrade(engine)
    assert current_revision(engine) == HEAD
    assert {
        "catalogs",
        "resources",
        "resource_versions",
        "catalog_errors",
        "runs",
        "run_logs",
        "jobs",
        "leases",
    } <= set(inspect(engine).get_table_names())
    engine.dispose()
    check = subprocess.run(
        [sys.executable, "-m", "alembic", "-x", f"url={empty_database_url}", "check"],
        cwd=REPO, capture_output=True, text=True,
    )  # fmt: skip
    assert check.returncode == 0, check.stderr
    assert "No new upgrade operations detected" in check.stdout + check.stderr


def test_upgrade_is_idempotent(empty_database_url):
    engine = make_engine(empty_database_url)
    upgrade(engine)
    upgrade(engine)
    assert current_revision(engine) == HEAD
    engine.dispose()


def test_upgrade_keeps_existing_catalogs(empty_database_url):
    engine = make_engine(empty_database_url)
    upgrade(engine, "0001")
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO catalogs (name, source, type, provider, created_at) "
                "VALUES ('old', '/srv/catalog', 'community', 'local', CURRENT_TIMESTAMP)"
            )
        )
    upgrade(engine)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT name, repositories FROM catalogs")).one()[0] == "old"
    with Session(engine) as session:
        assert session.scalar(select(Catalog.repositories)) == []
    engine.dispose()
