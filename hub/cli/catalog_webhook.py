"""`taskhub catalog webhook NAME`: where a git host sends a catalog's push events, and the secret they are signed
with, so the catalog refreshes seconds after a push."""

from __future__ import annotations

import click

from catalog.errors import TaskhubError
from hub.cli.catalogs import catalog
from hub.cli.context import Context, fail, pass_context
from hub.objects import object_store
from triggers.catalog_webhooks import webhook_secret


@catalog.command("webhook")
@click.argument("name")
@pass_context
def catalog_webhook(ctx: Context, name: str) -> None:
    """Show the push webhook URL and secret of the git catalog NAME (the secret is made on first use)."""
    store = object_store(ctx.settings, ctx.migrated_engine())
    assert store.sealer is not None
    try:
        secret = webhook_secret(ctx.engine, store.sealer, name)
    except TaskhubError as exc:
        raise fail(exc) from None
    base = ctx.settings.hub_url.rstrip("/")
    click.echo(f"URL:     {base}/v1/webhooks/catalogs/{name}")
    click.echo(f"Secret:  {secret}")
    click.echo("Events:  push (GitHub and Gitea: content type application/json; GitLab: Push events)", err=True)
