"""The web UI in a real browser: search, filters, sort, resource pages, catalogs' syncs and problems, copy, no-JS
use."""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from catalog.errors import CatalogSourceError
from catalog.registry import Registry
from catalog.sync import SyncSummary, get_catalog
from hub.config import Settings
from jobs import CATALOG_SYNC, JobQueue
from jobs.scheduler import parse_refresh, set_refresh
from jobs.syncs import CatalogSyncer
from tests.conftest import register, sync

pytestmark = pytest.mark.browser

GIT_CLONE_PLATFORMS = ["linux/amd64", "linux/arm64", "linux/ppc64le", "linux/s390x"]
# Only 0.10's README carries the "moved to its own repository" warning; 0.9's does not.
MOVED_NOTICE = "no longer actively maintained here"


def card_names(page: Page) -> list[str]:
    return page.locator("article.card").evaluate_all("cards => cards.map(c => c.dataset.name)")


def card(page: Page, name: str, kind: str = "Task"):  # type: ignore[no-untyped-def]
    return page.locator(f'article.card[data-name="{name}"][data-kind="{kind}"]')


def facet(page: Page, name: str, value: str):  # type: ignore[no-untyped-def]
    return page.locator(f'fieldset[data-facet="{name}"]').get_by_label(value, exact=True)


def search(page: Page, text: str) -> None:
    page.get_by_role("searchbox", name="Search").fill(text)
    page.get_by_role("button", name="Search", exact=True).click()
    page.wait_for_url(re.compile(r"[?&]q="))


# -- search ---------------------------------------------------------------------------------------------


def test_search_shows_matching_cards_and_their_count(page: Page, indexed: SyncSummary) -> None:
    page.goto("/")
    expect(page.locator("#result-count")).to_have_text(f"{indexed.resources} results")

    page.get_by_role("searchbox", name="Search").fill("git")
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"\?q=git"))

    git_clone = card(page, "git-clone")
    expect(git_clone.get_by_role("link")).to_have_text("git clone")
    expect(git_clone).to_contain_text("v0.10")
    names = card_names(page)
    assert names[:2] == ["git-clone", "git-clone"], "exact-prefix matches come first"
    assert "kaniko" not in names
    expect(page.locator("#result-count")).to_have_text(f"{len(names)} results")
    expect(page.get_by_role("searchbox", name="Search")).to_have_value("git")


def test_search_for_nonsense_says_nothing_matches(page: Page, indexed: SyncSummary) -> None:
    page.goto("/")
    search(page, "zzqx-no-such-thing")
    expect(page.locator("#result-count")).to_have_text("0 results")
    expect(page.get_by_text("No resources match. Try fewer filters or another word.")).to_be_visible()
    expect(page.locator("article.card")).to_have_count(0)


def test_home_page_fits_a_phone_screen(open_page: Callable[..., Page], indexed: SyncSummary) -> None:
    page = open_page(viewport={"width": 420, "height": 900})
    page.goto("/")
    assert page.evaluate("document.documentElement.scrollWidth") <= 420, "nothing sticks out sideways"
    for element in (page.get_by_role("button", name="Search", exact=True), page.locator("article.card").first):
        box = element.bounding_box()
        assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 420


# -- filters and sort -----------------------------------------------------------------------------------


def test_ticking_a_kind_shows_only_that_kind(page: Page, indexed: SyncSummary) -> None:
    page.goto("/")
    expect(page.get_by_role("button", name="Apply filters")).to_be_hidden()  # JS applies filters itself

    facet(page, "kind", "Pipeline").click()
    page.wait_for_url(re.compile(r"kind=Pipeline"))

    assert card_names(page) == ["build-push-deploy", "buildpacks"]
    kinds = page.locator("article.card").evaluate_all("cards => cards.map(c => c.dataset.kind)")
    assert kinds == ["Pipeline", "Pipeline"]
    expect(page.locator("#result-count")).to_have_text("2 results")
    expect(facet(page, "kind", "Pipeline")).to_be_checked()


