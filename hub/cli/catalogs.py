"""`taskhub catalog`: catalogs in the tektoncd/catalog layout, added, synced, listed and their problems shown."""

from __future__ import annotations

import time
from typing import Any

import click
from sqlalchemy import select
from sqlalchemy.orm import Session

from catalog.errors import TaskhubError
from catalog.models import CATALOG_TYPES, OCI, Catalog
from hub.cli.context import Context, cli_user, fail, pass_context
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


class RefreshInterval(click.ParamType):
    """--refresh: "30m", "5m", "1h", "never", read as seconds (0: never)."""

    name = "interval"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int:
        if isinstance(value, int):
            return value
        from jobs.scheduler import parse_refresh

        try:
            return parse_refresh(str(value))
        except TaskhubError as exc:
            self.fail(str(exc), param, ctx)


REFRESH_HELP = "How often the scheduler syncs it: 30m, 5m, 1h, 1d, or never (only when asked)."
refresh_option = click.option("--refresh", type=RefreshInterval(), default="30m", show_default=True, help=REFRESH_HELP)
new_refresh_option = click.option("--refresh", type=RefreshInterval(), required=True, help=REFRESH_HELP)


@catalog.command("add")
@click.argument("name")
@click.argument("source")
@click.option("--revision", help="Branch, tag or commit of a git source (default: its HEAD).")
@click.option("--context-dir", help="Folder inside the source that holds task/, pipeline/, stepaction/.")
@click.option("--type", "catalog_type", type=click.Choice(CATALOG_TYPES), default="community", show_default=True)
@click.option("--org", help="Who publishes it (default: the owner in a GitHub, GitLab or Bitbucket URL).")
@refresh_option
@pass_context
def catalog_add(
    ctx: Context,
    name: str,
    source: str,
    revision: str | None,
    context_dir: str | None,
    catalog_type: str,
    org: str | None,
    refresh: int,
) -> None:
    """Register catalog NAME read from SOURCE (a directory or a git URL); index it with `catalog sync`."""
    from catalog.sync import add_catalog
    from jobs.scheduler import format_refresh

    try:
        with Session(ctx.migrated_engine()) as session, session.begin():
            added = add_catalog(
                session, name, source, revision=revision, context_dir=context_dir, type=catalog_type, org=org,
                refresh_seconds=refresh,
            )  # fmt: skip
            every = format_refresh(added.refresh_seconds)
            click.echo(f"added catalog {added.name} ({added.provider}: {added.source}), refresh {every}; index it now:")
            click.echo(f"  taskhub catalog sync {added.name}")
    except TaskhubError as exc:
        raise fail(exc) from None


@catalog.command("list")
@pass_context
def catalog_list(ctx: Context) -> None:
    """The catalogs: how often each is synced, how its last sync ended, and when the next one is."""
    list_catalogs(ctx, registries=False)


@catalog.command("set")
@click.argument("name")
@new_refresh_option
@pass_context
def catalog_set(ctx: Context, name: str, refresh: int) -> None:
    """Change how often catalog NAME is synced; the new interval counts from its last sync."""
    set_catalog(ctx, name, refresh, registry=False)


def list_catalogs(ctx: Context, *, registries: bool) -> None:
    """One line per catalog (or registry): name, type, source, refresh, last sync and its outcome, next sync."""
    from jobs.scheduler import sync_schedules

    query = select(Catalog).order_by(Catalog.name)
    with Session(ctx.migrated_engine()) as session:
        listed = list(session.scalars(query.where(Catalog.provider == OCI) if registries else query))
        for c, plan in zip(listed, sync_schedules(session, listed), strict=True):
            click.echo(
                f"{c.name}\t{c.type}\t{c.source}\trefresh {plan.refresh}\tlast sync {plan.last_text}"
                f"\tnext sync {plan.next_text}"
            )


def set_catalog(ctx: Context, name: str, refresh: int, *, registry: bool) -> None:
    """Set the refresh interval of catalog (or registry) NAME and say when its next sync is."""
    from jobs.scheduler import format_refresh, set_refresh, sync_schedules

    with Session(ctx.migrated_engine()) as session, session.begin():
        found = session.scalar(select(Catalog).where(Catalog.name == name.lower()))
        if found is None or (registry and found.provider != OCI):
            raise click.ClickException(f"{'registry' if registry else 'catalog'} {name!r} not found")
        set_refresh(found, refresh)
        (plan,) = sync_schedules(session, [found])
        click.echo(f"{found.name}: refresh {format_refresh(refresh)}, next sync {plan.next_text}")


@catalog.command("sync")
@click.argument("name", required=False)
@click.option("--full", is_flag=True, help="Read every version folder again, also those whose files did not change.")
@pass_context
def catalog_sync(ctx: Context, name: str | None, full: bool) -> None:
    """Index one catalog, or all of them; prints what changed and what was rejected."""
    try:
        names = ctx.services.syncs.names(name)
    except TaskhubError as exc:
        raise fail(exc) from None
    if not names:
        raise click.ClickException("no catalogs: add one with `taskhub catalog add NAME SOURCE`")
    sync_catalogs(ctx, names, full=full)


def sync_catalogs(ctx: Context, names: list[str], *, full: bool = False) -> None:
    """Sync each catalog here, one after the other (hub.services.SyncService.sync_here: under the catalog's lease,
    recorded as a job); a failed one keeps its previous index and is reported."""
    failed = []

    def progress(line: str) -> None:
        click.echo(f"  {line}", err=True)

    for number, catalog_name in enumerate(sorted(names), 1):
        click.echo(f"[{number}/{len(names)}] {catalog_name}: fetching", err=True)
        started = time.perf_counter()
        try:
            summary = ctx.services.syncs.sync_here(catalog_name, full=full, report=progress, created_by=cli_user())
        except TaskhubError as exc:
            failed.append(catalog_name)
            click.echo(f"{catalog_name}: sync failed, the previous index is kept: {exc}", err=True)
            continue
        for line in summary.lines():
            click.echo(line)
        click.echo(f"  took {time.perf_counter() - started:.2f} s", err=True)
    if failed:
        raise click.ClickException(f"{len(failed)} of {len(names)} catalogs failed to sync: {', '.join(failed)}")


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
