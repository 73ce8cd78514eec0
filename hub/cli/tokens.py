"""Command line for API tokens: token create, list and revoke."""

from __future__ import annotations

import click
from sqlalchemy.orm import Session

from catalog.errors import TaskhubError
from hub.cli import main
from hub.cli.context import Context, pass_context
from hub.tokens import DEFAULT_EXPIRY, SCOPES, create_token, list_tokens, revoke_token, token_state


@main.group()
def token() -> None:
    """API tokens for writes and admin operations (and for reading a private hub)."""


@token.command("create")
@click.argument("name")
@click.option(
    "--scope", "scopes", multiple=True, required=True,
    help="Scope to grant; repeat for more. One of: " + ", ".join(SCOPES) + ".",
)  # fmt: skip
@click.option(
    "--expires", default=DEFAULT_EXPIRY, show_default=True,
    help="A duration (30d, 12h, 2w), an ISO date or time (2027-01-31, UTC unless given), or never.",
)  # fmt: skip
@pass_context
def token_create(ctx: Context, name: str, scopes: tuple[str, ...], expires: str) -> None:
    """Create token NAME and print it; it is shown this once and stored only as a hash."""
    try:
        with Session(ctx.migrated_engine()) as session, session.begin():
            created = create_token(session, name, scopes, expires)
    except TaskhubError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(created.token)
    when = f"expires {created.expires_at.isoformat()}" if created.expires_at else "never expires: revoke it when done"
    click.echo(f"token {created.name} ({', '.join(created.scopes)}) {when}", err=True)
    click.echo("it is shown only now: store it in a secret", err=True)


@token.command("list")
@pass_context
def token_list(ctx: Context) -> None:
    """Every token: name, scopes, state, created, expires, last used, revoked; never the token itself."""
    with Session(ctx.migrated_engine()) as session:
        rows = list_tokens(session)
        click.echo("NAME\tSCOPES\tSTATE\tCREATED\tEXPIRES\tLAST USED\tREVOKED")
        for row in rows:
            cells = [row.created_at, row.expires_at, row.last_used_at, row.revoked_at]
            stamps = [c.isoformat() if c else "-" for c in cells]
            if row.expires_at is None:
                stamps[1] = "never"
            click.echo("\t".join([row.name, ",".join(row.scopes), token_state(row), *stamps]))


@token.command("revoke")
@click.argument("name")
@pass_context
def token_revoke(ctx: Context, name: str) -> None:
    """Revoke the live token NAME; every worker refuses it within TASKHUB_TOKEN_CACHE_SECONDS."""
    try:
        with Session(ctx.migrated_engine()) as session, session.begin():
            revoke_token(session, name)
    except TaskhubError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"revoked token {name}")
