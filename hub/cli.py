"""The taskhub command line: database, catalogs and the server."""

from __future__ import annotations

import gc
import importlib
import sys
import time
from collections.abc import Sequence
from typing import Any, NamedTuple

import click
from sqlalchemy import Engine
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from catalog.db import current_revision, make_engine, upgrade
from catalog.errors import TaskhubError
from catalog.models import CATALOG_TYPES, Catalog
from hub.config import Settings

# catalog.sync (git checkouts, registry reads, bundles) is imported inside the commands that add or sync catalogs,
# so that `catalog list`, `db upgrade` and `--help` start without it.


class Context:
    def __init__(self) -> None:
        self.settings = Settings.from_env()
        self._engine: Engine | None = None

    @property
    def engine(self) -> Engine:
        if self._engine is None:
            self.settings.catalogs_dir.mkdir(parents=True, exist_ok=True)
            self._engine = make_engine(self.settings.database_url)
        return self._engine

    def migrated_engine(self) -> Engine:
        if current_revision(self.engine) is None:
            raise click.ClickException("the database is empty: run `taskhub db upgrade` first")
        return self.engine


pass_context = click.make_pass_decorator(Context, ensure=True)


def _fail(error: TaskhubError) -> click.ClickException:
    return click.ClickException(str(error))


class LazyCommand(NamedTuple):
    module: str  # imported when the command is used; it registers the command on its group
    summary: str  # the first sentence of the command's help, which `--help` lists without importing the module


