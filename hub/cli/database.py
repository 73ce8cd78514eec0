"""`taskhub db`: the database schema."""

from __future__ import annotations

import click

from catalog.db import current_revision, upgrade
from hub.cli.context import Context, pass_context


@click.group()
def db() -> None:
    """The database (TASKHUB_DATABASE_URL; default a SQLite file in TASKHUB_DATA_DIR)."""


@db.command("upgrade")
@pass_context
def db_upgrade(ctx: Context) -> None:
    """Create the database or migrate it to the current schema."""
    upgrade(ctx.engine)
    click.echo(f"database at revision {current_revision(ctx.engine)}")
