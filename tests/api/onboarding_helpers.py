"""Steps shared by the onboarding tests: new sandbox merchants and HIS keys, the API bodies made from them, an
operator, a clinic of the test's own, and a mini-program login through one named app."""
from __future__ import annotations

import secrets

import requests

from tests.api.admin_helpers import ADMIN, make_user, sign_in
from tests.api.mp_helpers import channel_user_id


def new_code(prefix: str = "c") -> str:
    return f"{prefix}{secrets.token_hex(5)}"


def sandbox_merchant(sandbox_url: str, channel: str, clinic_code: str = "onboarded", **extra) -> dict:
    """A new sandbox merchant (`wechat`, `alipay`) or HIS key (`his`), with all its keys."""
    resp = requests.post(f"{sandbox_url}/sandbox/merchants",
                         json={"channel": channel, "clinic_code": clinic_code, **extra}, timeout=10)
    assert resp.status_code == 201, resp.text
    return resp.json()


def wechat_app_body(sandbox_url: str, merchant: dict, **overrides) -> dict:
    return {"channel": "wechat", "name": "小程序 mini-program", "app_id": merchant["appid"],
            "mch_id": merchant["mch_id"], "api_key": merchant["api_key"], "app_secret": merchant["app_secret"],
            "sign_type": merchant["sign_type"], "api_base_url": f"{sandbox_url}/wxpay/",
            "login_base_url": f"{sandbox_url}/wxlogin/", **overrides}


def alipay_app_body(sandbox_url: str, merchant: dict, **overrides) -> dict:
    return {"channel": "alipay", "name": "支付宝小程序", "app_id": merchant["app_id"], "mch_id": merchant["pid"],
            "app_private_key": merchant["app_private_key"], "alipay_public_key": merchant["alipay_public_key"],
            "api_base_url": f"{sandbox_url}/alipay/gateway.do", **overrides}


def operator_headers(client, rt) -> tuple[dict, str]:
    username, password = make_user(rt, "operator", clinics=())
    return sign_in(client, username, password), username


def created(resp) -> dict:
    assert resp.status_code in (200, 201), resp.get_json()
    return resp.get_json()


def onboard_clinic(client, headers: dict, sandbox_url: str, code: str | None = None) -> dict:
    """A clinic made through the operator's API with its HIS (a new sandbox key) and one WeChat and one Alipay
    app (new sandbox merchants): `{code, his, wechat, alipay}`, the merchants' keys included."""
    code = code or new_code()
    created(client.post(f"{ADMIN}/clinics", json={"code": code, "name": f"诊所 {code}"}, headers=headers))
    his = sandbox_merchant(sandbox_url, "his")
    created(client.put(f"{ADMIN}/clinics/{code}/his", headers=headers,
                       json={"base_url": f"{sandbox_url}/his/", "key_id": his["key_id"], "secret": his["secret"]}))
    wechat, alipay = sandbox_merchant(sandbox_url, "wechat", code), sandbox_merchant(sandbox_url, "alipay", code)
    apps = {}
    for channel, body in (("wechat", wechat_app_body(sandbox_url, wechat)),
                          ("alipay", alipay_app_body(sandbox_url, alipay))):
        apps[channel] = created(client.post(f"{ADMIN}/clinics/{code}/channel-apps", json=body, headers=headers))
    return {"code": code, "his": his, "wechat": wechat, "alipay": alipay, "apps": apps}


def app_login_code(sandbox_url: str, channel: str, app_id: str, label: str) -> str:
    if channel == "wechat":
        body, path = {"appid": app_id, "openid": label}, "/sandbox/wechat/codes"
    else:
        body, path = {"app_id": app_id, "user_id": channel_user_id("alipay", label)}, "/sandbox/alipay/codes"
    resp = requests.post(f"{sandbox_url}{path}", json=body, timeout=10)
    assert resp.status_code == 201, resp.text
    return resp.json()["code"]


def app_login(client, sandbox_url: str, clinic_code: str, channel: str, app_id: str | None, label: str,
              code_app_id: str | None = None):
    """POST /auth/login through one app (a login code of `code_app_id`, default the same app)."""
    code = app_login_code(sandbox_url, channel, code_app_id or app_id, label)
    body = {"clinic_code": clinic_code, "channel": channel, "code": code}
    if app_id is not None:
        body["app_id"] = app_id
    return client.post("/api/mp/v1/auth/login", json=body)
