"""Tekton Hub's 20 categories, present from the start so /v1/categories lists them with stable ids; catalogs' org

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-08 09:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Tekton Hub's config (tektoncd/hub: config.yaml), in its order: its initializer gives them ids 1 to 20 that way.
CATEGORIES = (
    "Automation", "Build Tools", "CLI", "Cloud", "Code Quality", "Continuous Integration", "Deployment",
    "Developer Tools", "Image Build", "Integration & Delivery", "Git", "Kubernetes", "Messaging",
    "Monitoring", "Networking", "Openshift", "Publishing", "Security", "Storage", "Testing",
)  # fmt: skip


def upgrade() -> None:
    # Plain ALTER TABLE: on SQLite a batch may re-create the table, and dropping the old one with foreign keys on
    # deletes every resource of every catalog (ON DELETE CASCADE).
    op.add_column("catalogs", sa.Column("org", sa.String(length=255), nullable=True))
    categories = sa.table("categories", sa.column("name", sa.String))
    present = {name.lower() for (name,) in op.get_bind().execute(sa.select(categories.c.name))}
    missing = [{"name": name} for name in CATEGORIES if name.lower() not in present]
    if missing:
        op.bulk_insert(categories, missing)


def downgrade() -> None:
    op.drop_column("catalogs", "org")  # ALTER TABLE ... DROP COLUMN (SQLite 3.35+), as in upgrade
    # categories in use must stay; unused ones harm nothing
