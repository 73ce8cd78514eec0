"""Run statistics over a window of days: per pipeline (or, for TaskRuns, per task) and per pipeline task, how many
runs a day, how many succeeded, and how long they took (percentiles), from the run records; with the geometry of
the charts that draw them (the web page renders it as SVG, no JavaScript needed)."""

from __future__ import annotations

import math
import re
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from runner.models import CANCELLED, FAILED, FINISHED, SUCCEEDED, Run
from runner.run_details import RunDetail

# The windows a person picks from, in days.
WINDOWS = (7, 30, 90)
DEFAULT_WINDOW = 30
PERCENTILES = (50, 90, 99)
# A generated name's random suffix (Kubernetes' generateName adds five characters): runs of one embedded pipeline
# named build-x7k2p and build-9qz4m count as "build".
_GENERATED = re.compile(r"-[a-z0-9]{5}$")
# The outcomes a day's bar is split into, bottom up.
OUTCOMES = (SUCCEEDED, FAILED, CANCELLED)


@dataclass(frozen=True)
class Day:
    day: date
    counts: dict[str, int]  # outcome (SUCCEEDED, FAILED, CANCELLED, or "Other": not ended) -> runs

    @property
    def total(self) -> int:
        return sum(self.counts.values())


@dataclass
class Stats:
    """The runs of one pipeline (or task) in the window."""

    name: str
    kind: str  # "Pipeline" or "Task"
    days: list[Day] = field(default_factory=list)
    durations: list[float] = field(default_factory=list)  # seconds, of the runs that ended

    @property
    def runs(self) -> int:
        return sum(day.total for day in self.days)

    def count(self, outcome: str) -> int:
        return sum(day.counts.get(outcome, 0) for day in self.days)

    @property
    def success_rate(self) -> float | None:
        """Succeeded over ended runs (cancelled ones included); None when none ended."""
        ended = sum(self.count(outcome) for outcome in OUTCOMES)
        return self.count(SUCCEEDED) / ended if ended else None

    @property
    def percentiles(self) -> dict[int, float | None]:
        """Duration percentiles (nearest rank) in seconds: 50th, 90th, 99th; None without ended runs."""
        ordered = sorted(self.durations)
        return {p: _nearest_rank(ordered, p) for p in PERCENTILES}


def _nearest_rank(ordered: Sequence[float], percentile: int) -> float | None:
    if not ordered:
        return None
    return ordered[max(math.ceil(percentile / 100 * len(ordered)) - 1, 0)]


def subject_of(kind: str, name: str, lock: Iterable[Any]) -> tuple[str, str]:
    """What a run runs, for grouping: ("Pipeline"|"Task", name) of its pipelineRef or taskRef as locked, else the
    run's own name without a generated suffix (an embedded spec)."""
    path = "spec.pipelineRef" if kind == "PipelineRun" else "spec.taskRef"
    for entry in lock:
        if isinstance(entry, dict) and entry.get("path") == path and entry.get("name"):
            return ("Pipeline" if kind == "PipelineRun" else "Task"), str(entry["name"])
    return ("Pipeline" if kind == "PipelineRun" else "Task"), _GENERATED.sub("", name) or name


def window_start(days: int, now: datetime) -> datetime:
    """The first moment of the window: midnight UTC, days - 1 days before today."""
    today = now.astimezone(UTC).date()
    return datetime.combine(today - timedelta(days=days - 1), datetime.min.time(), tzinfo=UTC)


