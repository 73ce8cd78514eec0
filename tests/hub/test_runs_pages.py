"""The runs pages over records of real local runs: the list, a run's graph, statuses, timings and logs, in the test
client (SQLite and PostgreSQL) and in headless Chromium."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
import yaml
from flask import Flask
from flask.testing import FlaskClient
from playwright.sync_api import Page, expect

from hub.config import Settings
from runner.local import LocalExecutor
from runner.pinning import LockEntry
from runner.records import RunRecords

# A diamond (fetch → lint, build → deploy; build uses fetch's result), a task skipped by `when`, a failing task
# whose failure is ignored, and a finally task. Step output carries markup that must reach the page as text.
PIPELINERUN = """
apiVersion: tekton.dev/v1
kind: PipelineRun
metadata: {name: diamond}
spec:
  params:
  - {name: greeting, value: "<b>hello</b> & bye"}
  pipelineSpec:
    params:
    - {name: greeting}
    tasks:
    - name: fetch
      taskSpec:
        results: [{name: commit}]
        steps:
        - name: clone
          image: alpine
          script: |
            echo "cloning <repo> & friends"
            printf abc123 > $(results.commit.path)
    - name: lint
      runAfter: [fetch]
      taskSpec:
        steps:
        - {name: lint, image: alpine, script: echo lint ok}
    - name: build
      params: [{name: commit, value: $(tasks.fetch.results.commit)}]
      taskSpec:
        params: [{name: commit}]
        steps:
        - {name: compile, image: alpine, script: 'echo "building $(params.commit)"'}
    - name: deploy
      runAfter: [lint, build]
      taskSpec:
        steps:
        - {name: ship, image: alpine, script: 'echo "$(params.greeting)"'}
    - name: publish
      when:
      - {input: "$(tasks.fetch.results.commit)", operator: in, values: ["nope"]}
      taskSpec:
        steps:
        - {name: push, image: alpine, script: echo never}
    - name: flaky
      onError: continue
      taskSpec:
        steps:
        - {name: explode, image: alpine, script: 'echo "boom <script>window.__pwned=1</script>"; exit 3'}
    finally:
    - name: report
      taskSpec:
        steps:
        - {name: summary, image: alpine, script: echo report done}
"""
PIPELINE_STATUSES = {
    "fetch": "Succeeded",
    "lint": "Succeeded",
    "build": "Succeeded",
    "deploy": "Succeeded",
    "publish": "Skipped",
    "flaky": "Failed",
    "report": "Succeeded",
}
# fetch→lint, fetch→build (result), lint→deploy, build→deploy, fetch→publish (result in when), and
# deploy, publish and flaky (the last DAG tasks) → report.
PIPELINE_EDGES = 8

TASKRUN = """
apiVersion: tekton.dev/v1
kind: TaskRun
metadata: {name: unit-tests}
spec:
  taskSpec:
    steps:
    - {name: prepare, image: alpine, script: echo preparing}
    - {name: test, image: alpine, script: 'echo "FAILED test_parse: 1 < 2"; exit 1'}
    - {name: cleanup, image: alpine, script: echo never}
