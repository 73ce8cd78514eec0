"""`taskhub worker`: does the queued jobs (syncs, publishes, runs, Triggers events) and runs the scheduler."""

from __future__ import annotations

import click

from hub.cli import main
from hub.cli.context import Context, pass_context, start_probes
from jobs import KINDS


def _kinds(_ctx: click.Context, _param: click.Parameter, value: str | None) -> list[str] | None:
    if not value:
        return None
    kinds = [kind.strip() for kind in value.split(",") if kind.strip()]
    unknown = [kind for kind in kinds if kind not in KINDS]
    if unknown or not kinds:
        raise click.BadParameter(f"unknown kind {', '.join(unknown or [value])}; the kinds are {', '.join(KINDS)}")
    return kinds


@main.command("worker")
@click.option("--concurrency", type=click.IntRange(1, 256),
              help="Jobs done at once [default: TASKHUB_WORKER_CONCURRENCY].")  # fmt: skip
@click.option("--kinds", callback=_kinds, metavar="KIND,...",
              help=f"Only these kinds of jobs ({', '.join(KINDS)}) [default: every kind].")  # fmt: skip
@click.option("--metrics-address", metavar="HOST:PORT", help="Serve /livez and /metrics there (e.g. 0.0.0.0:9000).")
@pass_context
def worker(ctx: Context, concurrency: int | None, kinds: list[str] | None, metrics_address: str | None) -> None:
    """Do queued jobs (syncs, publishes, runs, Triggers events) and queue the syncs that are due.

    Any number of workers may share a database. SIGTERM stops it: its running jobs get the grace period
    (TASKHUB_SHUTDOWN_GRACE_SECONDS) to end, then syncs are handed back to other workers and runs cancelled."""
    from hub.logs import configure_logging
    from hub.services import Services

    configure_logging(ctx.settings.log_format, ctx.settings.log_level)
    engine = ctx.migrated_engine()
    if metrics_address:  # its jobs' and runs' metrics live in this process: a scrape of a hub does not see them
        start_probes(metrics_address, engine)
    running = Services(ctx.settings, engine).worker(concurrency=concurrency, kinds=kinds)
    running.install_signal_handlers()
    running.run()
