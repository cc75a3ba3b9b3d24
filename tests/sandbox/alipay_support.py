"""Helpers for talking to the sandbox Alipay as a merchant would: SDK clients, a notify receiver, a proxy."""
from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl

import requests
from alipay import AliPay


def new_alipay_merchant(sandbox) -> dict:
    resp = requests.post(f"{sandbox.url}/sandbox/merchants", json={"channel": "alipay"}, timeout=30)
    assert resp.status_code == 201, resp.text
    return resp.json()


def alipay_client(gateway_base: str, merchant: dict, notify_url: str | None = None, sign_type: str = "RSA2",
                  app_private_key: str | None = None) -> AliPay:
    ali = AliPay(merchant["app_id"], notify_url, app_private_key or merchant["app_private_key"],
                 merchant["alipay_public_key"], sign_type=sign_type)
    ali._gateway = f"{gateway_base}/alipay/gateway.do"
    return ali


def out_trade_no() -> str:
    return "T" + uuid.uuid4().hex[:20]


def pay(sandbox, trade_no: str, outcome: str = "success", **extra) -> requests.Response:
    return requests.post(f"{sandbox.url}/sandbox/alipay/pay", json={"trade_no": trade_no, "outcome": outcome, **extra},
                         timeout=10)


def ledger_view(sandbox, app_id: str, out_trade_no_: str) -> dict:
    resp = requests.get(f"{sandbox.url}/sandbox/alipay/trades/{out_trade_no_}", params={"app_id": app_id}, timeout=10)
    assert resp.status_code == 200, resp.text
    return resp.json()


def issue_code(sandbox, app_id: str, user_id: str | None = None) -> dict:
    body = {"app_id": app_id, **({"user_id": user_id} if user_id else {})}
    resp = requests.post(f"{sandbox.url}/sandbox/alipay/codes", json=body, timeout=10)
    assert resp.status_code == 201, resp.text
    return resp.json()


def sandbox_now(sandbox) -> datetime:
    return datetime.fromisoformat(requests.get(f"{sandbox.url}/sandbox/clock", timeout=5).json()["now"])


@contextmanager
def shifted_clock(sandbox, offset_s: float) -> Iterator[None]:
    """Move the sandbox clock for the block, putting the previous offset back afterwards."""
    before = requests.get(f"{sandbox.url}/sandbox/clock", timeout=5).json()["offset_s"]
    requests.post(f"{sandbox.url}/sandbox/clock", json={"offset_s": before + offset_s}, timeout=5).raise_for_status()
    try:
        yield
    finally:
        requests.post(f"{sandbox.url}/sandbox/clock", json={"offset_s": before}, timeout=5).raise_for_status()


def parse_form(body: str) -> dict[str, str]:
    return dict(parse_qsl(body, keep_blank_values=True))


def verify_notification(ali: AliPay, fields: dict[str, str]) -> bool:
    """What a merchant's notify endpoint does: pop sign, let the SDK verify the rest (it drops sign_type)."""
    data = dict(fields)
    signature = data.pop("sign")
    return ali.verify(data, signature)


class _LoopbackServer:
    def __init__(self, handler: type[BaseHTTPRequestHandler]):
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self._thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                        daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()


class NotifyReceiver(_LoopbackServer):
    """A merchant notify endpoint: records each POST and replies from `replies`, then `success`."""

    def __init__(self, replies: list[str] | None = None):
        self.received: list[dict] = []
        self.replies = list(replies or [])
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 (http.server's hook name)
                body = self.rfile.read(int(self.headers.get("Content-Length", 0))).decode("utf-8")
                with receiver._lock:
                    receiver.received.append({"body": body, "content_type": self.headers.get("Content-Type"),
                                              "path": self.path, "fields": parse_form(body)})
                    reply = receiver.replies.pop(0) if receiver.replies else "success"
                payload = reply.encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args):
                pass

        super().__init__(Handler)
        self.url = f"{self.url}/notify/alipay/demo"

    def wait_for(self, count: int, timeout: float = 5.0) -> list[dict]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if len(self.received) >= count:
                    return list(self.received)
            time.sleep(0.02)
        raise AssertionError(f"expected {count} notifications, got {len(self.received)}")


class TamperingProxy(_LoopbackServer):
    """Forwards GETs to the sandbox and passes the body through `tamper` on the way back."""

    def __init__(self, upstream: str, tamper: Callable[[bytes], bytes]):
        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 (http.server's hook name)
                upstream_resp = requests.get(upstream + self.path, timeout=10)
                payload = tamper(upstream_resp.content)
                self.send_response(upstream_resp.status_code)
                self.send_header("Content-Type", upstream_resp.headers.get("Content-Type", "text/plain"))
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args):
                pass

        super().__init__(Handler)
