"""Fixtures shared by every test: real databases (SQLite and PostgreSQL), the app, the test catalog."""

from __future__ import annotations

import itertools
import os
import shutil
import socket
import subprocess
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session

from catalog.db import make_engine, upgrade
from catalog.indexing import known_versions
from catalog.sync import SyncSummary, add_catalog, apply_tree, fetch_catalog, get_catalog
from hub.app import create_app
from hub.config import Settings
from tests.container_fixture import *  # noqa: F403
from tests.deploy_fixture import *  # noqa: F403
from tests.kube_fixture import *  # noqa: F403
from tests.registry_fixture import *  # noqa: F403
from tests.upstream_data import missing_reason, upstream_data

REPO = Path(__file__).resolve().parent.parent
PG_BIN = Path(os.environ.get("TASKHUB_TEST_PG_BIN", "/usr/lib/postgresql/15/bin"))
DATABASES = os.environ.get("TASKHUB_TEST_DATABASES", "sqlite,postgresql").split(",")
# Local runs are host processes unless a test asks for containers (tests/runner/test_local_containers.py, with
# the images of tests/container_fixture.py): `taskhub run` and hubs started by tests read this.
os.environ.setdefault("TASKHUB_LOCAL_CONTAINERS", "host")


FIXTURE_CATALOG = REPO / "tests" / "fixtures" / "catalog"


@pytest.fixture(scope="session")
def fixture_catalog() -> Path:
    """taskhub's own test catalog (tests/fixtures/catalog): Tasks, Pipelines and a StepAction in the
    tektoncd/catalog layout, with several versions, READMEs, samples and folders that are wrong on purpose."""
    return FIXTURE_CATALOG


@pytest.fixture(scope="session")
def upstream_catalog() -> Path:
    """A subset of the real tektoncd/catalog ($TASKHUB_CONFORMANCE_DATA/catalog-sample); skips the test without it."""
    path = upstream_data("catalog-sample")
    if path is None:
        pytest.skip(missing_reason("catalog-sample"))
    return path