def test_tag_then_category_narrow_the_results(page: Page, indexed: SyncSummary) -> None:
    page.goto("/")
    facet(page, "tag", "image-build").click()
    page.wait_for_url(re.compile(r"tag=image-build"))
    assert card_names(page) == ["buildah", "buildpacks", "buildpacks", "kaniko", "s2i"]

    facet(page, "category", "Image Build").click()  # the buildpacks Pipeline is not in that category
    page.wait_for_url(re.compile(r"category=Image\+Build"))
    assert card_names(page) == ["buildah", "buildpacks", "kaniko", "s2i"]
    expect(card(page, "buildpacks", "Pipeline")).to_have_count(0)
    expect(page.locator("#result-count")).to_have_text("4 results")
    expect(facet(page, "tag", "image-build")).to_be_checked()

    facet(page, "tag", "image-build").click()  # untick: only the category is left
    page.wait_for_url(lambda url: "tag=" not in url)
    assert card_names(page) == ["buildah", "buildpacks", "docker-build", "kaniko", "s2i"]


def _catalog_with_mtimes(sample: Path, dest: Path, newest: list[str]) -> Path:
    """A copy of the test catalog whose files are all old, except the resources in newest (newest first)."""
    shutil.copytree(sample, dest, symlinks=True)
    old = datetime(2024, 1, 1, tzinfo=UTC).timestamp()
    for path in dest.rglob("*"):
        if path.is_file() and not path.is_symlink():
            os.utime(path, (old, old))
    for rank, folder in enumerate(newest):
        when = old + timedelta(days=len(newest) - rank).total_seconds()
        for manifest in (dest / folder).glob("*/*.yaml"):
            os.utime(manifest, (when, when))
    return dest


def test_sort_by_recently_updated_and_by_name(
    page: Page, engine: Engine, settings: Settings, fixture_catalog: Path, tmp_path: Path
) -> None:
    newest = ["task/kind", "task/shellcheck", "pipeline/buildpacks"]
    register(engine, "tekton", _catalog_with_mtimes(fixture_catalog, tmp_path / "catalog", newest))
    sync(engine, settings, "tekton")
    page.goto("/")
    assert card_names(page)[:2] == ["build-push-deploy", "buildah"]

    page.get_by_label("Sort").select_option(label="Recently updated")  # JS submits on change
    page.wait_for_url(re.compile(r"sort=updated"))
    assert card_names(page)[:4] == ["kind", "shellcheck", "buildpacks", "build-push-deploy"]
    dates = page.locator("article.card .updated").all_inner_texts()
    assert dates[:4] == ["updated 2024-01-04", "updated 2024-01-03", "updated 2024-01-02", "updated 2024-01-01"]
    expect(page.get_by_label("Sort")).to_have_value("updated")

    search(page, "git")  # the chosen sort stays while the words change
    assert card_names(page)[:2] == ["buildpacks", "git-clone"]
    page.get_by_label("Sort").select_option(label="Relevance")
    page.wait_for_url(re.compile(r"sort=relevance"))
    assert card_names(page)[0] == "git-clone"
    page.get_by_label("Sort").select_option(label="Name")
    page.wait_for_url(re.compile(r"sort=name"))
    names = card_names(page)
    assert names[0] == "buildpacks"
    assert names == sorted(names)
    expect(page.get_by_role("searchbox", name="Search")).to_have_value("git")


# -- resource pages -------------------------------------------------------------------------------------


