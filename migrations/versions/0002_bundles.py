"""bundles

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22 05:08:21.899700
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("catalogs", schema=None) as batch_op:
        # Existing catalogs list no repositories.
        batch_op.add_column(sa.Column("repositories", sa.JSON(), nullable=False, server_default="[]"))

    with op.batch_alter_table("resource_versions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("bundle_ref", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("resource_versions", schema=None) as batch_op:
        batch_op.drop_column("bundle_ref")

    with op.batch_alter_table("catalogs", schema=None) as batch_op:
        batch_op.drop_column("repositories")