@contextmanager
def served(app: Flask) -> Iterator[str]:
    """The app served by a real threaded HTTP server on a free loopback port; yields its base URL."""
    from werkzeug.serving import make_server

    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="taskhub-test-server", daemon=True
    )
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(timeout=10)
        server.server_close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _as_postgres(*cmd: str) -> None:
    prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    subprocess.run([*prefix, *cmd], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    """A PostgreSQL server of our own on a free loopback port; yields its base URL."""
    if not (PG_BIN / "initdb").exists():
        pytest.fail(f"PostgreSQL binaries not found in {PG_BIN} (apt-get install postgresql)")
    base = Path(tempfile.mkdtemp(prefix="taskhub-pg-"))
    if os.geteuid() == 0:
        shutil.chown(base, "postgres", "postgres")
    data, port = base / "data", free_port()
    _as_postgres(str(PG_BIN / "initdb"), "-D", str(data), "-U", "postgres", "-A", "trust", "--no-sync",
                 "-E", "UTF8", "--locale=C.UTF-8")  # fmt: skip
    options = f"-p {port} -k {base} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off"
    _as_postgres(str(PG_BIN / "pg_ctl"), "-D", str(data), "-l", str(base / "log"), "-w", "-o", options, "start")
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:{port}"
    finally:
        _as_postgres(str(PG_BIN / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop")
        shutil.rmtree(base, ignore_errors=True)


_counter = itertools.count()


def _migrate_and_index(url: str, data_dir: Path, catalog: Path) -> SyncSummary:
    engine = make_engine(url)
    upgrade(engine)
    register(engine, "tekton", catalog)
    summary = sync(engine, Settings(data_dir=data_dir, database_url=url), "tekton")
    if engine.dialect.name == "sqlite":
        with engine.connect() as conn:
            conn.execute(text("PRAGMA wal_checkpoint(TRUNCATE)"))
    engine.dispose()
    return summary


@pytest.fixture(scope="session")
def sqlite_templates(tmp_path_factory: pytest.TempPathFactory, fixture_catalog: Path) -> dict[str, Path]:
    """SQLite files made once: "migrated" (empty schema) and "indexed" (the test catalog synced); tests get copies."""
    base = tmp_path_factory.mktemp("sqlite-templates")
    migrated = base / "migrated.db"
    engine = make_engine(f"sqlite:///{migrated}")
    upgrade(engine)
    engine.dispose()
    indexed = base / "indexed.db"
    _SAMPLE_SUMMARY["sqlite"] = _migrate_and_index(f"sqlite:///{indexed}", base, fixture_catalog)
    return {"migrated": migrated, "indexed": indexed}


@pytest.fixture(scope="session")
def postgres_templates(request: pytest.FixtureRequest, fixture_catalog: Path, tmp_path_factory) -> str:
    """PostgreSQL template databases made once, copied per test with CREATE DATABASE ... TEMPLATE."""
    server = request.getfixturevalue("postgres_server")
    _admin_sql(server, "CREATE DATABASE template_migrated", "CREATE DATABASE template_indexed")
    engine = make_engine(f"{server}/template_migrated")
    upgrade(engine)
    engine.dispose()
    data_dir = tmp_path_factory.mktemp("pg-template")
    _SAMPLE_SUMMARY["postgresql"] = _migrate_and_index(f"{server}/template_indexed", data_dir, fixture_catalog)
    return server


_SAMPLE_SUMMARY: dict[str, SyncSummary] = {}


@pytest.fixture(params=DATABASES)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A migrated database of each kind (the test runs once per kind); it already holds the synced test
    catalog when the test asks for the `indexed` fixture."""
    template = "indexed" if "indexed" in request.fixturenames else "migrated"
    if request.param == "sqlite":
        path = tmp_path / "taskhub.db"
        shutil.copy(request.getfixturevalue("sqlite_templates")[template], path)
        return f"sqlite:///{path}"
    return _fresh_database(request, request.getfixturevalue("postgres_templates"), f"template_{template}")


def _admin_sql(server: str, *statements: str) -> None:
    """Run statements outside any transaction (CREATE/DROP DATABASE) on the server's maintenance database."""
    admin = make_engine(f"{server}/postgres", isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        for statement in statements:
            conn.execute(text(statement))
    admin.dispose()


def _fresh_database(request: pytest.FixtureRequest, server: str, template: str | None) -> str:
    """A new database for one test, copied from template when given, dropped after the test."""
    name = f"test_{os.getpid()}_{next(_counter)}"
    _admin_sql(server, f"CREATE DATABASE {name}" + (f" TEMPLATE {template}" if template else ""))
    request.addfinalizer(lambda: _admin_sql(server, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
    return f"{server}/{name}"


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    engine = make_engine(database_url)
    yield engine
    engine.dispose()


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return Settings(
        data_dir=tmp_path / "data", database_url=database_url, generation_check_interval=0, local_containers="host"
    )


def sync(engine: Engine, settings: Settings, name: str) -> SyncSummary:
    """Fetch, walk and index a registered catalog the way `taskhub catalog sync` does (unchanged version folders
    are not read again)."""
    with Session(engine) as session:
        catalog = get_catalog(session, name)
        files, tree = fetch_catalog(catalog, settings.catalogs_dir, known_versions(session, catalog))
    with Session(engine) as session, session.begin():
        return apply_tree(session, get_catalog(session, name), files, tree)


def register(engine: Engine, name: str, source: str | Path, **kwargs: str) -> None:
    with Session(engine) as session, session.begin():
        add_catalog(session, name, str(source), **kwargs)


@pytest.fixture
def indexed(database_url: str) -> SyncSummary:
    """The test catalog registered as "tekton" and synced (copied from a template synced once per session);
    returns the summary of that sync."""
    return _SAMPLE_SUMMARY["sqlite" if database_url.startswith("sqlite") else "postgresql"]


@pytest.fixture
def app(settings: Settings) -> Flask:
    return create_app(settings)


@pytest.fixture
def client(app: Flask, indexed: SyncSummary) -> FlaskClient:
    """A test client of a hub that serves the test catalog."""
    return app.test_client()


@pytest.fixture(params=DATABASES)
def empty_database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A database with no schema at all, of each kind."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'empty.db'}"
    return _fresh_database(request, request.getfixturevalue("postgres_server"), None)
