"""Helpers for the sandbox's subscribe / template messages: a wechatpy client aimed at the sandbox, grants."""
from __future__ import annotations

import requests
from wechatpy import WeChatClient

BILL_DATA = {"thing1": {"value": "血常规"}, "amount2": {"value": "25.00"}, "time3": {"value": "2024-07-09 10:06"},
             "thing4": {"value": "演示诊所"}}
ALIPAY_BILL_DATA = {"keyword1": {"value": "血常规"}, "keyword2": {"value": "25.00元"},
                    "keyword3": {"value": "2024-07-09 10:06"}, "keyword4": {"value": "演示诊所"}}


class SandboxWeChatClient(WeChatClient):
    """wechatpy's own client with every base URL on the sandbox's api.weixin.qq.com stand-in.

    wechatpy fetches tokens from a hard-coded https://api.weixin.qq.com/cgi-bin/token; this override is
    the one change the platform makes too, so the SDK's caching and 40001 refresh run unchanged.
    """

    def __init__(self, sandbox_url: str, appid: str, secret: str, **kwargs):
        super().__init__(appid, secret, timeout=10, **kwargs)
        self.sandbox_url = sandbox_url
        self.API_BASE_URL = f"{sandbox_url}/wxlogin/cgi-bin/"
        self.wxa.API_BASE_URL = f"{sandbox_url}/wxlogin/"

    def fetch_access_token(self):
        return self._fetch_access_token(url=f"{self.sandbox_url}/wxlogin/cgi-bin/token",
                                        params={"grant_type": "client_credential", "appid": self.appid,
                                                "secret": self.secret})


def template(app: dict, purpose: str) -> dict:
    return next(t for t in app["message_templates"] if t["purpose"] == purpose)


def grant_wechat(sandbox_url: str, appid: str, openid: str, template_ids: list[str],
                 result: str = "accept") -> dict:
    resp = requests.post(f"{sandbox_url}/sandbox/wechat/subscriptions",
                         json={"appid": appid, "openid": openid, "template_ids": template_ids, "result": result},
                         timeout=10)
    assert resp.status_code == 201, resp.text
    return resp.json()


def grant_alipay(sandbox_url: str, app_id: str, user_id: str, template_ids: list[str],
                 result: str = "accept") -> dict:
    resp = requests.post(f"{sandbox_url}/sandbox/alipay/subscriptions",
                         json={"app_id": app_id, "user_id": user_id, "template_ids": template_ids, "result": result},
                         timeout=10)
    assert resp.status_code == 201, resp.text
    return resp.json()


def messages(sandbox_url: str, **query) -> list[dict]:
    resp = requests.get(f"{sandbox_url}/sandbox/messages", params=query, timeout=10)
    assert resp.status_code == 200, resp.text
    return resp.json()


def tokens_issued(sandbox_url: str, appid: str) -> int:
    resp = requests.get(f"{sandbox_url}/sandbox/wechat/tokens", params={"appid": appid}, timeout=10)
    assert resp.status_code == 200, resp.text
    return resp.json()["issued"]


def log_entries(sandbox_url: str, kind: str) -> list[dict]:
    return [e for e in requests.get(f"{sandbox_url}/sandbox/log", params={"limit": 2000}, timeout=10).json()
            if e["kind"] == kind]
