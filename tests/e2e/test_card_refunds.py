"""Card-balance refunds on both channels: split newest first, each part along its own channel."""
from __future__ import annotations

import requests

from app.services.refunds.card_refunds import describe
from tests.e2e.helpers import wait_until
from tests.e2e.refund_helpers import card_with_topups, his_balance, his_signed_post


def _trade_view(sandbox, out_trade_no: str) -> dict:
    merchants = sandbox.merchants()
    appid = next(m for m in merchants["wechat"] if m["clinic_code"] == "demo")["appid"]
    app_id = next(m for m in merchants["alipay"] if m["clinic_code"] == "demo")["app_id"]
    wx = requests.get(f"{sandbox.url}/sandbox/wechat/trades/{out_trade_no}", params={"appid": appid}, timeout=5)
    if wx.status_code == 200:
        return {"channel": "wechat", **wx.json()}
    ali = requests.get(f"{sandbox.url}/sandbox/alipay/trades/{out_trade_no}", params={"app_id": app_id}, timeout=5)
    assert ali.status_code == 200, out_trade_no
    return {"channel": "alipay", **ali.json()}


def test_window_refund_splits_over_three_topups_on_two_channels(platform, sandbox, rt):
    card, clients = card_with_topups(platform, sandbox, wechat=[3000, 2000], alipay=[1000])
    assert his_balance(sandbox, card["card_no"]) == 6000
    body = {"card_no": card["card_no"], "amount_fen": 5500, "request_no": f"W-{card['card_no']}"}
    resp = his_signed_post(platform, sandbox, "/api/his/v1/refunds", body)
    assert resp.status_code == 201, resp.text
    refund = resp.json()
    # Newest first: the Alipay 1000, then the WeChat 2000, then 2500 of the WeChat 3000.
    assert [p["amount_fen"] for p in refund["parts"]] == [1000, 2000, 2500]
    final = wait_until(lambda: (v := describe(rt, refund["refund_request_no"]))["status"] != "processing" and v,
                       timeout=60, what="window refund settled")
    assert final["status"] == "succeeded" and {p["status"] for p in final["parts"]} == {"succeeded"}
    assert his_balance(sandbox, card["card_no"]) == 500
    channels = []
    for part in final["parts"]:
        trade = _trade_view(sandbox, part["refund_no"].rsplit("R", 1)[0])
        assert trade.get("refunded_fen", trade.get("refunded_fee")) == part["amount_fen"]
        channels.append(trade["channel"])
    assert channels == ["alipay", "wechat", "wechat"]
    replay = his_signed_post(platform, sandbox, "/api/his/v1/refunds", body)
    assert replay.status_code == 201 and replay.json()["refund_request_no"] == refund["refund_request_no"]


def test_patient_refund_counts_only_this_apps_topups_at_the_boundary(platform, sandbox):
    card, clients = card_with_topups(platform, sandbox, wechat=[3000], alipay=[1000])
    wechat = clients["wechat"]
    over = wechat.call("POST", f"/cards/{card['card_no']}/refunds", json={"amount_fen": 3001}, expect=(409,))
    assert over["error"] == "refund_exceeds_online_topups"
    exact = wechat.call("POST", f"/cards/{card['card_no']}/refunds", json={"amount_fen": 3000})
    assert [p["amount_fen"] for p in exact["parts"]] == [3000]
    done = wait_until(lambda: (v := wechat.call("GET", f"/refunds/{exact['refund_request_no']}"))["status"]
                      != "processing" and v, timeout=60, what="patient refund settled")
    assert done["status"] == "succeeded"
    assert his_balance(sandbox, card["card_no"]) == 1000
