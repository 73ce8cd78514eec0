"""`taskhub runs list|show|logs`: the recorded runs of both backends, read back from the database."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import click
import yaml

from hub.cli import main
from hub.cli.context import Context, pass_context
from runner.models import STATUSES
from runner.records import RunRecords
from runner.run_details import RunDetail, format_duration, logs_as_text


@main.group()
def runs() -> None:
    """Recorded runs (`taskhub run`, POST /v1/runs): status, timings, lock and step logs."""


def _records(ctx: Context) -> RunRecords:
    return RunRecords(ctx.migrated_engine())


def _get(ctx: Context, run_id: int) -> RunDetail:
    detail = _records(ctx).get(run_id)
    if detail is None:
        raise click.ClickException(f"run {run_id} not found")
    return detail


@runs.command("list")
@click.option("--status", type=click.Choice(STATUSES), help="Only runs with this status.")
@click.option("--limit", type=click.IntRange(1, 1000), default=20, show_default=True, help="How many, newest first.")
@click.option("-o", "--output", type=click.Choice(["table", "json"]), default="table", show_default=True)
@pass_context
def runs_list(ctx: Context, status: str | None, limit: int, output: str) -> None:
    """The newest runs first: id, name, kind, backend, status, start and duration."""
    summaries, total = _records(ctx).recent(limit=limit, status=status)
    if output == "json":
        click.echo(json.dumps({"data": [s.to_json() for s in summaries], "total": total}, indent=2))
        return
    if not summaries:
        click.echo("no runs recorded" + (f" with status {status}" if status else ""), err=True)
        return
    rows = [["ID", "NAME", "KIND", "BACKEND", "STATUS", "STARTED", "DURATION"]]
    rows += [
        [str(s.id), s.name, s.kind, s.backend, _status(s.status, s.reason), _time(s.started_at or s.created_at),
         _duration(s.duration)]
        for s in summaries
    ]  # fmt: skip
    click.echo(_table(rows))
    if total > len(summaries):
        click.echo(f"{len(summaries)} of {total} runs; --limit shows more", err=True)


@runs.command("show")
@click.argument("run_id", metavar="ID", type=int)
@click.option("-o", "--output", type=click.Choice(["table", "json", "yaml"]), default="table", show_default=True)
@pass_context
def runs_show(ctx: Context, run_id: int, output: str) -> None:
    """One run: its status, times and params, one row per task, and the references it was pinned to."""
    detail = _get(ctx, run_id)
    if output == "json":
        click.echo(json.dumps(detail.to_json(), indent=2))
        return
    if output == "yaml":
        click.echo(yaml.safe_dump(detail.to_json(), sort_keys=False, allow_unicode=True), nl=False)
        return
    click.echo(_describe(detail), nl=False)


@runs.command("logs")
@click.argument("run_id", metavar="ID", type=int)
@click.option("--task", metavar="TASK", help="Only this pipeline task (or TaskRun).")
@pass_context
def runs_logs(ctx: Context, run_id: int, task: str | None) -> None:
    """The recorded output of each step, each line as `[task : step] line` (as `tkn pr logs` prints it)."""
    detail = _get(ctx, run_id)
    task_run = None
    if task is not None:
        task_run = detail.task_run_named(task)
        if task_run is None:
            raise click.ClickException(f"run {run_id} has no task or TaskRun named {task!r}")
    logs = _records(ctx).logs(run_id, task_run)
    if not logs:
        click.echo(f"no logs recorded for run {run_id}" + (f" and task {task}" if task else ""), err=True)
        return
    click.echo(logs_as_text(detail, logs), nl=False)


def _describe(detail: RunDetail) -> str:
    lines = [
        f"Run:        {detail.id}",
        f"Name:       {detail.name} ({detail.kind}, namespace {detail.namespace})",
        *([f"UID:        {detail.uid}"] if detail.uid else []),
        f"Backend:    {detail.backend}",
        f"Status:     {_status(detail.status, detail.reason)}"
        + (" (cancel requested)" if detail.cancel_requested and not detail.finished else ""),
    ]
    if detail.message:
        lines.append(f"Message:    {detail.message}")
    lines.append(f"Created:    {_time(detail.created_at)}" + (f" by {detail.created_by}" if detail.created_by else ""))
    lines.append(f"Started:    {_time(detail.started_at)}")
    lines.append(f"Duration:   {_duration(detail.duration)}")
    params = [p for p in detail.params if isinstance(p, dict)]
    if params:
        lines += ["", "Params"] + [f"  {p.get('name')} = {_value(p.get('value'))}" for p in params]
    rows = detail.tasks
    if rows:
        table = [["TASK", "TASKRUN", "STATUS", "STARTED", "DURATION"]]
        table += [
            [r.task, r.task_run or "-", _status(r.status, r.reason), _time(r.started_at), _duration(r.duration)]
            for r in rows
        ]
        lines += ["", "Tasks", _table(table)]
    if detail.lock:
        table = [["PATH", "KIND", "NAME", "VERSION", "DIGEST", "SOURCE"]]
        table += [
            [str(e.get("path")), str(e.get("kind")), str(e.get("name") or "-"), str(e.get("version") or "-"),
             str(e.get("digest") or "-"),
             f"{e.get('resolver')} resolver of the cluster" if e.get("passedThrough") else str(e.get("uri"))]
            for e in detail.lock if isinstance(e, dict)
        ]  # fmt: skip
        lines += ["", "References", _table(table)]
    return "\n".join(lines) + "\n"


def _status(status: str, reason: str) -> str:
    return f"{status} ({reason})" if reason and reason != status else status


def _time(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC") if moment is not None else "-"


def _duration(seconds: float | None) -> str:
    return "-" if seconds is None else format_duration(seconds)


def _value(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def _table(rows: list[list[str]]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in rows)
