"""The schema exists only through Alembic, and the migrations agree with the models."""

import subprocess
import sys

from sqlalchemy import inspect

from catalog.db import current_revision, make_engine, upgrade
from tests.conftest import REPO


def test_upgrade_head_on_an_empty_database_then_alembic_check(empty_database_url):
    engine = make_engine(empty_database_url)
    assert current_revision(engine) is None
    upgrade(engine)
    assert current_revision(engine) == "0001"
    assert {"catalogs", "resources", "resource_versions", "catalog_errors"} <= set(inspect(engine).get_table_names())
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
    assert current_revision(engine) == "0001"
    engine.dispose()