"""

LOCK = [
    LockEntry(
        path="spec.pipelineSpec.tasks[0].taskRef",
        resolver="hub",
        params=[{"name": "name", "value": "git-clone"}, {"name": "version", "value": "0.10"}],
        kind="Task",
        name="git-clone",
        version="0.10",
        digest="4f1d" * 16,
        uri="https://hub.example.com/tekton/task/git-clone/0.10",
    ).to_json()
]


@dataclass(frozen=True)
class RecordedRuns:
    failed_to_start: int
    pipeline: int
    taskrun: int
    pending: int


def record_local_run(records: RunRecords, text: str, work: Path, lock: list[Any]) -> int:
    """Runs a run on the local executor the way the launcher does: recorded, logged into a LogWriter, finished."""
    obj = yaml.safe_load(text)
    run_id = records.create(obj, backend="local", created_by="alice")
    records.started(run_id, obj, lock)
    writer = records.log_writer(run_id)
    result = LocalExecutor(work, log_sink=writer.line).run(obj)
    writer.flush()
    records.finished(run_id, result.object, result.children)
    return run_id


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """A hub whose operator made run records public (access to them is tested in test_runs_access.py)."""
    return dataclasses.replace(settings, public_runs=True)


@pytest.fixture
def records(app: Flask) -> RunRecords:
    runs: RunRecords = app.extensions["taskhub.runs"]
    return runs


@pytest.fixture
def recorded(records: RunRecords, tmp_path: Path) -> RecordedRuns:
    unresolvable = {
        "apiVersion": "tekton.dev/v1",
        "kind": "PipelineRun",
        "metadata": {"generateName": "release-"},
        "spec": {"pipelineRef": {"resolver": "hub", "params": [{"name": "name", "value": "release"}]}},
    }
    failed_to_start = records.create(unresolvable, backend="kubernetes", created_by="bob")
    records.failed(failed_to_start, "ResolutionFailed", "no Pipeline <release> in the hub")
    pipeline = record_local_run(records, PIPELINERUN, tmp_path / "work", LOCK)
    taskrun = record_local_run(records, TASKRUN, tmp_path / "work", [])
    pending = records.create(unresolvable, backend="local")
    return RecordedRuns(failed_to_start, pipeline, taskrun, pending)


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.found: list[tuple[str, dict[str, str]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.found.append((tag, {k: v or "" for k, v in attrs}))


def tags(html: str, name: str, **attrs: str) -> list[dict[str, str]]:
    """The attributes of every `name` element of html whose attributes include attrs (class: one of its classes)."""
    parser = _Tags()
    parser.feed(html)
    out = []
    for tag, found in parser.found:
        wanted_class = attrs.get("class_")
        others = {k: v for k, v in attrs.items() if k != "class_"}
        matches = tag == name and all(found.get(k.replace("_", "-")) == v for k, v in others.items())
        if matches and (wanted_class is None or wanted_class in found.get("class", "").split()):
            out.append(found)
    return out


def section(html: str, task: str) -> str:
    match = re.search(rf'<section class="panel task" id="task-{task}".*?</section>', html, re.S)
    assert match, f"no section for {task}"
    return match.group(0)


# -- the test client, on SQLite and PostgreSQL ------------------------------------------------------------


def test_runs_list_shows_newest_first(client: FlaskClient, recorded: RecordedRuns) -> None:
    response = client.get("/runs")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    rows = [(int(r["data-run-id"]), r["data-status"]) for r in tags(html, "tr") if "data-run-id" in r]
    assert rows == [
        (recorded.pending, "Pending"),
        (recorded.taskrun, "Failed"),
        (recorded.pipeline, "Succeeded"),
        (recorded.failed_to_start, "Failed"),
    ]
    assert f'<a href="/runs/{recorded.pipeline}">diamond</a>' in html
    assert '<span class="badge status-Succeeded">Succeeded</span>' in html
    assert "<td>Completed</td>" in html, "the reason: a task was skipped"
    assert "<td>TaskRunValidationFailed</td>" not in html and "<td>ResolutionFailed</td>" in html
    assert "<td>kubernetes</td>" in html and "by alice" in html
    assert '<a href="/runs">Runs</a>' in html, "the nav links the runs"
    assert "4 runs" in html


def test_runs_list_filters_by_status_and_pages(client: FlaskClient, recorded: RecordedRuns) -> None:
    failed = client.get("/runs?status=Failed").get_data(as_text=True)
    ids = [int(r["data-run-id"]) for r in tags(failed, "tr") if "data-run-id" in r]
    assert ids == [recorded.taskrun, recorded.failed_to_start]
    assert "2 Failed runs" in failed
    assert tags(failed, "option", value="Failed", selected="")

    assert "No Cancelled runs." in client.get("/runs?status=Cancelled").get_data(as_text=True)
    assert len(tags(client.get("/runs?status=nonsense").get_data(as_text=True), "tr", data_status="Failed")) == 2

    first = client.get("/runs?limit=3").get_data(as_text=True)
    assert [int(r["data-run-id"]) for r in tags(first, "tr") if "data-run-id" in r] == [
        recorded.pending,
        recorded.taskrun,
        recorded.pipeline,
    ]
    assert "showing 1\N{EN DASH}3" in first
    (older,) = tags(first, "a", rel="next")
    assert older["href"] == "/runs?offset=3&limit=3"
    second = client.get(older["href"]).get_data(as_text=True)
    assert [int(r["data-run-id"]) for r in tags(second, "tr") if "data-run-id" in r] == [recorded.failed_to_start]
    assert tags(second, "a", rel="prev")[0]["href"] == "/runs?limit=3"
    assert not tags(second, "a", rel="next")
    assert client.get("/runs?limit=x&offset=-4").status_code == 200


def test_pipelinerun_page_draws_its_graph_with_statuses(client: FlaskClient, recorded: RecordedRuns) -> None:
    response = client.get(f"/runs/{recorded.pipeline}")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert 'http-equiv="refresh"' not in html, "a finished run does not reload"
    assert '<span class="badge status-Succeeded" id="run-status">Succeeded</span>' in html
    assert (
        "PipelineRun diamond" in html and "Tasks Completed: 6 (Failed: 1 (Ignored: 1), Cancelled 0), Skipped: 1" in html
    )

    nodes = {n["data-name"]: n["data-status"] for n in tags(html, "a", class_="node")}
    assert nodes == PIPELINE_STATUSES
    assert {n["href"] for n in tags(html, "a", class_="node")} == {f"#task-{t}" for t in PIPELINE_STATUSES}
    edges = {(e["data-source"], e["data-target"]) for e in tags(html, "path", class_="edge")}
    assert len(tags(html, "path", class_="edge")) == PIPELINE_EDGES == len(edges)
    assert {("fetch", "build"), ("fetch", "publish"), ("build", "deploy"), ("flaky", "report")} <= edges
    assert len(tags(html, "path", class_="edge-finally")) == 3

    for task, status in PIPELINE_STATUSES.items():
        assert tags(html, "section", id=f"task-{task}")[0]["data-status"] == status
    assert "When Expressions evaluated to false" in section(html, "publish")
    assert "FailureIgnored" in section(html, "flaky")
    assert "diamond-build" in section(html, "build"), "the TaskRun's name"
    assert "finally" in section(html, "report")


def test_pipelinerun_page_shows_params_lock_and_escaped_logs(client: FlaskClient, recorded: RecordedRuns) -> None:
    html = client.get(f"/runs/{recorded.pipeline}").get_data(as_text=True)
    assert "<td>greeting</td><td><code>&lt;b&gt;hello&lt;/b&gt; &amp; bye</code></td>" in html
    assert "sha256:" + "4f1d" * 16 in html and "<td>0.10</td>" in html
    assert '<a href="https://hub.example.com/tekton/task/git-clone/0.10">git-clone</a>' in html

    assert "<pre>boom &lt;script&gt;window.__pwned=1&lt;/script&gt;\n</pre>" in section(html, "flaky")
    assert "<script>window.__pwned" not in html
    assert "cloning &lt;repo&gt; &amp; friends" in section(html, "fetch")
    assert "building abc123" in section(html, "build"), "the result reached the task that used it"
    assert "&lt;b&gt;hello&lt;/b&gt; &amp; bye\n</pre>" in section(html, "deploy")
    assert "report done" in section(html, "report")
    assert "<pre>" not in section(html, "publish"), "a skipped task has no logs"
    assert '<details class="log" open>' in section(html, "flaky"), "a failed task's logs are open"
    assert '<details class="log">' in section(html, "fetch"), "a succeeded task's logs are folded"


def test_taskrun_page_has_one_node_per_step(client: FlaskClient, recorded: RecordedRuns) -> None:
    html = client.get(f"/runs/{recorded.taskrun}").get_data(as_text=True)
    assert '<span class="badge status-Failed" id="run-status">Failed</span>' in html
    nodes = [(n["data-name"], n["data-status"]) for n in tags(html, "a", class_="node")]
    assert nodes == [("prepare", "Succeeded"), ("test", "Failed"), ("cleanup", "Skipped")]
    assert len(tags(html, "path", class_="edge")) == 2
    assert "<h2>Steps</h2>" in html
    assert "exit code 1" in section(html, "test")
    assert "FAILED test_parse: 1 &lt; 2" in section(html, "test")
    assert "preparing" in section(html, "prepare") and "FAILED" not in section(html, "prepare")
    assert "The run referenced nothing to resolve." in html


def test_pending_run_reloads_and_failed_one_says_why(client: FlaskClient, recorded: RecordedRuns) -> None:
    pending = client.get(f"/runs/{recorded.pending}").get_data(as_text=True)
    assert '<meta http-equiv="refresh" content="2">' in pending
    assert "The tasks appear once the run is resolved." in pending and "Not resolved yet." in pending

    failed = client.get(f"/runs/{recorded.failed_to_start}").get_data(as_text=True)
    assert 'http-equiv="refresh"' not in failed
    assert "no Pipeline &lt;release&gt; in the hub" in failed and "ResolutionFailed" in failed
    assert 'by <span id="run-created-by">bob</span>' in failed and "<dd>kubernetes</dd>" in failed
    assert "The run ended before its tasks were known." in failed


@pytest.mark.parametrize("path", ["/runs/999999", "/runs/99999999999999999999", "/runs/first"])
def test_unknown_run_is_the_sites_404_page(client: FlaskClient, recorded: RecordedRuns, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 404
    html = response.get_data(as_text=True)
    assert "<h1>404</h1>" in html and "Back to the catalog" in html
    if path == "/runs/999999":
        assert "There is no run 999999." in html


# -- headless Chromium ------------------------------------------------------------------------------------


@pytest.mark.browser
def test_browser_opens_a_run_from_the_list(page: Page, hub_url: str, recorded: RecordedRuns) -> None:
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    page.goto("/")
    page.get_by_role("link", name="Runs", exact=True).click()
    page.wait_for_url(f"{hub_url}/runs")
    expect(page.locator("#runs tr[data-run-id]")).to_have_count(4)
    expect(page.locator(f'#runs tr[data-run-id="{recorded.pipeline}"] .badge')).to_have_text("Succeeded")

    page.get_by_role("link", name="diamond", exact=True).click()
    page.wait_for_url(f"{hub_url}/runs/{recorded.pipeline}")
    expect(page.locator("#run-status")).to_have_text("Succeeded")
    nodes = page.locator("#run-graph a.node")
    expect(nodes).to_have_count(len(PIPELINE_STATUSES))
    shown = nodes.evaluate_all("ns => ns.map(n => [n.dataset.name, n.dataset.status])")
    assert dict(shown) == PIPELINE_STATUSES
    expect(page.locator("#run-graph path.edge")).to_have_count(PIPELINE_EDGES)
    failed_fill = page.locator('#run-graph a.node[data-name="flaky"] rect').evaluate("r => getComputedStyle(r).fill")
    succeeded_fill = page.locator('#run-graph a.node[data-name="fetch"] rect').evaluate("r => getComputedStyle(r).fill")
    assert failed_fill != succeeded_fill, "nodes are coloured by status"
    box = page.locator("#run-graph").bounding_box()
    assert box is not None and box["width"] > 900, "four columns of boxes are drawn"

    flaky_log = page.locator("#task-flaky details.log pre")
    expect(flaky_log).to_be_visible()
    expect(flaky_log).to_have_text("boom <script>window.__pwned=1</script>\n")
    assert page.evaluate("typeof window.__pwned") == "undefined" and dialogs == []

    fetch_log = page.locator("#task-fetch details.log pre")
    expect(fetch_log).to_be_hidden()  # a succeeded task's logs start folded
    page.locator("#task-fetch details.log summary").click()
    expect(fetch_log).to_be_visible()
    expect(fetch_log).to_have_text("cloning <repo> & friends\n")

    page.locator('#run-graph a.node[data-name="publish"]').click()
    page.wait_for_url(f"{hub_url}/runs/{recorded.pipeline}#task-publish")
    expect(page.locator("#task-publish")).to_be_in_viewport()
    expect(page.locator("#task-publish .task-reason")).to_have_text("When Expressions evaluated to false")


@pytest.mark.browser
def test_browser_run_page_fits_a_phone_screen(open_page: Callable[..., Page], recorded: RecordedRuns) -> None:
    page = open_page(viewport={"width": 420, "height": 900})
    for path in ("/runs", f"/runs/{recorded.pipeline}"):
        page.goto(path)
        assert page.evaluate("document.documentElement.scrollWidth") <= 420, f"nothing on {path} sticks out sideways"
    graph = page.locator("#run-graph")
    assert graph.evaluate("g => g.parentElement.scrollWidth > g.parentElement.clientWidth"), "the graph scrolls"
    expect(page.locator("#task-flaky details.log pre")).to_be_visible()


@pytest.mark.browser
def test_browser_running_run_reloads_until_it_has_ended(
    page_without_js: Page, records: RunRecords, tmp_path: Path
) -> None:
    page = page_without_js  # the reload is a meta refresh: no JavaScript needed
    obj = yaml.safe_load(PIPELINERUN)
    run_id = records.create(obj, backend="local", created_by="carol")
    records.started(run_id, obj, LOCK)
    writer = records.log_writer(run_id)
    writer.line("diamond-fetch", "step-clone", "cloning while you watch")
    writer.flush()

    page.goto(f"/runs/{run_id}")
    expect(page.locator("#run-status")).to_have_text("Running")
    expect(page.locator("#refresh-note")).to_be_visible()
    # expect() retries across the reloads, where reading the page at one moment could meet one half done
    expect(page.locator('#run-graph a.node[data-status="Pending"]')).to_have_count(len(PIPELINE_STATUSES))
    expect(page.locator("#other-logs")).to_contain_text("cloning while you watch")

    result = LocalExecutor(tmp_path / "work", log_sink=writer.line).run(obj)
    writer.flush()
    records.finished(run_id, result.object, result.children)

    expect(page.locator("#run-status")).to_have_text("Succeeded", timeout=10_000)
    expect(page.locator("#refresh-note")).to_have_count(0)
    shown = page.locator("#run-graph a.node").evaluate_all("ns => ns.map(n => [n.dataset.name, n.dataset.status])")
    assert dict(shown) == PIPELINE_STATUSES
    expect(page.locator("#task-fetch details.log summary")).to_have_text("step-clone")
    folded = page.locator("#task-fetch details.log pre")
    expect(folded).to_be_hidden()
    assert "cloning while you watch" in (folded.text_content() or ""), "what was logged while it ran is kept"