class LazyGroup(click.Group):
    """A group whose commands in `lazy` (command name → LazyCommand) live in modules imported only when the command
    is used: such a module registers its commands on the group as it is imported, so `taskhub catalog sync` does not
    pay for the Kubernetes client, Flask and the local executor that other commands import, and `taskhub --help`
    pays for none of them."""

    def __init__(self, *args: Any, lazy: dict[str, LazyCommand] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lazy = dict(lazy or {})

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self.lazy})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in self.lazy:
            importlib.import_module(self.lazy[cmd_name].module)
        return super().get_command(ctx, cmd_name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        # A command whose module is not imported yet is listed by its summary: the help imports no module.
        stand_ins = {name: click.Command(name, help=lazy.summary) for name, lazy in self.lazy.items()}
        click.Group(commands={**stand_ins, **self.commands}).format_commands(ctx, formatter)


class _Commands(LazyGroup):
    """The top-level group: a database that cannot be reached is a one-line error, not a traceback."""

    def main(self, args: Sequence[str] | None = None, *rest: Any, **kwargs: Any) -> Any:
        if args is None:  # the taskhub process itself (arguments from sys.argv), not a caller running it in-process
            # What is imported by now lives as long as the process: spare the garbage collector walking it at every
            # collection and once more at exit, where that walk took a sixth of a short command's time.
            gc.freeze()
        return super().main(args, *rest, **kwargs)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except OperationalError as exc:
            raise click.ClickException(f"the database is unavailable: {' '.join(str(exc.orig).split())}") from None


@click.group(
    cls=_Commands,
    lazy={
        "bundle": LazyCommand(
            "hub.cli_registry", "Tekton bundles in OCI registries, in the format `tkn bundle` writes."
        ),
        "cancel": LazyCommand(
            "hub.cli_kube_run",
            "Cancel the run NAME on the cluster (PipelineRun: spec.status Cancelled; TaskRun: TaskRunCancelled).",
        ),
        "hub": LazyCommand(
            "hub.cli_hub",
            "Search catalogs and install their resources, like `tkn hub`, against a Tekton Hub or Artifact Hub API.",
        ),
        "registry": LazyCommand("hub.cli_registry", "Registries of Tekton bundles, indexed like catalogs."),
        "resolve": LazyCommand("hub.cli_resolve", "Resolve a reference with Tekton's resolver params, e.g."),
        "resolver": LazyCommand(
            "hub.cli_resolver", "taskhub as a cluster's Tekton resolver (`resolver: taskhub` in a PipelineRun)."
        ),
        "run": LazyCommand(
            "hub.cli_run",
            "Resolve every reference of a TaskRun or PipelineRun, record a lock of versions and digests in its "
            "`taskhub.dev/lock` annotation, and run it; exits 0 only when the run succeeded.",
        ),
        "runs": LazyCommand(
            "hub.cli_runs", "Recorded runs (`taskhub run`, POST /v1/runs): status, timings, lock and step logs."
        ),
        "token": LazyCommand(
            "hub.cli_tokens", "API tokens for writes and admin operations (and for reading a private hub)."
        ),
    },
)
def main() -> None:
    """taskhub: a self-hosted hub for Tekton Tasks, Pipelines and StepActions."""


@main.group()
def db() -> None:
    """The database (TASKHUB_DATABASE_URL; default a SQLite file in TASKHUB_DATA_DIR)."""


@db.command("upgrade")
@pass_context
def db_upgrade(ctx: Context) -> None:
    """Create the database or migrate it to the current schema."""
    upgrade(ctx.engine)
    click.echo(f"database at revision {current_revision(ctx.engine)}")


@main.group(
    cls=LazyGroup,
    lazy={
        "publish": LazyCommand(
            "hub.cli_registry",
            "Push every indexed version of NAME as a bundle PREFIX/<kind>/<name>:<version>, skipping what is there.",
        )
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
@pass_context
def catalog_add(
    ctx: Context, name: str, source: str, revision: str | None, context_dir: str | None, catalog_type: str
) -> None:
    """Register catalog NAME read from SOURCE (a directory or a git URL); index it with `catalog sync`."""
    from catalog.sync import add_catalog

    try:
        with Session(ctx.migrated_engine()) as session, session.begin():
            added = add_catalog(session, name, source, revision=revision, context_dir=context_dir, type=catalog_type)
            click.echo(f"added catalog {added.name} ({added.provider}: {added.source}); index it with:")
            click.echo(f"  taskhub catalog sync {added.name}")
    except TaskhubError as exc:
        raise _fail(exc) from None


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
@pass_context
def catalog_sync(ctx: Context, name: str | None) -> None:
    """Index one catalog, or all of them; prints what changed and what was rejected."""
    from catalog.sync import get_catalog

    engine = ctx.migrated_engine()
    with Session(engine) as session:
        try:
            names = [get_catalog(session, name).name] if name else [c.name for c in session.query(Catalog)]
        except TaskhubError as exc:
            raise _fail(exc) from None
    if not names:
        raise click.ClickException("no catalogs: add one with `taskhub catalog add NAME SOURCE`")
    sync_catalogs(ctx, names)


def sync_catalogs(ctx: Context, names: list[str], *, full: bool = False) -> None:
    """Sync each catalog in its own transaction; a failed one keeps its previous index and is reported."""
    from catalog.sync import record_failure

    engine = ctx.migrated_engine()
    failed = []
    for number, catalog_name in enumerate(sorted(names), 1):
        click.echo(f"[{number}/{len(names)}] {catalog_name}: fetching", err=True)
        started = time.perf_counter()
        try:
            _sync_one(engine, ctx.settings, catalog_name, full=full)
        except TaskhubError as exc:
            failed.append(catalog_name)
            record_failure(engine, catalog_name, str(exc))
            click.echo(f"{catalog_name}: sync failed, the previous index is kept: {exc}", err=True)
            continue
        click.echo(f"  took {time.perf_counter() - started:.2f} s", err=True)
    if failed:
        raise click.ClickException(f"{len(failed)} of {len(names)} catalogs failed to sync: {', '.join(failed)}")


def _sync_one(engine: Engine, settings: Settings, name: str, *, full: bool = False) -> None:
    from catalog.sync import sync_by_name
    from hub.registries import registry_client

    def progress(line: str) -> None:
        click.echo(f"  {line}", err=True)

    registries = lambda host: registry_client(settings, host)  # noqa: E731
    summary = sync_by_name(engine, name, settings.catalogs_dir, registries, progress, full=full)
    for line in summary.lines():
        click.echo(line)


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
            raise _fail(exc) from None
        if catalog.last_error:
            click.echo(f"critical\t.\tlast sync failed: {catalog.last_error}")
        for error in catalog.errors:
            if level is None or error.level == level:
                click.echo(f"{error.level}\t{error.path}\t{error.message}")


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
@click.option("--workers", default=2, show_default=True, type=int, help="worker processes")
@click.option("--threads", default=4, show_default=True, type=int,
              help="threads per worker: a resolve waiting on a registry holds a thread, not a worker")  # fmt: skip
@click.option("--access-log/--no-access-log", default=False, show_default=True, help="log every request")
@pass_context
def serve(ctx: Context, host: str, port: int, workers: int, threads: int, access_log: bool) -> None:
    """Serve the hub (web UI and APIs) with granian; each worker builds the hub from the environment's settings."""
    from hub.server import serve as serve_wsgi

    ctx.migrated_engine().dispose()
    click.echo(f"taskhub serving on http://{host}:{port}/", err=True)
    serve_wsgi("hub:create_app", host=host, port=port, workers=workers, threads=threads, access_log=access_log)
    sys.exit(0)
