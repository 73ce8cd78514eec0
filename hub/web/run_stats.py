"""The run statistics pages: per pipeline (and task) over a chosen window, runs a day, success rate and duration
percentiles, with charts drawn on the server as SVG (runner/run_stats.py)."""

from __future__ import annotations

from flask import Blueprint, current_app, render_template, request

from catalog.errors import NotFound
from hub.wsgi.auth import check_run_reader
from runner.run_stats import DEFAULT_WINDOW, OUTCOMES, PERCENTILES, WINDOWS, RunStatistics, day_chart

bp = Blueprint("run_stats_web", __name__)
bp.before_request(check_run_reader)  # who may read run records may read what they add up to
KINDS = ("Pipeline", "Task")


def _window() -> int:
    """The ?window= in days, one of WINDOWS; the default for anything else."""
    try:
        days = int(request.args.get("window", DEFAULT_WINDOW))
    except ValueError:
        return DEFAULT_WINDOW
    return days if days in WINDOWS else DEFAULT_WINDOW


def _statistics() -> RunStatistics:
    return RunStatistics(current_app.extensions["taskhub.engine"])


@bp.get("/runs/stats")
def overview() -> str:
    days = _window()
    subjects = _statistics().by_subject(days)
    return render_template(
        "run_stats.html", days=days, windows=WINDOWS, subjects=subjects, subject=None, tasks=[],
        charts={(s.kind, s.name): day_chart(s.days, width=240, height=48) for s in subjects},
        percentiles=PERCENTILES, outcomes=OUTCOMES, chart=None,
    )  # fmt: skip


@bp.get("/runs/stats/<kind>/<path:name>")
def subject(kind: str, name: str) -> str:
    days = _window()
    statistics = _statistics()
    found = next((s for s in statistics.by_subject(days) if (s.kind, s.name) == (kind, name)), None)
    if kind not in KINDS or found is None:
        raise NotFound(f"No runs of {kind.lower()} {name!r} in the last {days} days.")
    tasks = statistics.by_task(kind, name, days)
    longest = max((t.percentiles[PERCENTILES[-1]] or 0 for t in tasks), default=0)
    return render_template(
        "run_stats.html", days=days, windows=WINDOWS, subjects=[found], subject=found, tasks=tasks,
        charts={(t.kind, t.name): day_chart(t.days, width=240, height=48) for t in tasks},
        percentiles=PERCENTILES, outcomes=OUTCOMES, chart=day_chart(found.days), longest=longest or 1,
    )  # fmt: skip
