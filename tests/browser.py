"""Shared plumbing for the real-browser tests: Debian's headless Chromium driven by Playwright.

Playwright's own browser download is not used (CI installs Debian's ``chromium``
package, see ``.ci/run``); the executable comes from ``shutil.which("chromium")``.
A test that cannot find Chromium or Playwright is skipped with the reason.

    exe = chromium_or_skip()
    with browser_page(live_server.url) as watch:
        watch.page.goto(live_server.url + "/workbench/")
        screenshot(watch.page, "workbench-home")
        assert watch.console_errors == []
        assert watch.foreign_requests == []

Screenshots go to ``$SCREENSHOT_DIR`` (CI sets it and lists the folder at the
end), defaulting to ``artifacts/screenshots`` in the project (gitignored).
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import pytest

PROJECT_DIR = Path(__file__).resolve().parent.parent
LAUNCH_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
               "--disable-sync"]
LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1", "[::1]"}
# Resource types that count towards a page's weight ("under 100 KB before images").
_IMAGE_TYPES = {"image", "media"}


def chromium_or_skip() -> str:
    """The Chromium executable's path; skips the test (with the reason) when Chromium or Playwright is missing."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        pytest.skip("Playwright's Python package is not installed (pip install -r requirements.txt)")
    executable = shutil.which("chromium")
    if not executable:
        pytest.skip("no `chromium` on PATH (apt-get install chromium fonts-noto-cjk; .ci/run does it)")
    return executable


def screenshot_dir() -> Path:
    """Where screenshots go: $SCREENSHOT_DIR, else <project>/artifacts/screenshots."""
    folder = Path(os.environ.get("SCREENSHOT_DIR") or PROJECT_DIR / "artifacts" / "screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def screenshot(page, name: str, *, full_page: bool = True) -> Path:
    """Save a PNG of ``page`` as ``<name>.png`` in the screenshot folder and print its path."""
    safe = re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-")
    path = screenshot_dir() / f"{safe}.png"
    if full_page:  # a sticky header would otherwise be drawn where the page happened to be scrolled to
        page.evaluate("window.scrollTo(0, 0)")
    page.screenshot(path=str(path), full_page=full_page)
    print(f"screenshot: {path}")
    return path


def is_local(url: str) -> bool:
    """True for URLs the page may load: the project's own server, or data:/blob:/about: URLs."""
    parts = urlsplit(url)
    if parts.scheme not in {"http", "https", "ws", "wss"}:
        return True
    return (parts.hostname or "") in LOCAL_HOSTS


@dataclass
class PageWatch:
    """A page plus what was seen while it ran: console errors, requests to other hosts, responses."""

    page: object
    context: object
    browser: object
    base_url: str
    console_errors: list[str] = field(default_factory=list)
    foreign_requests: list[str] = field(default_factory=list)
    failed_requests: list[str] = field(default_factory=list)

    def _watch(self, page) -> None:
        page.on("console", lambda msg: msg.type == "error" and self.console_errors.append(
            f"{msg.text} @ {msg.location.get('url', '')}"))
        page.on("pageerror", lambda exc: self.console_errors.append(f"uncaught: {exc}"))
        page.on("request", lambda req: None if is_local(req.url) else self.foreign_requests.append(req.url))
        # A request the page itself cancels by navigating on (net::ERR_ABORTED) is not a failure.
        page.on("requestfailed", lambda req: None if "ERR_ABORTED" in (req.failure or "") else
                self.failed_requests.append(f"{req.url}: {req.failure}"))

    def page_weight(self, path: str) -> dict[str, int]:
        """Bytes a cold load of ``path`` transfers, by resource type, images and media left out.

        Loads the page in a fresh context (empty cache, the same cookies) so
        stylesheets and scripts count every time; the sizes are Chromium's
        transferred body + header bytes of each response.
        """
        context = self.browser.new_context(storage_state=self.context.storage_state(),
                                           viewport=self.page.viewport_size, locale="zh-CN")
        try:
            page = context.new_page()
            requests = []
            page.on("requestfinished", lambda request: requests.append(request))
            page.goto(self.base_url + path, wait_until="load")
            page.wait_for_load_state("networkidle")
            weights: dict[str, int] = {}
            for request in requests:
                if request.resource_type in _IMAGE_TYPES or not is_local(request.url):
                    continue
                sizes = request.sizes()
                size = sizes["responseBodySize"] + sizes["responseHeadersSize"]
                weights[request.resource_type] = weights.get(request.resource_type, 0) + size
            weights["total"] = sum(weights.values())
            return weights
        finally:
            context.close()


@contextlib.contextmanager
def browser_page(live_server_url: str, viewport: tuple[int, int] = (375, 812), *,
                 locale: str = "zh-CN") -> Iterator[PageWatch]:
    """Launch headless Chromium and yield a watched page at ``viewport`` (a phone by default).

    Django's async guard trips on the sync Playwright API's event loop, so it
    is switched off for the duration (restored afterwards).
    """
    executable = chromium_or_skip()
    from django.db import connections
    from playwright.sync_api import sync_playwright

    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=executable, headless=True, args=LAUNCH_ARGS)
            try:
                width, height = viewport
                context = browser.new_context(viewport={"width": width, "height": height}, locale=locale,
                                              device_scale_factor=2, is_mobile=True, has_touch=True)
                context.set_default_timeout(10_000)
                page = context.new_page()
                watch = PageWatch(page=page, context=context, browser=browser, base_url=live_server_url.rstrip("/"))
                watch._watch(page)
                yield watch
            finally:
                # While Playwright's loop runs, Django hands this thread other database connections (its
                # connection store follows the async context); close them here, in that same context, or
                # PostgreSQL refuses to drop the test database at the end of the run.
                connections.close_all()
                browser.close()
    finally:
        if previous is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous
