"""Browser-test fixtures: the system's headless Chromium, driven by Playwright, kept on this machine.

Registered for the whole workspace by zaphub_devstack.pytest_plugin.

- `browser` (session): one Chromium for the run. Playwright cannot download its own browsers here,
  so this is Debian's `chromium` (`ZAPHUB_CHROMIUM` names another). Without it, browser tests skip
  with one line saying how to get it; with `CI=true` or `ZAPHUB_BROWSER_REQUIRED=1` they fail.
- `page` (test): a page in a fresh context whose requests to any host but this machine are aborted
  and recorded in `outside_requests` (test), so a test can assert that the page needed nothing else.
"""

import ipaddress
import os
import shutil
from collections.abc import AsyncIterator, Generator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import pytest_asyncio
from playwright.async_api import Browser, Page, Route, async_playwright

CHROMIUM_ENV = "ZAPHUB_CHROMIUM"
REQUIRED_ENV = "ZAPHUB_BROWSER_REQUIRED"
MISSING = f"browser tests need Chromium: apt-get install chromium (or set {CHROMIUM_ENV}=/path)"

# Without these, Chromium on a machine with no route out misbehaves: it keeps reaching for its own
# services (updates, sync, QUIC, the GPU process). No sandbox, as the tests may run as root.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def chromium_path() -> Path | None:
    """The Chromium to launch: `ZAPHUB_CHROMIUM`, else `chromium` on the PATH; None when absent."""
    named = os.environ.get(CHROMIUM_ENV) or shutil.which("chromium")
    if named and Path(named).is_file():
        return Path(named)
    return None


def browser_required() -> bool:
    """Whether a missing browser fails the run instead of skipping its tests (CI must not skip them)."""
    return os.environ.get("CI", "").lower() == "true" or os.environ.get(REQUIRED_ENV) == "1"


def is_local(url: str) -> bool:
    """Whether loading `url` stays on this machine: loopback hosts, or no host at all (data:, blob:)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https", "ws", "wss"):
        return True
    host = parts.hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def browser() -> AsyncIterator[Browser]:
    path = chromium_path()
    if path is None:
        if browser_required():
            pytest.fail(f"{MISSING}; {REQUIRED_ENV}=1 or CI=true makes it required", pytrace=False)
        pytest.skip(MISSING)
    async with async_playwright() as playwright:
        chromium = await playwright.chromium.launch(executable_path=path, args=CHROMIUM_ARGS, headless=True)
        yield chromium
        await chromium.close()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Report every skip for want of Chromium at one place, so the summary folds them into one line."""
    report = yield
    if report.skipped and isinstance(report.longrepr, tuple) and report.longrepr[2].endswith(MISSING):
        report.longrepr = (__file__, chromium_path.__code__.co_firstlineno, report.longrepr[2])
    return report


@pytest.fixture
def outside_requests() -> list[str]:
    """The URLs that `page` was asked to load from another host, in order; each was aborted."""
    return []


@pytest_asyncio.fixture(loop_scope="session")
async def page(browser: Browser, outside_requests: list[str]) -> AsyncIterator[Page]:
    async def local_only(route: Route) -> None:
        if is_local(route.request.url):
            await route.continue_()
        else:
            outside_requests.append(route.request.url)
            await route.abort("addressunreachable")

    context = await browser.new_context()
    await context.route("**/*", local_only)
    yield await context.new_page()
    await context.close()
