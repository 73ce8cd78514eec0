"""`taskhub jobs list|show|cancel`: background work (syncs, publishes, runs, Triggers events) as the queue records
it, wherever it was asked for (the API, the scheduler, a webhook, another command)."""

from __future__ import annotations

import json
from datetime import datetime

import click

from catalog.errors import TaskhubError
from hub.cli import main
from hub.cli.context import Context, fail, pass_context
from jobs import KINDS
from jobs.models import STATES, Job


@main.group()
def jobs() -> None:
    """Background jobs (syncs, publishes, runs, Triggers events): state, progress, result and error."""


def _get(ctx: Context, job_id: int) -> Job:
    job = ctx.services.queue.get(job_id) if job_id < 2**31 else None
    if job is None:
        raise click.ClickException(f"job {job_id} not found")
    return job


def _time(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC") if moment is not None else "-"


def _progress(job: Job) -> str:
    if job.progress_total:
        return f"{job.progress_done}/{job.progress_total}"
    return str(job.progress_done) if job.progress_done else "-"


@jobs.command("list")
@click.option("--kind", type=click.Choice(list(KINDS)), help="Only jobs of this kind.")
@click.option("--state", type=click.Choice(STATES), help="Only jobs in this state.")
@click.option("--target", help="Only jobs on this target (a catalog's name, a run's id, an event's number).")
@click.option("--limit", type=click.IntRange(1, 1000), default=20, show_default=True, help="How many, newest first.")
@click.option("-o", "--output", type=click.Choice(["table", "json"]), default="table", show_default=True)
@pass_context
def jobs_list(ctx: Context, kind: str | None, state: str | None, target: str | None, limit: int, output: str) -> None:
    """The newest jobs first: id, kind, target, state, attempts, progress, when, and the error of failed ones."""
    listed, total = ctx.services.queue.list(kind=kind, state=state, target=target, limit=limit)
    if output == "json":
        click.echo(json.dumps({"data": [job.to_json() for job in listed], "total": total}, indent=2))
        return
    if not listed:
        click.echo("no jobs", err=True)
        return
    rows = [["ID", "KIND", "TARGET", "STATE", "ATTEMPTS", "PROGRESS", "CREATED", "ERROR"]]
    rows += [
        [str(j.id), j.kind, j.target, j.state, f"{j.attempts}/{j.max_attempts}", _progress(j), _time(j.created_at),
         (j.error or "").splitlines()[0][:80] if j.error and j.state != "succeeded" else ""]
        for j in listed
    ]  # fmt: skip
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        click.echo("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
    if total > len(listed):
        click.echo(f"{len(listed)} of {total} jobs; --limit shows more", err=True)


@jobs.command("show")
@click.argument("job_id", metavar="ID", type=int)
@click.option("-o", "--output", type=click.Choice(["table", "json"]), default="table", show_default=True)
@pass_context
def jobs_show(ctx: Context, job_id: int, output: str) -> None:
    """One job: what it does, where it stands, who holds it, and how it ended (its result or error)."""
    job = _get(ctx, job_id)
    if output == "json":
        click.echo(json.dumps(job.to_json(), indent=2))
        return
    lines = [
        f"Job:        {job.id}",
        f"Kind:       {job.kind} {job.target}",
        f"State:      {job.state}" + (" (cancel requested)" if job.cancel_requested and job.state == "running" else ""),
        f"Attempts:   {job.attempts} of {job.max_attempts}",
        f"Created:    {_time(job.created_at)}" + (f" by {job.created_by}" if job.created_by else ""),
        f"Started:    {_time(job.started_at)}",
        f"Finished:   {_time(job.finished_at)}",
    ]
    if job.worker:
        lines.append(f"Worker:     {job.worker}" + (f" (lease until {_time(job.lease_expires_at)})"
                                                   if job.lease_expires_at else ""))  # fmt: skip
    if job.progress_done or job.progress_message:
        lines.append(f"Progress:   {_progress(job)} {job.progress_message}".rstrip())
    if job.payload:
        lines.append(f"Payload:    {json.dumps(job.payload)}")
    if job.error:
        lines += ["", "Error:", *(f"  {line}" for line in job.error.splitlines())]
    if job.result:
        result = job.result if isinstance(job.result, list) else json.dumps(job.result, indent=2).splitlines()
        lines += ["", "Result:", *(f"  {line}" for line in result)]
    click.echo("\n".join(lines))


@jobs.command("cancel")
@click.argument("job_id", metavar="ID", type=int)
@pass_context
def jobs_cancel(ctx: Context, job_id: int) -> None:
    """Cancel job ID: a queued one at once, a running one at its worker's next look (a run is cancelled)."""
    _get(ctx, job_id)
    try:
        state = ctx.services.cancel_job(job_id)
    except TaskhubError as exc:
        raise fail(exc) from None
    click.echo(f"job {job_id}: " + ("cancelled" if state == "cancelled" else "cancel requested; it stops shortly"))
