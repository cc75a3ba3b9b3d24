"""The admin console in Debian's Chromium (Playwright for Python), against the real platform stack.

The session builds the console once if its build is missing or older than its sources (npm ci from the
lockfile, vue-tsc, vite build); the `platform` fixture serves it from gunicorn with rq workers and the
sandbox. Each test gets pages whose console errors fail it: collected from `page.on("console")` and
`page.on("pageerror")`. Screenshots go to tests/browser/out/ (git-ignored).
"""
from __future__ import annotations

import os
import secrets
import shutil

import pytest

from tests.browser.helpers import Console, ConsoleErrors

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--disable-quic", "--no-first-run"]


@pytest.fixture(scope="session")
def console_build():
    """The console's build, made once per session when it is missing or stale."""
    from app.cli import console_build as build

    if shutil.which("npm") is None:
        pytest.fail("npm is missing: `make test` installs nodejs and npm (services-deps)")
    build.build(if_stale=True)
    assert (build.CONSOLE_DIST / "index.html").is_file()
    return build.CONSOLE_DIST


@pytest.fixture(scope="session")
def chromium():
    from playwright.sync_api import sync_playwright

    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(f"{CHROMIUM} is missing: `make test` installs Debian's chromium (services-deps)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.when == "call":
        item.browser_failed = report.failed


@pytest.fixture()
def console(request, chromium, platform, console_build):
    errors = ConsoleErrors()
    opened = Console(chromium, platform.url, errors)
    yield opened
    if getattr(request.node, "browser_failed", False):
        opened.screenshot_all(f"failed-{request.node.name}")
    opened.close()
    wrong = errors.unexpected()
    assert not wrong, ("console errors on the pages visited:\n" + "\n".join(wrong)
                       + "\nrequests answered 4xx/5xx:\n" + "\n".join(errors.failed_requests))


@pytest.fixture()
def make_user(rt, demo_clinic):
    """Staff users of the test's own: make_user(role, clinic codes) -> (username, password)."""
    from app.services.people.staff_auth import create_user

    def make(role: str, clinics: tuple[str, ...] = ("demo",)) -> tuple[str, str]:
        username, password = f"ui-{role}-{secrets.token_hex(4)}", "pw-" + secrets.token_hex(10)
        with rt.db.session() as session:
            create_user(session, username, password, role, list(clinics), created_by="browser-test")
        return username, password

    return make
