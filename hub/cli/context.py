"""What every command shares: the settings, the database engine made on first use, and one error wording."""

from __future__ import annotations

import getpass
import sys
from typing import TYPE_CHECKING

import click
from sqlalchemy import Engine

from catalog.db import current_revision, make_engine
from catalog.errors import TaskhubError
from hub.config import Settings

if TYPE_CHECKING:
    from wsgiref.simple_server import WSGIServer

    from hub.services import Services


class Context:
    def __init__(self) -> None:
        self.settings = Settings.from_env()
        self._engine: Engine | None = None
        self._services: Services | None = None

    @property
    def engine(self) -> Engine:
        if self._engine is None:
            self.settings.catalogs_dir.mkdir(parents=True, exist_ok=True)
            self._engine = make_engine(self.settings.database_url)
        return self._engine

    @property
    def services(self) -> Services:
        """The hub's services (hub.services), on the migrated database."""
        from hub.services import Services

        if self._services is None:
            self._services = Services(self.settings, self.migrated_engine())
        return self._services

    def migrated_engine(self) -> Engine:
        if current_revision(self.engine) is None:
            raise click.ClickException("the database is empty: run `taskhub db upgrade` first")
        return self.engine


pass_context = click.make_pass_decorator(Context, ensure=True)


def cli_user() -> str:
    """Who runs the command, as the jobs and runs it starts record it."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no name for this uid (a container, say)
        return ""


def fail(error: TaskhubError) -> click.ClickException:
    return click.ClickException(str(error))


def registry_login(username: str | None, password_stdin: bool) -> tuple[str, str] | None:
    """The (user, password) of --username and --password-stdin, or None when no user is given."""
    if password_stdin and not username:
        raise click.UsageError("--password-stdin needs --username")
    if not username:
        return None
    if not password_stdin:
        raise click.UsageError("give the password on standard input with --password-stdin")
    password = sys.stdin.readline().rstrip("\n")
    if not password:
        raise click.UsageError("no password on standard input")
    return username, password


def start_probes(address: str, engine: Engine) -> WSGIServer:
    """Serve /livez and /metrics on address (--metrics-address) from a thread; a bad address is a usage error."""
    from hub.wsgi.probes import serve_probes

    try:
        server = serve_probes(address, engine)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--metrics-address") from None
    except OSError as exc:
        raise click.ClickException(f"cannot serve /metrics on {address}: {exc.strerror or exc}") from None
    click.echo(f"/livez and /metrics on http://{address.rsplit(':', 1)[0]}:{server.server_port}/", err=True)
    return server
