"""registry credentials: logins to registries in the database, sealed with the secrets key, so that every hub and
worker of the database has them (they were in each data dir's registry-credentials.json, which the first use of the
store imports: this migration knows neither the data dir nor the key)

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-07 10:20:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "registry_credentials",
        sa.Column("host", sa.String(length=255), nullable=False),
        sa.Column("sealed", sa.LargeBinary(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("host"),
    )


def downgrade() -> None:
    op.drop_table("registry_credentials")
