"""Database engines and the schema's one way into existence: Alembic migrations."""

from __future__ import annotations

from importlib.resources import files
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import URL, make_url

if TYPE_CHECKING:  # Alembic is imported only when migrating: it is a tenth of the command line's start-up.
    from alembic.config import Config

VERSION_TABLE = "alembic_version"  # Alembic's default, where it records the revision a database is at


def make_engine(url: str, **kwargs: Any) -> Engine:
    """An engine for a SQLite or PostgreSQL URL; SQLite gets WAL, foreign keys and a busy timeout."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        kwargs.setdefault("connect_args", {"timeout": 30})
        engine = create_engine(url, **kwargs)

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA foreign_keys=ON")
            if parsed.database not in (None, "", ":memory:"):
                cur.execute("PRAGMA journal_mode=WAL")
                cur.execute("PRAGMA synchronous=NORMAL")
            cur.close()

        return engine
    kwargs.setdefault("pool_pre_ping", True)
    return create_engine(url, **kwargs)


def sqlite_file(url: str | URL) -> str | None:
    """The path of the SQLite database file a URL names; None for PostgreSQL, in-memory and URI (`file:`)
    databases: what other processes on this host can find beside it (wake-ups, the sinks' spool) and sync."""
    parsed = make_url(url)
    database = parsed.database or ""
    if parsed.get_backend_name() != "sqlite" or database in ("", ":memory:") or database.startswith("file:"):
        return None
    return database


def alembic_config(engine: Engine | None = None) -> Config:
    """An Alembic config pointing at the migrations package, bound to engine when given."""
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(files("migrations")))
    if engine is not None:
        cfg.attributes["engine"] = engine
    return cfg


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Create or migrate the schema to the given revision."""
    from alembic import command

    command.upgrade(alembic_config(engine), revision)


def current_revision(engine: Engine) -> str | None:
    """The revision the schema was migrated to, None for an empty database.

    Read from Alembic's version table with a plain query, so that the commands that only check the schema exists do
    not import Alembic."""
    with engine.connect() as conn:
        if not conn.dialect.has_table(conn, VERSION_TABLE):
            return None
        heads = conn.scalars(text(f"SELECT version_num FROM {VERSION_TABLE}")).all()
        if len(heads) > 1:  # unmerged branches: Alembic raises its own error for them
            from alembic.runtime.migration import MigrationContext

            return MigrationContext.configure(conn).get_current_revision()
    return heads[0] if heads else None


def database_error(engine: Engine) -> str | None:
    """None when the database answers a trivial query, else the reason it does not, on one line."""
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as exc:  # any driver error means the database is down for the client
        return " ".join(str(exc).split())[:200]
    return None
