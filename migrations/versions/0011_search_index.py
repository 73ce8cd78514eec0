"""search and listings in SQL: resource summaries, facet links, the search text and its full-text indexes

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-08 12:00:00.000000
"""

from collections import defaultdict
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.orm import Session

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# SQLite: an FTS5 index of resource_search with the trigram tokenizer (substrings of 3 or more characters, any
# case), kept by triggers. The names are those catalog/search.py queries.
SQLITE_OBJECTS = (
    "CREATE VIRTUAL TABLE resource_fts USING fts5(name, display_name, tags, description, "
    "content='resource_search', content_rowid='resource_id', tokenize='trigram')",
    "CREATE TRIGGER resource_search_ai AFTER INSERT ON resource_search BEGIN "
    "INSERT INTO resource_fts(rowid, name, display_name, tags, description) "
    "VALUES (new.resource_id, new.name, new.display_name, new.tags, new.description); END",
    "CREATE TRIGGER resource_search_ad AFTER DELETE ON resource_search BEGIN "
    "INSERT INTO resource_fts(resource_fts, rowid, name, display_name, tags, description) "
    "VALUES ('delete', old.resource_id, old.name, old.display_name, old.tags, old.description); END",
    "CREATE TRIGGER resource_search_au AFTER UPDATE ON resource_search BEGIN "
    "INSERT INTO resource_fts(resource_fts, rowid, name, display_name, tags, description) "
    "VALUES ('delete', old.resource_id, old.name, old.display_name, old.tags, old.description); "
    "INSERT INTO resource_fts(rowid, name, display_name, tags, description) "
    "VALUES (new.resource_id, new.name, new.display_name, new.tags, new.description); END",
)
# PostgreSQL: a pg_trgm index for substrings, and a full-text index of the words (English stems).
POSTGRESQL_OBJECTS = (
    "CREATE EXTENSION IF NOT EXISTS pg_trgm",
    "CREATE INDEX ix_resource_search_trgm ON resource_search USING gin (search_text gin_trgm_ops)",
    "CREATE INDEX ix_resource_search_words ON resource_search USING gin (to_tsvector('english', search_text))",
)


def _link_table(name: str, column: str, target: str) -> None:
    op.create_table(
        name,
        sa.Column("resource_id", sa.Integer(), nullable=False),
        sa.Column(column, sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["resource_id"], ["resources.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint([column], [f"{target}.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("resource_id", column),
    )
    op.create_index(f"ix_{name}_{column}", name, [column], unique=False)


def upgrade() -> None:
    # Plain ALTER TABLE, no batch: on SQLite a batch may re-create the table, and dropping the old one with foreign
    # keys on deletes every row that refers to it (ON DELETE CASCADE).
    op.add_column("resources", sa.Column("latest_version_id", sa.Integer(), nullable=True))
    op.add_column("resources", sa.Column("latest_release_id", sa.Integer(), nullable=True))
    op.add_column("resources", sa.Column("updated_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("resources", sa.Column("summary", sa.JSON(), nullable=False, server_default=sa.text("'{}'")))
    op.drop_index("ix_resources_name", table_name="resources")
    op.create_index("ix_resources_latest_version_id", "resources", ["latest_version_id"], unique=False)
    op.create_index("ix_resources_listing", "resources", ["name", "kind", "catalog_id"], unique=False)
    op.create_index("ix_resources_updated", "resources", ["updated_at", "name", "kind", "catalog_id"], unique=False)
    op.add_column("resource_versions", sa.Column("facets", sa.JSON(), nullable=False, server_default=sa.text("'{}'")))
    _link_table("resource_tags", "tag_id", "tags")
    _link_table("resource_categories", "category_id", "categories")
    _link_table("resource_platforms", "platform_id", "platforms")
    op.create_table(
        "resource_search",
        sa.Column("resource_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("display_name", sa.Text(), nullable=False),
        sa.Column("tags", sa.Text(), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("search_text", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(["resource_id"], ["resources.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("resource_id"),
    )
    bind = op.get_bind()
    for statement in SQLITE_OBJECTS if bind.dialect.name == "sqlite" else POSTGRESQL_OBJECTS:
        op.execute(statement)
    _backfill(bind)


def _backfill(bind: sa.engine.Connection) -> None:
    """Give the versions already indexed their facets, and every resource its summary and search text."""
    from catalog.summaries import facet_lists, refresh_resources  # the same code every sync runs

    facets: dict[int, dict[str, list[tuple[int, str]]]] = defaultdict(lambda: defaultdict(list))
    for key, link, column, target in (
        ("tags", "version_tags", "tag_id", "tags"),
        ("categories", "version_categories", "category_id", "categories"),
        ("platforms", "version_platforms", "platform_id", "platforms"),
    ):
        rows = bind.execute(
            sa.text(f"SELECT l.version_id, t.id, t.name FROM {link} l JOIN {target} t ON t.id = l.{column}")
        )
        for version_id, id_, name in rows:
            facets[version_id][key].append((id_, name))
    versions = sa.table("resource_versions", sa.column("id", sa.Integer), sa.column("facets", sa.JSON))
    stmt = versions.update().where(versions.c.id == sa.bindparam("version_id")).values(facets=sa.bindparam("value"))
    rows = [{"version_id": id_, "value": facet_lists(names)} for id_, names in facets.items()]
    if rows:
        bind.execute(stmt, rows)
    empty = {key: [] for key in ("tags", "categories", "platforms")}
    bind.execute(versions.update().where(versions.c.id.notin_(list(facets) or [0])).values(facets=empty))
    resource_ids = [id_ for (id_,) in bind.execute(sa.text("SELECT id FROM resources"))]
    refresh_resources(Session(bind=bind), resource_ids)


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "sqlite":
        for name in ("resource_search_ai", "resource_search_ad", "resource_search_au"):
            op.execute(f"DROP TRIGGER IF EXISTS {name}")
        op.execute("DROP TABLE IF EXISTS resource_fts")
    op.drop_table("resource_search")
    for name, column in (("resource_platforms", "platform_id"), ("resource_categories", "category_id"),
                         ("resource_tags", "tag_id")):  # fmt: skip
        op.drop_index(f"ix_{name}_{column}", table_name=name)
        op.drop_table(name)
    # Plain ALTER TABLE ... DROP COLUMN (SQLite 3.35+), no batch, as in upgrade.
    op.drop_column("resource_versions", "facets")
    for index in ("ix_resources_updated", "ix_resources_listing", "ix_resources_latest_version_id"):
        op.drop_index(index, table_name="resources")
    op.create_index("ix_resources_name", "resources", ["name"], unique=False)
    for column in ("summary", "updated_at", "latest_release_id", "latest_version_id"):
        op.drop_column("resources", column)