def test_resource_page_opened_from_a_card(page: Page, hub_url: str, indexed: SyncSummary) -> None:
    page.goto("/?q=git")
    card(page, "git-clone").get_by_role("link", name="git clone").click()
    page.wait_for_url(f"{hub_url}/tekton/task/git-clone")

    expect(page.locator("#resource-title")).to_contain_text("git clone")
    expect(page).to_have_title(re.compile(r"^git clone 0\.10 "))
    options = page.locator("#version-select option").all_inner_texts()
    assert options[0].startswith("0.10 (latest)")
    assert [o.split()[0] for o in options[:3]] == ["0.10", "0.9", "0.8"]
    expect(page.locator("#version-select")).to_have_value("0.10")
    expect(page.get_by_role("button", name="Show")).to_be_hidden()  # JS switches versions itself

    readme = page.locator("#readme")
    expect(readme.locator("h1")).to_have_text("git-clone")
    expect(readme).to_contain_text(MOVED_NOTICE)
    expect(readme.locator("strong").first).to_be_visible()
    assert "**Note" not in readme.inner_text() and "# `git-clone`" not in readme.inner_text()

    yaml = page.locator("#yaml .highlight")
    expect(yaml).to_contain_text("apiVersion: tekton.dev/v1\nkind: Task")
    key = yaml.locator("span.nt").first  # a YAML key, coloured by the highlighter's CSS
    body_colour = page.evaluate("getComputedStyle(document.body).color")
    assert key.evaluate("el => getComputedStyle(el).color") != body_colour

    assert page.locator("#platforms .badge").all_inner_texts() == GIT_CLONE_PLATFORMS
    expect(page.locator("#tags")).to_have_text("git")
    expect(page.locator("#min-pipelines-version")).to_have_text("0.38.0")
    expect(page.locator("#kubectl-command")).to_have_text(
        f"kubectl apply -f {hub_url}/v1/resource/tekton/task/git-clone/0.10/raw"
    )
    expect(page.locator("#tkn-command")).to_have_text(
        f"tkn hub install task git-clone --version 0.10 --from tekton --type tekton --api-server {hub_url}"
    )
    raw = page.request.get(f"{hub_url}/v1/resource/tekton/task/git-clone/0.10/raw")
    assert raw.ok and 'app.kubernetes.io/version: "0.10"' in raw.text()


def test_version_dropdown_switches_to_that_version(page: Page, hub_url: str, indexed: SyncSummary) -> None:
    page.goto("/tekton/task/git-clone")
    expect(page.locator("#readme")).to_contain_text(MOVED_NOTICE)

    page.locator("#version-select").select_option("0.9")  # JS submits on change
    page.wait_for_url(f"{hub_url}/tekton/task/git-clone/0.9")

    expect(page.locator("#shown-version")).to_have_text("0.9")
    expect(page.locator("#version-select")).to_have_value("0.9")
    expect(page.locator("#readme")).not_to_contain_text(MOVED_NOTICE)
    expect(page.locator("#yaml")).to_contain_text("apiVersion: tekton.dev/v1beta1")
    expect(page.locator("#kubectl-command")).to_contain_text("/git-clone/0.9/raw")
    expect(page.locator("#tkn-command")).to_contain_text("--version 0.9 ")


def test_deprecated_badge_only_on_deprecated_resources(page: Page, indexed: SyncSummary) -> None:
    page.goto("/")
    expect(card(page, "git-clone").locator(".badge.deprecated")).to_have_text("Deprecated")
    expect(card(page, "git-clone").locator(".badge.deprecated")).to_be_visible()
    expect(card(page, "yq").locator(".badge.deprecated")).to_have_count(0)

    page.goto("/tekton/task/yq")
    expect(page.locator("#resource-title .badge.deprecated")).to_have_count(0)
    page.goto("/tekton/task/git-clone")
    expect(page.locator("#resource-title .badge.deprecated")).to_be_visible()


# -- hostile catalog content ----------------------------------------------------------------------------

EVIL_MANIFEST = """\
apiVersion: tekton.dev/v1
kind: Task
metadata:
  name: evil
  labels:
    app.kubernetes.io/version: "0.1"
  annotations:
    tekton.dev/pipelines.minVersion: "0.50.0"
    tekton.dev/displayName: "evil <script>window.__pwned=3</script>"
    tekton.dev/tags: "<img/src=x/onerror=window.__pwned=4>"
spec:
  description: >-
    Says hello. <script>window.__pwned=5</script>
  steps:
    - name: hello
      image: alpine
      script: echo hello
"""

EVIL_README = """\
# Evil task

Before the script.

<script>window.__pwned=1</script>

<img src=x onerror="window.__pwned=2">

[click me](javascript:window.__pwned=6)

After the script: this text must still be shown.
"""


