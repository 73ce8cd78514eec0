"""The run statistics pages over run records of the last days: runs per day, success rates and duration
percentiles per pipeline and per pipeline task, drawn as SVG on the server, read in headless Chromium with
JavaScript off."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy.orm import Session

from hub.config import Settings
from runner.models import Run
from runner.run_stats import RunStatistics

NOW = datetime.now(UTC).replace(hour=12, minute=0, second=0, microsecond=0)
LOCK = [{"path": "spec.pipelineRef", "resolver": "hub", "kind": "Pipeline", "name": "build"}]


def child(task: str, status: str, seconds: float, start: datetime) -> dict:
    """A child TaskRun as a run record keeps it."""
    condition = {"True": "Succeeded", "False": "Failed"}
    return {
        "kind": "TaskRun",
        "metadata": {"name": f"build-{task}", "labels": {"tekton.dev/pipelineTask": task}},
        "status": {
            "conditions": [{"type": "Succeeded", "status": status, "reason": condition[status]}],
            "startTime": start.isoformat(), "completionTime": (start + timedelta(seconds=seconds)).isoformat(),
        },
    }  # fmt: skip


def record(session: Session, *, kind="PipelineRun", name="build-abcde", lock=LOCK, status="Succeeded",
           days_ago=0, seconds=60.0, children=()) -> None:  # fmt: skip
    created = NOW - timedelta(days=days_ago)
    ended = status in ("Succeeded", "Failed", "Cancelled")
    session.add(Run(
        kind=kind, name=name, namespace="default", backend="local", status=status, lock=list(lock),
        object={}, children=list(children), created_at=created, started_at=created,
        completed_at=created + timedelta(seconds=seconds) if ended else None,
    ))  # fmt: skip


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return dataclasses.replace(settings, public_runs=True)


@pytest.fixture
def recorded(engine) -> None:
    """build (a pipelineRef): 5 runs over three days, 3 succeeded (60, 120, 600 s), 1 failed (30 s), 1 running;
    each with a compile task and a test task; an embedded pipeline lint-xxxxx run twice; a TaskRun of task
    git-clone; and an old build run outside a 7-day window."""
    with Session(engine) as session, session.begin():
        for days_ago, status, seconds in ((0, "Succeeded", 60), (0, "Failed", 30), (1, "Succeeded", 120),
                                          (2, "Succeeded", 600), (0, "Running", 0)):  # fmt: skip
            start = NOW - timedelta(days=days_ago)
            tests = "True" if status != "Failed" else "False"
            children = [child("compile", "True", seconds / 2, start), child("test", tests, 10, start)]
            record(session, status=status, days_ago=days_ago, seconds=seconds, children=children)
        record(session, name="lint-x7k2p", lock=[], days_ago=1)
        record(session, name="lint-9qz4m", lock=[], status="Cancelled", days_ago=3)
        record(session, kind="TaskRun", name="clone", days_ago=4,
               lock=[{"path": "spec.taskRef", "kind": "Task", "name": "git-clone"}])  # fmt: skip
        record(session, days_ago=20, status="Failed")


def test_statistics_group_runs_by_what_they_run(engine, recorded):
    found = {(s.kind, s.name): s for s in RunStatistics(engine).by_subject(7, now=NOW)}
    assert set(found) == {("Pipeline", "build"), ("Pipeline", "lint"), ("Task", "git-clone")}
    build = found["Pipeline", "build"]
    assert build.runs == 5 and build.count("Succeeded") == 3 and build.count("Failed") == 1
    assert build.success_rate == 0.75
    assert build.percentiles == {50: 60.0, 90: 600.0, 99: 600.0}
    assert [day.total for day in build.days] == [0, 0, 0, 0, 1, 1, 3]
    assert RunStatistics(engine).by_subject(30, now=NOW)[0].runs == 6  # the old failure is within 30 days
    tasks = {t.name: t for t in RunStatistics(engine).by_task("Pipeline", "build", 7, now=NOW)}
    assert tasks["compile"].success_rate == 1.0 and tasks["compile"].percentiles[50] == 30.0
    assert tasks["test"].success_rate == 0.8


@pytest.mark.browser
def test_the_statistics_pages_draw_runs_per_day_and_durations_without_javascript(
    recorded, page_without_js: Page, tmp_path
):
    page = page_without_js
    page.goto("/runs")
    page.locator("#run-stats-link").click()
    expect(page.locator("h1")).to_have_text("Run statistics")
    page.get_by_role("link", name="last 7 days").click()
    expect(page.locator("#windows [aria-current=page]")).to_have_text("last 7 days")
    rows = page.locator("#subjects tr[data-name]")
    expect(rows).to_have_count(3)
    build = page.locator('#subjects tr[data-name="build"]')
    expect(build.locator(".runs")).to_have_text("5")
    expect(build.locator(".success-rate")).to_have_text("75%")
    expect(build.locator(".p50")).to_have_text("1m 00s")
    expect(build.locator(".p90")).to_have_text("10m 00s")
    bars = build.locator("svg rect.bar")
    assert sum(int(bars.nth(i).get_attribute("data-count") or 0) for i in range(bars.count())) == 5

    build.get_by_role("link", name="build").click()
    expect(page.locator("h1")).to_have_text("Pipeline build")
    chart = page.locator("#runs-per-day svg")
    expect(chart).to_be_visible()
    today = chart.locator(f'rect[data-day="{NOW.date().isoformat()}"]')
    expect(today).to_have_count(3)  # succeeded, failed and still running, stacked
    heights = sum(float(today.nth(i).get_attribute("height") or 0) for i in range(3))
    yesterday = chart.locator(f'rect[data-day="{(NOW - timedelta(days=1)).date().isoformat()}"]')
    assert heights == pytest.approx(3 * float(yesterday.get_attribute("height") or 0))  # 3 runs against 1
    tasks = page.locator("#tasks tr[data-name]")
    expect(tasks).to_have_count(2)
    expect(page.locator('#tasks tr[data-name="test"] .success-rate')).to_have_text("80%")
    expect(page.locator('#tasks tr[data-name="compile"] svg.durations rect')).to_have_count(3)
    page.screenshot(path=str(tmp_path / "run-stats.png"), full_page=True)


def test_statistics_need_a_run_reader_unless_runs_are_public(settings):
    from hub.app import create_app

    closed = create_app(dataclasses.replace(settings, public_runs=False)).test_client()
    assert closed.get("/runs/stats", headers={"Accept": "text/html"}).status_code == 401
    opened = create_app(settings).test_client()
    assert opened.get("/runs/stats?window=abc").status_code == 200  # an unknown window: the default one
    assert opened.get("/runs/stats/Pipeline/nothing").status_code == 404
