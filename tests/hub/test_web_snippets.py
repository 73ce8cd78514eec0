"""The resource page's references paste as written: multi-line YAML, read back by a YAML parser to the very values
a Tekton resolver needs (headless Chromium, the clipboard as a user's paste gets it)."""

from __future__ import annotations

from collections.abc import Callable

import yaml
from playwright.sync_api import Page, expect

from catalog.sync import SyncSummary


def copied(page: Page, target: str) -> str:
    button = page.locator(f'button.copy[data-target="{target}"]')
    button.click()
    expect(button).to_have_text("Copied")
    return str(page.evaluate("navigator.clipboard.readText()"))


def test_the_hub_reference_pastes_as_yaml_with_the_version_as_text(
    open_page: Callable[..., Page], indexed: SyncSummary
) -> None:
    page = open_page(permissions=["clipboard-read", "clipboard-write"])
    page.goto("/tekton/task/git-clone")
    assert page.locator("#hub-snippet").inner_text().count("\n") >= 12  # shown as lines, not flattened
    pasted = copied(page, "hub-snippet")
    assert pasted.count("\n") >= 12 and pasted.startswith("taskRef:\n  resolver: hub\n")
    assert yaml.safe_load(pasted) == {
        "taskRef": {
            "resolver": "hub",
            "params": [
                {"name": "catalog", "value": "tekton"},
                {"name": "type", "value": "tekton"},
                {"name": "kind", "value": "task"},
                {"name": "name", "value": "git-clone"},
                {"name": "version", "value": "0.10"},  # a string: unquoted, YAML would read the number 0.1
            ],
        }
    }
    page.goto("/tekton/task/git-clone/0.9")
    assert yaml.safe_load(copied(page, "hub-snippet"))["taskRef"]["params"][-1] == {"name": "version", "value": "0.9"}
    page.goto("/tekton/stepaction/git-clone")
    step = yaml.safe_load(copied(page, "hub-snippet"))
    assert list(step) == ["ref"] and {"name": "kind", "value": "stepaction"} in step["ref"]["params"]


def test_the_reference_is_shown_as_lines_without_javascript(page_without_js: Page, indexed: SyncSummary) -> None:
    page_without_js.goto("/tekton/pipeline/buildpacks")
    snippet = page_without_js.locator("#hub-snippet")
    expect(snippet).to_be_visible()
    lines = snippet.inner_text().splitlines()
    assert lines[:2] == ["pipelineRef:", "  resolver: hub"] and len(lines) == 13