def test_scripts_in_catalog_content_never_run(page: Page, engine: Engine, settings: Settings, tmp_path: Path) -> None:
    folder = tmp_path / "evil-catalog" / "task" / "evil" / "0.1"
    folder.mkdir(parents=True)
    (folder / "evil.yaml").write_text(EVIL_MANIFEST)
    (folder / "README.md").write_text(EVIL_README)
    (folder / "samples").mkdir()
    (folder / "samples" / "run.yaml").write_text("# </pre><script>window.__pwned=7</script>\nkind: TaskRun\n")
    register(engine, "evil", tmp_path / "evil-catalog")
    assert sync(engine, settings, "evil").versions == 1
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))

    page.goto("/")
    expect(card(page, "evil")).to_contain_text("Says hello. <script>window.__pwned=5</script>")
    assert page.evaluate("typeof window.__pwned") == "undefined"

    card(page, "evil").get_by_role("link").click()
    page.wait_for_url(re.compile(r"/evil/task/evil$"))
    expect(page.locator("#resource-title")).to_contain_text("evil <script>window.__pwned=3</script>")
    readme = page.locator("#readme")
    expect(readme.locator("h1")).to_have_text("Evil task")
    expect(readme).to_contain_text("Before the script.")
    expect(readme).to_contain_text("After the script: this text must still be shown.")
    expect(readme.locator("script")).to_have_count(0)
    expect(readme.locator("[onerror]")).to_have_count(0)
    link = readme.get_by_text("click me")
    assert not (link.get_attribute("href") or "").lower().startswith("javascript:")
    link.click()
    expect(page.locator("#tags")).to_contain_text("<img/src=x/onerror=window.__pwned=4>")
    page.get_by_text("run.yaml", exact=True).click()
    expect(page.locator("details pre")).to_contain_text("</pre><script>window.__pwned=7</script>")
    assert page.evaluate("typeof window.__pwned") == "undefined"
    assert dialogs == []


# -- without JavaScript ---------------------------------------------------------------------------------


def test_search_filter_and_version_switch_work_without_javascript(
    page_without_js: Page, hub_url: str, indexed: SyncSummary
) -> None:
    page = page_without_js
    page.goto("/")
    search(page, "git")
    assert card_names(page)[0] == "git-clone"

    facet(page, "kind", "Pipeline").check()
    assert "kind=" not in page.url  # nothing submits by itself without JS
    page.get_by_role("button", name="Apply filters").click()
    page.wait_for_url(re.compile(r"kind=Pipeline"))
    assert "q=git" in page.url
    assert card_names(page) == ["buildpacks"]

    card(page, "buildpacks", "Pipeline").get_by_role("link").click()
    page.wait_for_url(f"{hub_url}/tekton/pipeline/buildpacks")
    expect(page.locator("#shown-version")).to_have_text("0.2 (latest)")
    page.locator("#version-select").select_option("0.1")
    page.get_by_role("button", name="Show").click()
    page.wait_for_url(f"{hub_url}/tekton/pipeline/buildpacks/0.1")
    expect(page.locator("#shown-version")).to_have_text("0.1")
    expect(page.locator("#kubectl-command")).to_contain_text("/pipeline/buildpacks/0.1/raw")
    expect(page.locator("button.copy")).to_have_count(3)  # the kubectl and tkn commands, the hub reference
    for button in page.locator("button.copy").all():  # they could not copy anything without JS
        expect(button).to_be_hidden()


# -- catalog problems -----------------------------------------------------------------------------------


def problem_row(page: Page, path: str):  # type: ignore[no-untyped-def]
    return page.locator("#errors tr").filter(has=page.locator("code").get_by_text(path, exact=True))


def test_catalog_page_lists_the_sync_problems(page: Page, hub_url: str, indexed: SyncSummary) -> None:
    page.goto("/catalogs")
    page.get_by_role("link", name="tekton", exact=True).click()
    page.wait_for_url(f"{hub_url}/catalogs/tekton")

    expected = {
        "task/yq/0.5/yq.yaml": ("error", "does not match the folder version"),
        "task/no-version-label/0.1/no-version-label.yaml": ("error", "missing the mandatory version label"),
        "pipeline/no-manifest/0.1": ("error", "no manifest"),
        "task/artifacthub-repo.yml": ("info", "plain file"),
    }
    for path, (level, reason) in expected.items():
        row = problem_row(page, path)
        expect(row).to_have_count(1)
        expect(row.locator("td").first).to_have_text(level)
        expect(row).to_contain_text(reason)

    page.get_by_role("link", name=re.compile(r"^error \(\d+\)$")).click()
    page.wait_for_url(re.compile(r"level=error"))
    levels = page.locator("#errors td:first-child").all_inner_texts()
    assert levels and set(levels) == {"error"}
    expect(problem_row(page, "task/yq/0.5/yq.yaml")).to_have_count(1)
    expect(problem_row(page, "task/artifacthub-repo.yml")).to_have_count(0)


