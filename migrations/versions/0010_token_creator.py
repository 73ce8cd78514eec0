"""token creator: which token made a token through the API, so tokens:create lists and revokes only its own

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-09 09:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("api_tokens") as batch:
        batch.add_column(sa.Column("creator_id", sa.Integer(), nullable=True))
        batch.create_index("ix_api_tokens_creator_id", ["creator_id"])
        batch.create_foreign_key("fk_api_tokens_creator_id_api_tokens", "api_tokens", ["creator_id"], ["id"])


def downgrade() -> None:
    with op.batch_alter_table("api_tokens") as batch:
        batch.drop_constraint("fk_api_tokens_creator_id_api_tokens", type_="foreignkey")
        batch.drop_index("ix_api_tokens_creator_id")
        batch.drop_column("creator_id")
