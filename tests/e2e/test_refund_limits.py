"""The card-refund limits end to end, each at its boundary: exactly the limit goes back along its channels,
one fen more is refused with the rule it breaks and changes nothing.

Real PostgreSQL, Redis, gunicorn, rq workers and cron; the sandbox channels and HIS over HTTP.
"""
from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select, update

from app.db.models import MerchantAccount, PaymentAttempt, RefundRequest
from tests.e2e.helpers import new_client
from tests.e2e.refund_helpers import (
    card_with_topups,
    counter_takes,
    his_balance,
    his_records,
    his_signed_post,
    refunded_at_channels,
    topup_attempts,
    trade_view,
    wait_refund,
    wait_settled,
)


def _requests_of_card(rt, card_no: str) -> int:
    with rt.db.session() as session:
        return len(session.scalars(select(RefundRequest.id).where(RefundRequest.card_no == card_no)).all())


def test_balance_limit_when_the_counter_took_money_off_the_card(platform, sandbox, rt):
    card, clients = card_with_topups(platform, sandbox, wechat=[3000, 2000], alipay=[])
    wechat = clients["wechat"]
    counter_takes(sandbox, card["card_no"], 1500)
    assert his_balance(sandbox, card["card_no"]) == 3500

    over = wechat.call("POST", f"/cards/{card['card_no']}/refunds", json={"amount_fen": 3501}, expect=(409,))
    assert over["error"] == "refund_exceeds_balance" and over["errors"] == {"balance_fen": 3500}
    assert _requests_of_card(rt, card["card_no"]) == 0
    assert his_balance(sandbox, card["card_no"]) == 3500

    exact = wechat.call("POST", f"/cards/{card['card_no']}/refunds", json={"amount_fen": 3500})
    assert [p["amount_fen"] for p in exact["parts"]] == [2000, 1500]
    done = wait_refund(wechat, exact["refund_request_no"], {"succeeded", "failed", "partially_failed"})
    assert done["status"] == "succeeded"
    assert his_balance(sandbox, card["card_no"]) == 0
    assert [(r["kind"], r["amount_fen"]) for r in his_records(sandbox, exact["refund_request_no"])] == [
        ("refund_hold", 3500)]
    assert refunded_at_channels(rt, sandbox, card["card_no"]) == 3500


def test_window_request_counts_every_apps_topups_a_patient_request_only_its_own(platform, sandbox, rt):
    # 5000 fen paid in cash at the window sits on the card too; only the online top-ups can go back online.
    card, clients = card_with_topups(platform, sandbox, wechat=[3000], alipay=[1000], balance_fen=5000)
    card_no = card["card_no"]
    assert his_balance(sandbox, card_no) == 9000

    patient_over = clients["wechat"].call("POST", f"/cards/{card_no}/refunds", json={"amount_fen": 3001},
                                          expect=(409,))
    assert patient_over["error"] == "refund_exceeds_online_topups"
    assert patient_over["errors"] == {"refundable_topups_fen": 3000}
    window_over = his_signed_post(platform, sandbox, "/api/his/v1/refunds",
                                  {"card_no": card_no, "amount_fen": 4001, "request_no": f"W1-{card_no}"})
    assert window_over.status_code == 409, window_over.text
    assert window_over.json()["error"] == "refund_exceeds_online_topups"
    assert _requests_of_card(rt, card_no) == 0 and his_balance(sandbox, card_no) == 9000

    window = his_signed_post(platform, sandbox, "/api/his/v1/refunds",
                             {"card_no": card_no, "amount_fen": 4000, "request_no": f"W2-{card_no}"})
    assert window.status_code == 201, window.text
    done = wait_settled(rt, window.json()["refund_request_no"])
    assert done["status"] == "succeeded"
    # Newest first: the Alipay top-up, then the WeChat one, each along its own channel in full.
    alipay_order, wechat_order = card["orders"]["alipay"][0], card["orders"]["wechat"][0]
    assert [(p["order_no"], p["amount_fen"]) for p in done["parts"]] == [
        (alipay_order["order_no"], 1000), (wechat_order["order_no"], 3000)]
    alipay_attempt, wechat_attempt = topup_attempts(rt, [alipay_order["order_no"], wechat_order["order_no"]])
    assert trade_view(sandbox, "alipay", alipay_attempt.out_trade_no)["refunded_fen"] == 1000
    assert trade_view(sandbox, "wechat", wechat_attempt.out_trade_no)["refunded_fen"] == 3000
    assert his_balance(sandbox, card_no) == 5000

    # What was refunded no longer counts: the cash left on the card cannot go back online.
    again = his_signed_post(platform, sandbox, "/api/his/v1/refunds",
                            {"card_no": card_no, "amount_fen": 1, "request_no": f"W3-{card_no}"})
    assert again.status_code == 409 and again.json()["error"] == "refund_exceeds_online_topups"
    assert clients["wechat"].call("GET", f"/orders/{wechat_order['order_no']}")["status"] == "refunded"


