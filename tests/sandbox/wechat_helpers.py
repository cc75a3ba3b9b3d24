"""Helpers for talking to the sandbox WeChat world as the platform would: wechatpy clients and a notify receiver."""
from __future__ import annotations

import threading
import time
from collections.abc import Callable
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import requests
from wechatpy import WeChatClient
from wechatpy.pay import WeChatPay

SHANGHAI = timezone(timedelta(hours=8))
SUCCESS_REPLY = b"<xml><return_code><![CDATA[SUCCESS]]></return_code><return_msg><![CDATA[OK]]></return_msg></xml>"
FAIL_REPLY = b"<xml><return_code><![CDATA[FAIL]]></return_code><return_msg><![CDATA[busy]]></return_msg></xml>"


def new_merchant(sandbox, sign_type: str = "MD5") -> dict:
    resp = requests.post(f"{sandbox.url}/sandbox/merchants", json={"channel": "wechat", "sign_type": sign_type},
                         timeout=10)
    assert resp.status_code == 201, resp.text
    return resp.json()


def pay_client(base_url: str, merchant: dict, api_key: str | None = None) -> WeChatPay:
    pay = WeChatPay(merchant["appid"], api_key or merchant["api_key"], merchant["mch_id"], timeout=10)
    pay.API_BASE_URL = f"{base_url}/wxpay/"
    return pay


def login_client(base_url: str, appid: str, secret: str) -> WeChatClient:
    client = WeChatClient(appid, secret, access_token="unused", timeout=10)
    client.wxa.API_BASE_URL = f"{base_url}/wxlogin/"
    return client


def issue_code(base_url: str, appid: str, openid: str | None = None) -> dict:
    body = {"appid": appid, **({"openid": openid} if openid else {})}
    resp = requests.post(f"{base_url}/sandbox/wechat/codes", json=body, timeout=10)
    assert resp.status_code == 201, resp.text
    return resp.json()


def create_order(pay: WeChatPay, out_trade_no: str, total_fee: int, notify_url: str, **extra) -> dict:
    extra.setdefault("user_id", "o_test_openid")
    return pay.order.create("JSAPI", extra.pop("body", "体检套餐"), total_fee, notify_url, client_ip="127.0.0.1",
                            out_trade_no=out_trade_no, **extra)


def control_pay(base_url: str, prepay_id: str, outcome: str = "success", **extra) -> requests.Response:
    return requests.post(f"{base_url}/sandbox/wechat/pay", json={"prepay_id": prepay_id, "outcome": outcome, **extra},
                         timeout=10)


def trade_view(base_url: str, appid: str, out_trade_no: str) -> dict:
    resp = requests.get(f"{base_url}/sandbox/wechat/trades/{out_trade_no}", params={"appid": appid}, timeout=10)
    assert resp.status_code == 200, resp.text
    return resp.json()


@contextmanager
def shifted_clock(base_url: str, seconds: float):
    """Move the sandbox clock `seconds` ahead of where it is, and put it back afterwards."""
    before = requests.get(f"{base_url}/sandbox/clock", timeout=5).json()["offset_s"]
    requests.post(f"{base_url}/sandbox/clock", json={"offset_s": before + seconds}, timeout=5).raise_for_status()
    try:
        yield
    finally:
        requests.post(f"{base_url}/sandbox/clock", json={"offset_s": before}, timeout=5).raise_for_status()


def shanghai_compact(moment: datetime) -> str:
    return moment.astimezone(SHANGHAI).strftime("%Y%m%d%H%M%S")


def wait_until(check: Callable[[], object], timeout: float = 10.0, interval: float = 0.02):
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        time.sleep(interval)


class NotifyReceiver:
    """A tiny HTTP server standing in for the platform's notify endpoints.

    Records every POST body and answers from `replies` in order (SUCCESS once they run out).
    """

    def __init__(self, replies: list[bytes] | None = None):
        self.bodies: list[str] = []
        self.replies = list(replies or [])
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0))).decode("utf-8")
                with receiver._lock:
                    receiver.bodies.append(body)
                    reply = receiver.replies.pop(0) if receiver.replies else SUCCESS_REPLY
                self.send_response(200)
                self.send_header("Content-Type", "text/xml")
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05},
                                        daemon=True)

    def __enter__(self) -> NotifyReceiver:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()

    def received(self) -> list[str]:
        with self._lock:
            return list(self.bodies)

    def wait_for(self, count: int, timeout: float = 10.0) -> list[str]:
        return wait_until(lambda: self.received() if len(self.received()) >= count else None, timeout)
