"""Acting as the mini-program: obtain a login code from the sandbox and log in."""
from __future__ import annotations

import zlib

import requests


def channel_user_id(channel: str, label: str) -> str:
    """A stable user id of the channel's own shape for a test's label (Alipay ids are 2088 + 12 digits)."""
    if channel == "alipay":
        return f"2088{zlib.crc32(label.encode()) * 7919 % 10**12:012d}"
    return label


def login_code(sandbox, channel: str, openid: str | None = None) -> str:
    merchants = sandbox.merchants()
    if channel == "wechat":
        appid = next(m for m in merchants["wechat"] if m["clinic_code"] == "demo")["appid"]
        body = {"appid": appid, **({"openid": openid} if openid else {})}
        resp = requests.post(f"{sandbox.url}/sandbox/wechat/codes", json=body, timeout=5)
    else:
        app_id = next(m for m in merchants["alipay"] if m["clinic_code"] == "demo")["app_id"]
        body = {"app_id": app_id, **({"user_id": channel_user_id("alipay", openid)} if openid else {})}
        resp = requests.post(f"{sandbox.url}/sandbox/alipay/codes", json=body, timeout=5)
    resp.raise_for_status()
    return resp.json()["code"]


def login(client, sandbox, channel: str = "wechat", openid: str | None = None) -> dict:
    resp = client.post("/api/mp/v1/auth/login",
                       json={"clinic_code": "demo", "channel": channel, "code": login_code(sandbox, channel, openid)})
    assert resp.status_code == 200, resp.get_json()
    return resp.get_json()


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}
