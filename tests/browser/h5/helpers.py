"""Driving the H5 pages (the patient's mini-program in a browser) on a phone-sized page, and setting up and checking
through HTTP what a test does not do through the pages: the mini-program API as the same user, the sandbox HIS."""
from __future__ import annotations

import os
import re
import secrets
import shutil
from datetime import datetime, timedelta, timezone
from pathlib import Path
from urllib.parse import urlencode

import requests

from tests.api.card_helpers import code_in, his_card, texts
from tests.api.mp_helpers import channel_user_id
from tests.browser.helpers import SCREENSHOTS, ConsoleErrors
from tests.his_auth import sandbox_his_auth

PHONE = {"width": 375, "height": 812}
MP = "/api/mp/v1"
SHANGHAI = timezone(timedelta(hours=8))
COMMITTED_SCREENSHOTS = Path(__file__).resolve().parents[3] / "mini_program_mock" / "h5" / "screenshots"
# Set to 1 to refresh the committed copies (mini_program_mock/h5/screenshots) from this run's screenshots.
UPDATE_COMMITTED = os.environ.get("HPAY_UPDATE_SCREENSHOTS") == "1"
# The localStorage key under which the page keeps this browser's user of a channel (web/src/session.ts).
USER_KEY = "h5.user.{channel}"


def new_user_id(channel: str) -> str:
    """A user of the channel's own shape that no other test uses."""
    if channel == "alipay":
        return channel_user_id(channel, f"h5-{secrets.token_hex(6)}")
    return f"o{secrets.token_hex(13)}x"


class Phone:
    """Opens the H5 pages on phone-sized pages (one browser context per user), watching them for console errors."""

    def __init__(self, browser, sandbox_url: str, platform_url: str, errors: ConsoleErrors) -> None:
        self.browser = browser
        self.sandbox_url = sandbox_url.rstrip("/")
        self.platform_url = platform_url.rstrip("/")
        self.errors = errors
        self.contexts = []

    def open(self, channel: str, user_id: str | None = None, path: str = ""):
        """A page of the H5 at `path` as `user_id` on `channel` (a new user when None), signed in silently."""
        context = self.browser.new_context(viewport=PHONE, device_scale_factor=2, is_mobile=True, has_touch=True,
                                           locale="zh-CN", timezone_id="Asia/Shanghai", accept_downloads=True)
        context.set_default_timeout(20_000)
        if user_id:
            context.add_init_script(f"localStorage.setItem({USER_KEY.format(channel=channel)!r}, {user_id!r})")
        self.contexts.append(context)
        page = context.new_page()
        page.on("console", lambda message: self.errors.seen.append(f"{page.url}: {message.text}")
                if message.type == "error" else None)
        page.on("pageerror", lambda error: self.errors.seen.append(f"{page.url}: uncaught {error}"))
        page.goto(self.url(path, channel))
        page.locator(".shell").wait_for()
        page.get_by_test_id("signing-in").wait_for(state="detached")
        return page

    def url(self, path: str = "", channel: str = "wechat") -> str:
        query = urlencode({"platform": self.platform_url, "channel": channel, "clinic": "demo"})
        return f"{self.sandbox_url}/h5/{path.lstrip('/')}{'&' if '?' in path else '?'}{query}"

    def screenshot_all(self, name: str) -> None:
        for n, page in enumerate(p for context in self.contexts for p in context.pages):
            screenshot(page, f"{name}-{n}", commit=False)

    def close(self) -> None:
        for context in self.contexts:
            context.close()


_NO_TOAST = "() => ![...document.querySelectorAll('.van-toast')].some((toast) => toast.offsetParent !== null)"


def screenshot(page, name: str, commit: bool = True, keep_toast: bool = False) -> Path:
    """The page once its requests and transitions settled, into tests/browser/out/ (h5-NAME.png); with
    HPAY_UPDATE_SCREENSHOTS=1 also into mini_program_mock/h5/screenshots/ (NAME.png), the copies committed."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"h5-{name}.png"
    page.wait_for_load_state("networkidle")
    if not keep_toast:
        page.wait_for_function(_NO_TOAST, timeout=6000)
    page.wait_for_timeout(400)
    page.screenshot(path=str(path), animations="disabled")
    if commit and UPDATE_COMMITTED:
        COMMITTED_SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, COMMITTED_SCREENSHOTS / f"{name}.png")
    return path


def pay_on_sheet(page, amount_text: str, shot: str | None = None) -> None:
    """The sandbox's payment sheet shows the amount; the patient confirms."""
    sheet = page.get_by_test_id("pay-sheet")
    sheet.wait_for()
    assert page.get_by_test_id("pay-amount").inner_text() == amount_text
    if shot:
        screenshot(page, shot)
    page.get_by_test_id("pay-confirm").click()
    sheet.wait_for(state="hidden")


