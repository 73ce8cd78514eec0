"""resource_versions.source_key: the digest of a version folder's files, so unchanged folders are not read again

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-08 18:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Empty for versions indexed before: the next sync reads every folder once and records them.
    op.add_column("resource_versions", sa.Column("source_key", sa.String(length=64), nullable=True))


def downgrade() -> None:
    op.drop_column("resource_versions", "source_key")  # ALTER TABLE ... DROP COLUMN (SQLite 3.35+): no batch
