"""`taskhub registry add|sync|list|set|login|logout` and `taskhub catalog publish`: registries of Tekton bundles,
indexed like catalogs."""

from __future__ import annotations

import click
from sqlalchemy.orm import Session

from catalog.errors import TaskhubError
from catalog.models import CATALOG_TYPES
from catalog.publish import bundle_target
from catalog.sync import add_catalog
from hub.cli import main
from hub.cli.catalogs import (
    catalog,
    list_catalogs,
    new_refresh_option,
    refresh_option,
    set_catalog,
    sync_catalogs,
)
from hub.cli.context import Context, cli_user, pass_context, registry_login
from hub.registries import credential_store
from jobs.scheduler import format_refresh


@catalog.command("publish")
@click.argument("name")
@click.option("--registry", "target", required=True, help="host[:port]/prefix to push the bundles under.")
@click.option("--username", help="Registry user (else the credentials stored by `registry add`).")
@click.option("--password-stdin", is_flag=True, help="Read the registry password from standard input.")
@pass_context
def catalog_publish(ctx: Context, name: str, target: str, username: str | None, password_stdin: bool) -> None:
    """Push every indexed version of NAME as a bundle PREFIX/<kind>/<name>:<version>, skipping what is there."""
    try:
        summary = ctx.services.publish.publish_here(
            name, target, credentials=registry_login(username, password_stdin),
            report=lambda line: click.echo(line, err=True), created_by=cli_user(),
        )  # fmt: skip
    except TaskhubError as exc:
        raise click.ClickException(str(exc)) from None
    for line in summary.lines():
        click.echo(line)
    if summary.failed or summary.stopped:
        raise click.ClickException("some versions were not published")


@main.group()
def registry() -> None:
    """Registries of Tekton bundles, indexed like catalogs."""


@registry.command("add")
@click.argument("name")
@click.argument("target")
@click.option("--username", help="Registry user.")
@click.option("--password-stdin", is_flag=True, help="Read the registry password from standard input.")
@click.option(
    "--repository", "repositories", multiple=True, help="Repository under the prefix to read, for registries "
    "that do not list theirs (/v2/_catalog); repeat for more.",
)  # fmt: skip
@click.option("--type", "catalog_type", type=click.Choice(CATALOG_TYPES), default="community", show_default=True)
@refresh_option
@pass_context
def registry_add(
    ctx: Context,
    name: str,
    target: str,
    username: str | None,
    password_stdin: bool,
    repositories: tuple[str, ...],
    catalog_type: str,
    refresh: int,
) -> None:
    """Register the bundles under TARGET (host[:port]/prefix) as catalog NAME; index it with `registry sync`."""
    try:
        host, prefix = bundle_target(target)
        credentials = registry_login(username, password_stdin)
        with Session(ctx.migrated_engine()) as session, session.begin():
            repos = [r if r.startswith(f"{prefix}/") else f"{prefix}/{r}" for r in repositories]
            add_catalog(session, name, target, type=catalog_type, repositories=repos, refresh_seconds=refresh)
        if credentials:
            credential_store(ctx.settings, ctx.migrated_engine()).set(host, *credentials)
    except TaskhubError as exc:
        raise click.ClickException(str(exc)) from None
    every = format_refresh(refresh)
    click.echo(
        f"added registry {name} ({host}/{prefix}), refresh {every}; index it now:\n  taskhub registry sync {name}"
    )


@registry.command("login")
@click.argument("host")
@click.option("--username", required=True, help="Registry user.")
@click.option("--password-stdin", is_flag=True, help="Read the registry password from standard input.")
@pass_context
def registry_login_command(ctx: Context, host: str, username: str, password_stdin: bool) -> None:
    """Store (or replace) the login every hub and worker of this database uses for HOST (host[:port])."""
    credentials = registry_login(username, password_stdin)
    assert credentials is not None  # --username is required
    try:
        credential_store(ctx.settings, ctx.migrated_engine()).set(host, *credentials)
    except TaskhubError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"stored the login of {username} for {host}")


@registry.command("logout")
@click.argument("host")
@pass_context
def registry_logout(ctx: Context, host: str) -> None:
    """Forget the login stored for HOST; its registries are then read anonymously."""
    try:
        forgotten = credential_store(ctx.settings, ctx.migrated_engine()).delete(host)
    except TaskhubError as exc:
        raise click.ClickException(str(exc)) from None
    if not forgotten:
        raise click.ClickException(f"no login is stored for {host}")
    click.echo(f"forgot the login for {host}")


@registry.command("sync")
@click.argument("name", required=False)
@click.option("--full", is_flag=True, help="Re-check release tags too (e.g. after a version tag was re-pushed).")
@pass_context
def registry_sync(ctx: Context, name: str | None, full: bool) -> None:
    """Index the bundles of one registry, or of all; only bundles not seen before are downloaded.

    Tags that read as versions are releases: once indexed they are not asked for again unless --full is given.
    """
    try:
        names = ctx.services.syncs.names(name, registries_only=True)
    except TaskhubError as exc:
        raise click.ClickException(str(exc)) from None
    if not names:
        raise click.ClickException("no registries: add one with `taskhub registry add NAME HOST/PREFIX`")
    sync_catalogs(ctx, names, full=full)


@registry.command("list")
@pass_context
def registry_list(ctx: Context) -> None:
    """The registries: how often each is synced, how its last sync ended, and when the next one is."""
    list_catalogs(ctx, registries=True)


@registry.command("set")
@click.argument("name")
@new_refresh_option
@pass_context
def registry_set(ctx: Context, name: str, refresh: int) -> None:
    """Change how often registry NAME is synced; the new interval counts from its last sync."""
    set_catalog(ctx, name, refresh, registry=True)
