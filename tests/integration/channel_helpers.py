"""Helpers for the channel adapter tests: merchant configs from the sandbox, a notification receiver,
a proxy that alters the gateway's answers, and small waits."""
from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from datetime import date, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import requests

from app.channels import MerchantConfig


def wechat_config(sandbox_url: str, merchant: dict, api_base_url: str | None = None) -> MerchantConfig:
    return MerchantConfig(
        channel="wechat", clinic_code=merchant["clinic_code"], app_id=merchant["appid"], mch_id=merchant["mch_id"],
        api_key=merchant["api_key"], app_secret=merchant["app_secret"], sign_type=merchant["sign_type"],
        app_private_key=None, alipay_public_key=None, api_base_url=api_base_url or f"{sandbox_url}/wxpay/",
        login_base_url=f"{sandbox_url}/wxlogin/")


def alipay_config(sandbox_url: str, merchant: dict, api_base_url: str | None = None) -> MerchantConfig:
    return MerchantConfig(
        channel="alipay", clinic_code=merchant["clinic_code"], app_id=merchant["app_id"], mch_id=None, api_key=None,
        app_secret=None, sign_type="RSA2", app_private_key=merchant["app_private_key"],
        alipay_public_key=merchant["alipay_public_key"],
        api_base_url=api_base_url or f"{sandbox_url}/alipay/gateway.do", login_base_url=None)


def new_merchant(sandbox_url: str, channel: str, **options) -> dict:
    res = requests.post(f"{sandbox_url}/sandbox/merchants", json={"channel": channel, **options}, timeout=5)
    assert res.status_code == 201, res.text
    return res.json()


def out_trade_no() -> str:
    return "T" + uuid.uuid4().hex[:24]


def sandbox_today(sandbox_url: str) -> date:
    """The sandbox's business date (Asia/Shanghai, clock offset included): the day its bills are for."""
    return datetime.fromisoformat(requests.get(f"{sandbox_url}/sandbox/clock", timeout=5).json()["now"]).date()


def control(sandbox_url: str, path: str, body: dict) -> dict:
    res = requests.post(f"{sandbox_url}/sandbox/{path}", json=body, timeout=5)
    assert res.status_code in (200, 201), res.text
    return res.json()


def wait_until(predicate: Callable[[], object], timeout: float = 10.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


class NotificationReceiver:
    """Our notify endpoint in miniature: records every POST body and answers with the channel's ack."""

    def __init__(self, ack: tuple[bytes, str]) -> None:
        self.bodies: list[bytes] = []
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 (http.server's name)
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with receiver._lock:
                    receiver.bodies.append(body)
                self.send_response(200)
                self.send_header("Content-Type", ack[1])
                self.send_header("Content-Length", str(len(ack[0])))
                self.end_headers()
                self.wfile.write(ack[0])

            def log_message(self, *args):
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/notify"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> NotificationReceiver:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()

    def wait_for(self, *needles: bytes, timeout: float = 10.0) -> bytes:
        """The first body received that contains every needle."""
        def found():
            with self._lock:
                return next((b for b in self.bodies if all(n in b for n in needles)), None)
        return wait_until(found, timeout, f"a notification holding {needles!r}")


class TamperingProxy:
    """Forwards every request to `target` and passes the answer through `alter` on the way back:
    a man in the middle rewriting the channel's answers. `paths` records what was asked."""

    def __init__(self, target: str, alter: Callable[[bytes], bytes]) -> None:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def _forward(self, method: str):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                proxy.paths.append(self.path)
                upstream = requests.request(method, target + self.path, data=body or None, timeout=10,
                                            headers={"Content-Type": self.headers.get("Content-Type", "")})
                answer = alter(upstream.content)
                proxy.altered += 1
                self.send_response(upstream.status_code)
                self.send_header("Content-Type", upstream.headers.get("Content-Type", "text/plain"))
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def do_GET(self):  # noqa: N802
                self._forward("GET")

            def do_POST(self):  # noqa: N802
                self._forward("POST")

            def log_message(self, *args):
                pass

        self.altered = 0
        self.paths: list[str] = []
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> TamperingProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()