def test_a_topup_past_the_channels_refund_window_is_skipped(platform, sandbox, rt):
    card, clients = card_with_topups(platform, sandbox, wechat=[2000, 1000], alipay=[])
    card_no, wechat = card["card_no"], clients["wechat"]
    older, newest = card["orders"]["wechat"]
    [newest_attempt] = topup_attempts(rt, [newest["order_no"]])
    with rt.db.session() as session:
        window_days = session.get(MerchantAccount, newest_attempt.merchant_account_id).refund_window_days
    # The newest top-up, which would go first, was paid a day longer ago than the channel refunds.
    _set_paid_at(rt, newest_attempt.id, newest_attempt.paid_at - timedelta(days=window_days + 1))
    try:
        over = wechat.call("POST", f"/cards/{card_no}/refunds", json={"amount_fen": 2001}, expect=(409,))
        assert over["error"] == "refund_exceeds_refundable_orders" and over["errors"] == {"refundable_fen": 2000}
        assert "refund window" in over["message"]

        exact = wechat.call("POST", f"/cards/{card_no}/refunds", json={"amount_fen": 2000})
        assert [(p["order_no"], p["amount_fen"]) for p in exact["parts"]] == [(older["order_no"], 2000)]
        done = wait_refund(wechat, exact["refund_request_no"], {"succeeded", "failed", "partially_failed"})
        assert done["status"] == "succeeded"
    finally:
        _set_paid_at(rt, newest_attempt.id, newest_attempt.paid_at)
    assert trade_view(sandbox, "wechat", newest_attempt.out_trade_no)["refunded_fen"] == 0
    assert wechat.call("GET", f"/orders/{newest['order_no']}")["status"] == "completed"
    assert his_balance(sandbox, card_no) == 1000


def _set_paid_at(rt, attempt_id: int, paid_at) -> None:
    with rt.db.session() as session:
        session.execute(update(PaymentAttempt).where(PaymentAttempt.id == attempt_id).values(paid_at=paid_at))


def test_a_refund_request_is_visible_only_to_the_user_who_made_it(platform, sandbox, rt):
    card, clients = card_with_topups(platform, sandbox, wechat=[1500], alipay=[500])
    card_no, owner = card["card_no"], clients["wechat"]
    mine = owner.call("POST", f"/cards/{card_no}/refunds", json={"amount_fen": 700})
    assert owner.call("GET", f"/refunds/{mine['refund_request_no']}")["refund_request_no"] == mine["refund_request_no"]

    stranger = new_client(platform, sandbox, "wechat", f"refund-stranger-{card_no}")
    for other in (stranger, clients["alipay"]):  # the Alipay user even holds the same card
        missing = other.call("GET", f"/refunds/{mine['refund_request_no']}", expect=(404,))
        assert missing["error"] == "refund_request_not_found"

    window = his_signed_post(platform, sandbox, "/api/his/v1/refunds",
                             {"card_no": card_no, "amount_fen": 300, "request_no": f"W-{card_no}"})
    assert window.status_code == 201, window.text
    missing = owner.call("GET", f"/refunds/{window.json()['refund_request_no']}", expect=(404,))
    assert missing["error"] == "refund_request_not_found"
    for request_no in (mine["refund_request_no"], window.json()["refund_request_no"]):
        assert wait_settled(rt, request_no)["status"] == "succeeded"
