"""`taskhub catalog`: catalogs in the tektoncd/catalog layout, added, synced, listed and their problems shown."""

from __future__ import annotations

import time

import click
from sqlalchemy.orm import Session

from catalog.errors import TaskhubError
from catalog.models import CATALOG_TYPES, Catalog
from hub.cli.context import Context, fail, pass_context
from hub.cli.lazy import LazyCommand, LazyGroup

# catalog.sync (git checkouts, registry reads, bundles) is imported inside the commands that add or sync catalogs,
# so that `catalog list`, `db upgrade` and `--help` start without it.


@click.group(
    cls=LazyGroup,
    lazy={
        "publish": LazyCommand(
            "hub.cli.registries",
            "Push every indexed version of NAME as a bundle PREFIX/<kind>/<name>:<version>, skipping what is there.",
        ),
        "webhook": LazyCommand(
            "hub.cli.catalog_webhook",
            "Show the push webhook URL and secret of the git catalog NAME (the secret is made on first use).",
        ),
    },
)
def catalog() -> None:
    """Catalogs in the tektoncd/catalog layout."""


@catalog.command("add")
@click.argument("name")
@click.argument("source")
@click.option("--revision", help="Branch, tag or commit of a git source (default: its HEAD).")
@click.option("--context-dir", help="Folder inside the source that holds task/, pipeline/, stepaction/.")
@click.option("--type", "catalog_type", type=click.Choice(CATALOG_TYPES), default="community", show_default=True)
@click.option("--org", help="Who publishes it (default: the owner in a GitHub, GitLab or Bitbucket URL).")
@pass_context
def catalog_add(
    ctx: Context,
    name: str,
    source: str,
    revision: str | None,
    context_dir: str | None,
    catalog_type: str,
    org: str | None,
) -> None:
    """Register catalog NAME read from SOURCE (a directory or a git URL); index it with `catalog sync`."""
    from catalog.sync import add_catalog

    try:
        with Session(ctx.migrated_engine()) as session, session.begin():
            added = add_catalog(
                session, name, source, revision=revision, context_dir=context_dir, type=catalog_type, org=org
            )
            click.echo(f"added catalog {added.name} ({added.provider}: {added.source}); index it with:")
            click.echo(f"  taskhub catalog sync {added.name}")
    except TaskhubError as exc:
        raise fail(exc) from None


@catalog.command("list")
@pass_context
def catalog_list(ctx: Context) -> None:
    """The registered catalogs and when they were last synced."""
    with Session(ctx.migrated_engine()) as session:
        for c in session.query(Catalog).order_by(Catalog.name):
            synced = c.synced_at.isoformat() if c.synced_at else "never synced"
            state = f"  last sync failed: {c.last_error}" if c.last_error else ""
            click.echo(f"{c.name}\t{c.type}\t{c.source}\t{synced}{state}")


@catalog.command("sync")
@click.argument("name", required=False)
@click.option("--full", is_flag=True, help="Read every version folder again, also those whose files did not change.")
@pass_context
def catalog_sync(ctx: Context, name: str | None, full: bool) -> None:
    """Index one catalog, or all of them; prints what changed and what was rejected."""
    from catalog.sync import get_catalog

    engine = ctx.migrated_engine()
    with Session(engine) as session:
        try:
            names = [get_catalog(session, name).name] if name else [c.name for c in session.query(Catalog)]
        except TaskhubError as exc:
            raise fail(exc) from None
    if not names:
        raise click.ClickException("no catalogs: add one with `taskhub catalog add NAME SOURCE`")
    sync_catalogs(ctx, names, full=full)


def sync_catalogs(ctx: Context, names: list[str], *, full: bool = False) -> None:
    """Sync each catalog in its own transaction, as a worker does (under the catalog's lease, so never beside
    another sync of it); a failed one keeps its previous index and is reported."""
    from hub.registries import registry_client
    from jobs.syncs import CatalogSyncer
    from jobs.worker import worker_name

    settings = ctx.settings
    syncer = CatalogSyncer(ctx.migrated_engine(), settings.catalogs_dir, lambda host: registry_client(settings, host))
    holder = f"taskhub catalog sync on {worker_name()}"
    failed = []
    for number, catalog_name in enumerate(sorted(names), 1):
        click.echo(f"[{number}/{len(names)}] {catalog_name}: fetching", err=True)
        started = time.perf_counter()
        try:
            summary = syncer.sync(catalog_name, holder, full=full, report=_progress)
        except TaskhubError as exc:
            failed.append(catalog_name)
            click.echo(f"{catalog_name}: sync failed, the previous index is kept: {exc}", err=True)
            continue
        for line in summary.lines():
            click.echo(line)
        click.echo(f"  took {time.perf_counter() - started:.2f} s", err=True)
    if failed:
        raise click.ClickException(f"{len(failed)} of {len(names)} catalogs failed to sync: {', '.join(failed)}")


def _progress(line: str) -> None:
    click.echo(f"  {line}", err=True)


@catalog.command("errors")
@click.argument("name")
@click.option("--level", type=click.Choice(["critical", "error", "warning", "info"]), help="Only this level.")
@pass_context
def catalog_errors(ctx: Context, name: str, level: str | None) -> None:
    """The problems recorded by the last sync of NAME: level, file and reason, one per line."""
    from catalog.sync import get_catalog

    with Session(ctx.migrated_engine()) as session:
        try:
            catalog = get_catalog(session, name)
        except TaskhubError as exc:
            raise fail(exc) from None
        if catalog.last_error:
            click.echo(f"critical\t.\tlast sync failed: {catalog.last_error}")
        for error in catalog.errors:
            if level is None or error.level == level:
                click.echo(f"{error.level}\t{error.path}\t{error.message}")