def yuan(fen: int) -> str:
    return f"{fen // 100:,}.{fen % 100:02d}"


# --- the same patient account over HTTP, for set-up ---------------------------------------------------------------

class MpUser:
    """A mini-program user logged in through the sandbox's login stand-in, as the page logs in."""

    def __init__(self, platform_url: str, sandbox, channel: str, user_id: str | None = None) -> None:
        self.sandbox = sandbox
        self.channel = channel
        self.user_id = user_id or new_user_id(channel)
        self.url = platform_url.rstrip("/") + MP
        self.http = requests.Session()
        merchants = sandbox.merchants()[channel]
        merchant = next(m for m in merchants if m.get("clinic_code", "demo") == "demo")
        if channel == "wechat":
            body = {"appid": merchant["appid"], "openid": self.user_id}
        else:
            body = {"app_id": merchant["app_id"], "user_id": self.user_id}
        code = requests.post(f"{sandbox.url}/sandbox/{channel}/codes", json=body, timeout=10).json()["code"]
        session = self.call("POST", "/auth/login", {"clinic_code": "demo", "channel": channel, "code": code})
        self.http.headers["Authorization"] = f"Bearer {session['token']}"
        self.id = session["user"]["id"]

    def call(self, method: str, path: str, body: dict | None = None, expect=(200, 201, 202)) -> dict | list:
        resp = self.http.request(method, self.url + path, json=body, timeout=60)
        assert resp.status_code in expect, (method, path, resp.status_code, resp.text)
        return resp.json() if resp.content else {}

    def patient_with_card(self, balance_fen: int = 0, name: str | None = None) -> tuple[dict, dict]:
        """A HIS card of a new HIS patient, bound to a new patient of this user (the SMS step through the API)."""
        card = his_card(self.sandbox, name=name, balance_fen=balance_fen)
        patient = self.call("POST", "/patients", {"name": card["name"], "phone": card["phone"], "relation": "self"})
        before = len(texts(self.sandbox, card["phone"]))
        asked = self.call("POST", f"/patients/{patient['id']}/cards", {"card_no": card["card_no"]})
        assert asked["verification"] == "sms", asked
        code = code_in(texts(self.sandbox, card["phone"])[before:][-1])
        self.call("POST", f"/patients/{patient['id']}/cards", {"card_no": card["card_no"], "sms_code": code})
        return patient, card

    def order(self, order_no: str) -> dict:
        return self.call("GET", f"/orders/{order_no}")


# --- the sandbox HIS ----------------------------------------------------------------------------------------------

def his_balance(sandbox, card_no: str) -> int:
    resp = requests.get(f"{sandbox.url}/sandbox/cards/{card_no}", timeout=10)
    assert resp.status_code == 200, resp.text
    return resp.json()["balance_fen"]


def open_his_bill(sandbox, card_no: str, title: str, amount_fen: int, kind: str = "lab") -> dict:
    """The doctor opens a visit bill at the HIS (the sandbox's control route)."""
    resp = requests.post(f"{sandbox.url}/sandbox/his/bills",
                         json={"card_no": card_no, "kind": kind, "title": title, "amount_fen": amount_fen}, timeout=10)
    assert resp.status_code == 201, resp.text
    return resp.json()


def his_bill(sandbox, bill_id: str) -> dict:
    """The bill as the HIS holds it (its own API, signed as a HIS key holder)."""
    resp = requests.get(f"{sandbox.url}/his/bills/{bill_id}", auth=sandbox_his_auth(sandbox), timeout=10)
    assert resp.status_code == 200, resp.text
    return resp.json()


def his_records_of(sandbox, order_no: str) -> list[dict]:
    today = datetime.now(SHANGHAI).date()
    rows = []
    for day in (today - timedelta(days=1), today, today + timedelta(days=1)):
        resp = requests.get(f"{sandbox.url}/sandbox/his/records", params={"date": day.isoformat()}, timeout=10)
        rows += resp.json()
    return [row for row in rows if row["order_no"] == order_no]


def order_no_in(url: str) -> str:
    match = re.search(r"/h5/orders/([^/?#]+)", url)
    assert match, url
    return match.group(1)
