"""`taskhub events list|show`: what the sinks and catalog webhooks received, and what became of each event."""

from __future__ import annotations

import json
import logging
import sys
import uuid
from pathlib import Path

import click

from hub.cli import main
from hub.cli.context import Context, pass_context
from hub.objects import object_store
from triggers.events import EventLog, event_json
from triggers.models import EVENT_STATUSES, TriggerEvent


def _log(ctx: Context) -> EventLog:
    store = object_store(ctx.settings, ctx.migrated_engine())
    assert store.sealer is not None
    return EventLog(ctx.engine, store.sealer)


@main.group()
def events() -> None:
    """Events received by EventListener sinks and catalog webhooks, and what each trigger did with them."""


@events.command("list")
@click.option("--status", type=click.Choice(EVENT_STATUSES), help="Only events with this status.")
@click.option("--listener", metavar="NAMESPACE/NAME", help="Only the events of this EventListener.")
@click.option("--limit", type=click.IntRange(1, 1000), default=20, show_default=True, help="How many, newest first.")
@click.option("-o", "--output", type=click.Choice(["table", "json"]), default="table", show_default=True)
@pass_context
def events_list(ctx: Context, status: str | None, listener: str | None, limit: int, output: str) -> None:
    """The newest events first: number, listener, status, HTTP answer, triggers, runs created, reason."""
    namespace = name = None
    if listener:
        namespace, _, name = listener.rpartition("/")
        namespace = namespace or "default"
    rows, total = _log(ctx).recent(status=status, namespace=namespace, name=name, limit=limit)
    if output == "json":
        click.echo(json.dumps({"data": [event_json(r) for r in rows], "total": total}, indent=2))
        return
    if not rows:
        click.echo("no events recorded", err=True)
        return
    table = [["ID", "TO", "STATUS", "HTTP", "TRIGGERS", "RUNS", "RECEIVED", "REASON"]]
    for row in rows:
        shown = event_json(row)
        to = f"{row.namespace}/{row.name}" if row.source == "listener" else f"catalog {row.name}"
        table.append([str(row.id), to, row.status, str(row.http_status), str(shown["triggers"]), str(shown["created"]),
                      row.received_at.strftime("%Y-%m-%d %H:%M:%S"), row.reason[:80]])  # fmt: skip
    widths = [max(len(r[i]) for r in table) for i in range(len(table[0]))]
    for line in table:
        click.echo("  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip())


@events.command("show")
@click.argument("key")
@click.option("-o", "--output", type=click.Choice(["table", "json"]), default="table", show_default=True)
@click.option("--body", is_flag=True, help="Print the raw body as received instead (to standard output).")
@pass_context
def events_show(ctx: Context, key: str, output: str, body: bool) -> None:
    """One event, by number or eventID: headers (secret values redacted), each trigger's outcome, runs created."""
    try:
        lookup: int | str = int(key) if key.isdigit() else str(uuid.UUID(key))
    except ValueError:
        raise click.ClickException(f"event {key!r} not found") from None
    row = _log(ctx).get(lookup)
    if row is None:
        raise click.ClickException(f"event {key} not found")
    if body:
        sys.stdout.buffer.write(row.body)
        return
    shown = event_json(row, detail=True)
    if output == "json":
        click.echo(json.dumps(shown, indent=2))
        return
    _print_event(row, shown)


def _print_event(row: TriggerEvent, shown: dict) -> None:
    to = f"EventListener {row.namespace}/{row.name}" if row.source == "listener" else f"catalog {row.name}"
    click.echo(f"Event {row.id} ({row.event_id}) to {to}: {row.status}, answered {row.http_status}")
    click.echo(f"  {row.method} {row.url}, {row.size} bytes, received {row.received_at.isoformat()}")
    if row.delivery_id:
        click.echo(
            f"  delivery {row.delivery_id}" + (f", duplicate of event {row.duplicate_of}" if row.duplicate_of else "")
        )
    if row.reason:
        click.echo(f"  reason: {row.reason}")
    for outcome in shown["outcomes"]:
        stopped = f" by {outcome['interceptor']}" if outcome["interceptor"] else ""
        click.echo(f"Trigger {outcome['namespace']}/{outcome['trigger']}: {outcome['status']}{stopped}")
        if outcome["reason"]:
            click.echo(f"  {outcome['reason']}")
        for created in outcome["created"]:
            run = f" (run {created['run']})" if created.get("run") else ""
            click.echo(f"  created {created['kind']} {created['namespace']}/{created['name']}{run}")
    click.echo("Headers:")
    for name, value in row.headers:
        click.echo(f"  {name}: {value}")


@events.command("ingest")
@click.option("--follow", is_flag=True, help="Keep recording events as the sinks spool them, until SIGTERM or SIGINT.")
@pass_context
def events_ingest(ctx: Context, follow: bool) -> None:
    """Record the events the sinks spooled (TASKHUB_TRIGGERS_SPOOL) and queue their jobs.

    `taskhub serve` runs `taskhub events ingest --follow` beside its web workers when it spools (by default, on a
    SQLite database); run it once to record what a hub that is not running left in its spool."""
    import signal

    from hub.logs import configure_logging
    from hub.services import Services
    from runner.objects.sealing import KEY_FILE
    from triggers.spool import SpoolBusy, SpoolKeyError, SpoolMover

    configure_logging(ctx.settings.log_format, ctx.settings.log_level)
    directory = ctx.settings.serve_spool()
    if directory is None:
        raise click.ClickException("no spool: TASKHUB_TRIGGERS_SPOOL is off, and the database is not a SQLite file")
    key_file = Path(ctx.settings.data_dir) / KEY_FILE
    # Once, by hand, a new key would open none of the spooled headers; under serve (--follow) the key is the one
    # serve's web workers find or make, whoever comes first (runner/objects/sealing.py).
    if not follow and not ctx.settings.secrets_key and not key_file.exists():
        raise click.ClickException(
            f"no secrets key: the spool's headers are sealed with the hub's (TASKHUB_SECRETS_KEY, or {key_file})"
        )
    triggers = Services(ctx.settings, ctx.migrated_engine()).triggers
    try:
        mover = SpoolMover(directory, triggers.spool_cipher(), triggers.record_spooled,
                           durable=triggers.make_durable, wait=follow)  # fmt: skip
    except SpoolBusy as exc:
        raise click.ClickException(f"{exc} (`taskhub serve` records its events itself)") from None
    try:
        if follow:
            stopping: list[int] = []

            def stop(signum: int, _frame: object) -> None:
                stopping.append(signum)
                mover.interrupt()

            signal.signal(signal.SIGTERM, stop)
            signal.signal(signal.SIGINT, stop)
            while not stopping:
                mover.follow()
        while mover.move():  # what is left, or everything once
            pass
    except SpoolKeyError as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        mover.close()
    dropped = f"; {mover.dropped_bytes} bytes of events cut short by a crash dropped" if mover.dropped_bytes else ""
    summary = f"recorded {mover.moved} events from the spool in {directory}{dropped}"
    if follow:  # serve's child: its log is serve's (TASKHUB_LOG_FORMAT)
        logging.getLogger("taskhub.events").info(summary)
    else:
        click.echo(summary, err=True)
