"""Driving the console: pages watched for console errors, signing in, and the Element Plus widgets the screens
use (message boxes, selects, date pickers, table rows); and the admin API over HTTP to check what happened."""
from __future__ import annotations

import os
import re
import time
import weakref
from pathlib import Path

import requests

VIEWPORT = {"width": 1366, "height": 768}
SCREENSHOTS = Path(os.environ.get("HPAY_SCREENSHOT_DIR", Path(__file__).parent / "out"))
ADMIN = "/api/admin/v1"
# What Chromium logs for an HTTP answer of 4xx/5xx to a fetch: allowed only where a test expects that refusal.
_HTTP_ERROR = re.compile(r"Failed to load resource: the server responded with a status of (\d{3})")
# The console keeps its live-event stream open for as long as the page: a request that never settles.
LIVE_STREAM = "/api/admin/v1/events/stream"


class InFlight:
    """The page's requests still waiting for their answer, but for the live-event stream (Playwright's
    `networkidle` never comes while that stream is open)."""

    def __init__(self, page) -> None:
        self.open: set = set()
        page.on("request", lambda request: self.open.add(request) if LIVE_STREAM not in request.url else None)
        page.on("requestfinished", lambda request: self.open.discard(request))
        page.on("requestfailed", lambda request: self.open.discard(request))

    def wait_quiet(self, page, quiet_ms: int = 500, timeout_s: float = 15.0) -> None:
        deadline, quiet_since = time.monotonic() + timeout_s, None
        while time.monotonic() < deadline:
            page.wait_for_timeout(100)
            if self.open:
                quiet_since = None
            elif quiet_since is None:
                quiet_since = time.monotonic()
            elif time.monotonic() - quiet_since >= quiet_ms / 1000:
                return
        raise AssertionError(f"requests still open after {timeout_s}s: {[r.url for r in self.open]}")


_in_flight: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


class ConsoleErrors:
    """Console errors and uncaught exceptions of the pages a test opened."""

    def __init__(self) -> None:
        self.seen: list[str] = []
        self.allowed_statuses: set[int] = set()
        # Which request each 4xx/5xx answered (Chromium's console line names only the page): for the failure message.
        self.failed_requests: list[str] = []

    def allow_http_status(self, *statuses: int) -> None:
        """The test provokes a refusal on purpose (Chromium logs every 4xx answer as an error)."""
        self.allowed_statuses.update(statuses)

    def _only_stream_backpressure(self) -> bool:
        """Every 503 was the live-event stream's `too_many_streams`: a page reloaded with page.goto drops its stream,
        which the server notices only at the next heartbeat, so a test going through URLs quickly meets the per-process
        stream limit; the console waits for Retry-After and reconnects (admin_api/live_events.py)."""
        refused = [line for line in self.failed_requests if line.startswith("503 ")]
        return bool(refused) and all(LIVE_STREAM in line for line in refused)

    def unexpected(self) -> list[str]:
        wrong = []
        for line in self.seen:
            match = _HTTP_ERROR.search(line)
            if match and int(match.group(1)) in self.allowed_statuses:
                continue
            if match and match.group(1) == "503" and self._only_stream_backpressure():
                continue
            wrong.append(line)
        return wrong