class RunStatistics:
    """Statistics of the run records in the database of `engine`."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def by_subject(self, days: int, now: datetime | None = None) -> list[Stats]:
        """One Stats per pipeline and task run in the last `days` days (today included), most runs first."""
        now = now or datetime.now(UTC)
        start = window_start(days, now)
        query = select(Run.kind, Run.name, Run.lock, Run.status, Run.created_at, Run.started_at, Run.completed_at)
        groups: dict[tuple[str, str], list[Any]] = defaultdict(list)
        with Session(self.engine) as session:
            for row in session.execute(query.where(Run.created_at >= start)):
                groups[subject_of(row.kind, row.name, row.lock or [])].append(row)
        found = [_stats(name, kind, rows, start, days) for (kind, name), rows in groups.items()]
        return sorted(found, key=lambda s: (-s.runs, s.kind, s.name))

    def by_task(self, kind: str, name: str, days: int, now: datetime | None = None) -> list[Stats]:
        """One Stats per pipeline task of the runs of pipeline `name` in the window (for a Task: the task itself)."""
        now = now or datetime.now(UTC)
        start = window_start(days, now)
        run_kind = "PipelineRun" if kind == "Pipeline" else "TaskRun"
        tasks: dict[str, list[Any]] = defaultdict(list)
        with Session(self.engine) as session:
            runs = session.scalars(select(Run).where(Run.created_at >= start, Run.kind == run_kind))
            for run in runs:
                if subject_of(run.kind, run.name, run.lock or []) != (kind, name):
                    continue
                detail = RunDetail(run.id, run.kind, run.name, run.namespace, run.backend, run.status, run.reason,
                                   run.created_by, run.created_at, run.started_at, run.completed_at,
                                   object=run.object, children=run.children)  # fmt: skip
                for row in detail.tasks:
                    tasks[row.task].append(_TaskRun(row.status, row.started_at or run.created_at, row.started_at,
                                                    row.completed_at))  # fmt: skip
        found = [_stats(task, "Task", rows, start, days) for task, rows in tasks.items()]
        return sorted(found, key=lambda s: s.name)


@dataclass(frozen=True)
class _TaskRun:
    status: str
    created_at: datetime
    started_at: datetime | None
    completed_at: datetime | None


def _stats(name: str, kind: str, rows: Sequence[Any], start: datetime, days: int) -> Stats:
    per_day: dict[date, dict[str, int]] = {start.date() + timedelta(days=i): {} for i in range(days)}
    stats = Stats(name, kind)
    for row in rows:
        outcome = row.status if row.status in OUTCOMES else "Other"
        counts = per_day.get(row.created_at.astimezone(UTC).date())
        if counts is None:  # skipped tasks have no times of their own: their run's day counts
            continue
        counts[outcome] = counts.get(outcome, 0) + 1
        if row.status in FINISHED and row.started_at is not None and row.completed_at is not None:
            stats.durations.append(max((row.completed_at - row.started_at).total_seconds(), 0.0))
    stats.days = [Day(day, counts) for day, counts in sorted(per_day.items())]
    return stats


# -- chart geometry ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    height: float
    outcome: str
    count: int
    day: date


@dataclass(frozen=True)
class DayChart:
    """Bars of runs per day, stacked by outcome, in a width x height box with room for the axis labels."""

    width: float
    height: float
    bar_width: float
    bars: list[Bar]
    top: int  # the largest day's runs: the axis' top label
    baseline: float
    first: date
    last: date


def day_chart(days: Sequence[Day], width: float = 600, height: float = 160) -> DayChart:
    """The geometry of a runs-per-day chart for `days` (oldest first)."""
    left, bottom, top_margin = 36.0, 20.0, 8.0
    plot_height = height - bottom - top_margin
    top = max((day.total for day in days), default=0) or 1
    slot = (width - left) / max(len(days), 1)
    bar_width = max(slot * 0.8, 1.0)
    bars: list[Bar] = []
    for i, day in enumerate(days):
        y = height - bottom
        for outcome in (*OUTCOMES, "Other"):
            count = day.counts.get(outcome, 0)
            if not count:
                continue
            h = plot_height * count / top
            y -= h
            bars.append(Bar(left + i * slot + (slot - bar_width) / 2, y, h, outcome, count, day.day))
    first = days[0].day if days else date.today()
    last = days[-1].day if days else first
    return DayChart(width, height, bar_width, bars, top, height - bottom, first, last)
