"""PostgreSQL: the words of resource_search kept in a stored column (search_words) with its full-text index

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-08 20:00:00.000000
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# With the words only in an expression index, PostgreSQL's planner could pick a scan of resource_search that
# computed every row's words (to_tsvector, 45 us a row: 90 ms a search at 2,000 resources); kept in a column, a
# scan tests stored words and ranking reads them (under a millisecond). SQLite's FTS5 index needs neither.
UPGRADE = (
    "DROP INDEX IF EXISTS ix_resource_search_words",
    "ALTER TABLE resource_search ADD COLUMN search_words tsvector "
    "GENERATED ALWAYS AS (to_tsvector('english', search_text)) STORED",
    "CREATE INDEX ix_resource_search_words ON resource_search USING gin (search_words)",
    "ANALYZE resource_search",
)
DOWNGRADE = (
    "DROP INDEX IF EXISTS ix_resource_search_words",
    "ALTER TABLE resource_search DROP COLUMN search_words",
    "CREATE INDEX ix_resource_search_words ON resource_search USING gin (to_tsvector('english', search_text))",
)


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for statement in UPGRADE:
            op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for statement in DOWNGRADE:
            op.execute(statement)