class Console:
    """Opens signed-in console pages on the platform, watching each for console errors."""

    def __init__(self, browser, base_url: str, errors: ConsoleErrors) -> None:
        self.browser = browser
        self.base_url = base_url.rstrip("/")
        self.errors = errors
        self.contexts = []

    def page(self):
        context = self.browser.new_context(viewport=VIEWPORT, locale="zh-CN", timezone_id="Asia/Shanghai",
                                           accept_downloads=True)
        context.set_default_timeout(15_000)
        self.contexts.append(context)
        page = context.new_page()
        _in_flight[page] = InFlight(page)
        page.on("console", lambda message: self.errors.seen.append(f"{page.url}: {message.text}")
                if message.type == "error" else None)
        page.on("pageerror", lambda error: self.errors.seen.append(f"{page.url}: uncaught {error}"))
        page.on("response", lambda response: self.errors.failed_requests.append(
            f"{response.status} {response.request.method} {response.url}") if response.status >= 400 else None)
        return page

    def url(self, path: str = "") -> str:
        return f"{self.base_url}/admin/{path.lstrip('/')}"

    def sign_in(self, username: str, password: str, path: str = ""):
        """A new page signed in as `username` (through the sign-in form), then at `path` if given."""
        page = self.page()
        page.goto(self.url(path))
        page.get_by_test_id("login-username").fill(username)
        page.get_by_test_id("login-password").fill(password)
        page.get_by_test_id("login-submit").click()
        page.wait_for_url(re.compile(r"/admin/(?!login)"))
        page.get_by_test_id("username").wait_for()
        return page

    def screenshot_all(self, name: str) -> None:
        """Every open page as it is now (a failed test's evidence)."""
        for n, page in enumerate(p for context in self.contexts for p in context.pages):
            screenshot(page, f"{name}-{n}")

    def close(self) -> None:
        for context in self.contexts:
            context.close()


def screenshot(page, name: str) -> Path:
    """The page once its requests have settled, transitions finished (a closing dropdown, a fading tag)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.mouse.move(0, VIEWPORT["height"] - 1)
    tracked = _in_flight.get(page)
    if tracked is None:
        page.wait_for_load_state("networkidle")
    else:
        page.wait_for_load_state("load")
        tracked.wait_quiet(page)
    page.wait_for_timeout(300)
    page.screenshot(path=str(path), animations="disabled")
    return path


# --- Element Plus widgets ------------------------------------------------------------------------------------

def answer_box(page, button: str) -> str:
    """Read the open message box (a confirmation, a refusal) and press `button`; returns its text."""
    box = page.locator(".el-message-box").last
    box.wait_for()
    handle = box.element_handle()  # this box, not the next one (a refusal may open as this one closes)
    text = handle.inner_text()
    box.get_by_role("button", name=button).click()
    handle.wait_for_element_state("hidden")
    return text


def choose(page, select, option: str) -> None:
    """Pick `option` in an el-select (a locator or a data-testid)."""
    target = page.get_by_test_id(select) if isinstance(select, str) else select
    target.click()
    page.locator(".el-select-dropdown__item:visible", has_text=option).first.click()


def type_date(page, testid: str, value: str) -> None:
    """Type a value into an el-date-picker (in its display format) and accept it."""
    field = page.get_by_test_id(testid).locator("input").first
    field.click()
    field.fill(value)
    field.press("Enter")  # (not Escape: that would close the dialog the picker is in)


def open_menu(page, title: str) -> None:
    """Go to a screen through the side menu."""
    page.get_by_test_id("menu").get_by_role("menuitem", name=title, exact=True).click()


def row(page, table_testid: str, text: str):
    """The table row that shows `text`."""
    return page.get_by_test_id(table_testid).locator("tr.el-table__row", has_text=text).first


def success_toast(page, text: str) -> None:
    page.locator(".el-message--success", has_text=text).first.wait_for()


# --- the admin API, to check what the screens did -------------------------------------------------------------

class AdminApi:
    def __init__(self, platform_url: str, username: str, password: str) -> None:
        self.url = platform_url.rstrip("/") + ADMIN
        self.http = requests.Session()
        resp = self.http.post(f"{self.url}/auth/login", json={"username": username, "password": password}, timeout=30)
        assert resp.status_code == 200, resp.text
        self.http.headers["Authorization"] = f"Bearer {resp.json()['token']}"

    def get(self, path: str, **params) -> dict | list:
        resp = self.http.get(self.url + path, params=params, timeout=30)
        assert resp.status_code == 200, (path, resp.status_code, resp.text)
        return resp.json()

    def post(self, path: str, body: dict | None = None) -> dict:
        resp = self.http.post(self.url + path, json=body or {}, timeout=60)
        assert resp.status_code in (200, 201, 202), (path, resp.status_code, resp.text)
        return resp.json()