# -- copy buttons ---------------------------------------------------------------------------------------


def test_copy_puts_the_command_on_the_clipboard(
    open_page: Callable[..., Page], hub_url: str, indexed: SyncSummary
) -> None:
    page = open_page(permissions=["clipboard-read", "clipboard-write"])
    page.goto("/tekton/task/git-clone")
    copy = page.locator('button.copy[data-target="kubectl-command"]')
    expect(copy).to_have_text("Copy")
    copy.click()
    expect(copy).to_have_text("Copied")
    expect(page.locator('button.copy[data-target="tkn-command"]')).to_have_text("Copy")
    pasted = page.evaluate("navigator.clipboard.readText()")
    assert pasted == f"kubectl apply -f {hub_url}/v1/resource/tekton/task/git-clone/0.10/raw"


def test_copy_falls_back_when_the_clipboard_api_is_refused(
    open_page: Callable[..., Page], indexed: SyncSummary
) -> None:
    page = open_page(permissions=["clipboard-read"])  # to read back what the fallback copied
    page.goto("/tekton/task/git-clone")
    page.evaluate("() => { navigator.clipboard.writeText = () => Promise.reject(new DOMException('no')); }")
    copy = page.locator('button.copy[data-target="tkn-command"]')
    copy.click()
    expect(copy).to_have_text("Copied")
    pasted = page.evaluate("navigator.clipboard.readText()")
    assert pasted == page.locator("#tkn-command").inner_text()
    assert pasted.startswith("tkn hub install task git-clone --version 0.10 ")


def test_catalogs_show_the_last_sync_its_outcome_and_the_next(
    page: Page, hub_url: str, engine: Engine, settings: Settings, tmp_path: Path, indexed: SyncSummary
) -> None:
    def no_registry(host: str) -> Registry:
        raise AssertionError(f"no registry in this test ({host})")

    syncer = CatalogSyncer(engine, settings.catalogs_dir, no_registry)
    register(engine, "gone", f"file://{tmp_path}/no-such-repo")
    with Session(engine) as session, session.begin():
        set_refresh(get_catalog(session, "tekton"), parse_refresh("5m"))
        set_refresh(get_catalog(session, "gone"), parse_refresh("never"))
    syncer.sync("tekton", "the test")
    with pytest.raises(CatalogSourceError):
        syncer.sync("gone", "the test")

    page.goto("/catalogs")
    tekton, gone = page.locator('tr[data-catalog="tekton"]'), page.locator('tr[data-catalog="gone"]')
    expect(tekton.locator(".refresh")).to_have_text("every 5m")
    expect(tekton.locator(".last-sync")).to_have_text(re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d UTC succeeded$"))
    expect(tekton.locator(".next-sync")).to_have_text(re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d UTC$"))
    expect(gone.locator(".refresh")).to_have_text("never")
    expect(gone.locator(".last-sync")).to_contain_text(" UTC failed: git fetch failed: ")
    expect(gone.locator(".last-sync")).to_contain_text("no-such-repo")  # which source git could not read
    expect(gone.locator(".next-sync")).to_have_text("never")

    gone.get_by_role("link", name="gone").click()
    page.wait_for_url(f"{hub_url}/catalogs/gone")
    expect(page.locator("#refresh")).to_have_text("never: synced only when asked")
    expect(page.locator("#last-sync")).to_have_text(re.compile(r" UTC failed$"))
    expect(page.locator("#next-sync")).to_have_text("never")
    expect(page.locator("#last-error")).to_contain_text("the previous index is still served: git fetch failed")

    JobQueue(engine).enqueue(CATALOG_SYNC, "gone", created_by="admin")  # asked for by hand, refresh or not
    page.reload()
    expect(page.locator("#next-sync")).to_have_text("queued now")
