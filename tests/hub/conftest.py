"""Browser fixtures: one headless Chromium per session, the app served on a free port per test."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from flask import Flask
from playwright.sync_api import Browser, BrowserContext, Page, Playwright, sync_playwright

from tests.conftest import served

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
# Pages of a local server answer in milliseconds; a long wait only hides a failure.
TIMEOUT_MS = 10_000


@pytest.fixture(scope="session")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as pw:
        yield pw


@pytest.fixture(scope="session")
def browser(playwright: Playwright) -> Iterator[Browser]:
    """Debian's Chromium, started once for the whole session."""
    browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
    yield browser
    browser.close()


@pytest.fixture
def hub_url(app: Flask) -> Iterator[str]:
    """The app served by a real HTTP server on a free loopback port; yields its base URL."""
    with served(app) as url:
        yield url


@pytest.fixture
def open_page(browser: Browser, hub_url: str) -> Iterator[Callable[..., Page]]:
    """Opens a page in a new browser context with the given options (viewport, permissions, ...)."""
    contexts: list[BrowserContext] = []

    def open_page(**options: Any) -> Page:
        context = browser.new_context(base_url=hub_url, **options)
        context.set_default_timeout(TIMEOUT_MS)
        contexts.append(context)
        return context.new_page()

    yield open_page
    for context in contexts:
        context.close()


@pytest.fixture
def page(open_page: Callable[..., Page]) -> Page:
    """A fresh page with JavaScript on, pointed at the hub."""
    return open_page()


@pytest.fixture
def page_without_js(open_page: Callable[..., Page]) -> Page:
    """A fresh page with JavaScript off: what the <noscript> controls are for."""
    return open_page(java_script_enabled=False)
