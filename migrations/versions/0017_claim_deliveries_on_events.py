"""claim delivery ids on trigger_events (a partial unique index) instead of in trigger_deliveries: the sink's
INSERT of an event claims its delivery id, one statement fewer per event

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-07 10:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0017"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COLUMNS = ["source", "namespace", "name", "delivery_id"]


def upgrade() -> None:
    with op.batch_alter_table("trigger_events") as batch:
        batch.add_column(sa.Column("delivery_claimed", sa.Boolean(), nullable=False, server_default=sa.false()))
    # The events that hold a delivery id within the window now are those the deliveries table names.
    op.execute(
        "UPDATE trigger_events SET delivery_claimed = true WHERE delivery_id <> ''"
        " AND id IN (SELECT event FROM trigger_deliveries)"
    )
    with op.batch_alter_table("trigger_events") as batch:
        batch.alter_column("delivery_claimed", server_default=None)
    op.create_index("ix_trigger_events_delivery", "trigger_events", COLUMNS, unique=True,
                    sqlite_where=sa.text("delivery_claimed"), postgresql_where=sa.text("delivery_claimed"))  # fmt: skip
    op.drop_index("ix_trigger_deliveries_seen_at", table_name="trigger_deliveries")
    op.drop_table("trigger_deliveries")


def downgrade() -> None:
    op.create_table(
        "trigger_deliveries",
        sa.Column("target", sa.String(length=400), nullable=False),
        sa.Column("delivery_id", sa.String(length=255), nullable=False),
        sa.Column("event", sa.Integer(), nullable=False),
        sa.Column("seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("target", "delivery_id"),
    )
    op.create_index("ix_trigger_deliveries_seen_at", "trigger_deliveries", ["seen_at"])
    op.execute(
        "INSERT INTO trigger_deliveries (target, delivery_id, event, seen_at)"
        " SELECT source || ':' || namespace || '/' || name,"
        " delivery_id, id, received_at FROM trigger_events WHERE delivery_claimed"
    )
    op.drop_index("ix_trigger_events_delivery", table_name="trigger_events")
    with op.batch_alter_table("trigger_events") as batch:
        batch.drop_column("delivery_claimed")
