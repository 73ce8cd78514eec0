"""The events pages in headless Chromium: a signed GitHub event that made a run and one a bad signature stopped,
each with what a person needs to act on it (which interceptor stopped it and why; the run it made)."""

from __future__ import annotations

import json
import re

import pytest
from playwright.sync_api import Page, expect

from catalog.manifests import load_documents
from hub.objects import ObjectService
from tests.triggers.sink_harness import Hub
from tests.triggers.test_acceptance_providers import GITHUB, GITHUB_BODY, github_headers


@pytest.mark.browser
def test_events_list_and_an_event_with_its_outcome(app, hub_url: str, page: Page):
    ObjectService(app.extensions["taskhub.objects"]).apply(load_documents(GITHUB), namespace="ns1")
    ObjectService(app.extensions["taskhub.objects"]).create_secret("github-secret", {"secretToken": "1234567"},
                                                                   namespace="ns1")  # fmt: skip
    hub = Hub(app, hub_url)
    processor = app.extensions["taskhub.triggers"].processor
    good = json.loads(hub.send("github-listener", GITHUB_BODY, github_headers())[1])["eventID"]
    bad = json.loads(hub.send("github-listener", GITHUB_BODY + b" ", github_headers())[1])["eventID"]
    for event_id in (good, bad):
        processor.process(app.extensions["taskhub.triggers"].events.get(event_id).id)
    hub.send("github-listener", b"[1]", github_headers())  # not a JSON object: refused with a 400

    page.goto("/events")
    rows = page.locator("#events tr[data-event-id]")
    expect(rows).to_have_count(3)
    expect(page.locator("#event-count")).to_have_text("3 events")
    expect(rows.nth(0)).to_have_attribute("data-status", "refused")
    expect(rows.nth(0)).to_contain_text("Invalid event body format")
    page.select_option("#status-select", "done")
    expect(page.locator("#events tr[data-event-id]")).to_have_count(2)

    page.goto("/events")
    page.locator("#events tr[data-event-id]").nth(1).get_by_role("link").first.click()
    outcome = page.locator("#outcomes tr[data-trigger='github-listener']")
    expect(outcome).to_have_attribute("data-status", "stopped")
    expect(outcome).to_contain_text("github")
    expect(outcome).to_contain_text("payload signature check failed")
    expect(page.locator("#headers")).to_contain_text("[redacted]")
    expect(page.locator("#headers")).not_to_contain_text("sha256=")

    page.goto("/events")
    page.locator("#events tr[data-event-id]").nth(2).get_by_role("link").first.click()
    run_link = page.locator("#outcomes tr[data-trigger='github-listener'] a")
    expect(run_link).to_contain_text("TaskRun github-run-")
    run_link.click()
    expect(page).to_have_url(re.compile(r"/runs/\d+$"))
