"""Card refunds when things go wrong: concurrent requests over the balance, duplicate, forged and lost refund
notifications, the HIS failing while the amount is taken off the card, and a channel refusing a part.

Real PostgreSQL, Redis, gunicorn, rq workers and cron; the sandbox channels and HIS over HTTP. Sandbox
faults are global, so each is set for a block that clears it; a stopped cron is always started again.
"""
from __future__ import annotations

import threading
from datetime import datetime

import requests
from sqlalchemy import func, select

from app.db.models import MerchantAccount, NotificationInbox, Order, OrderEvent, Refund
from app.services.clinics.merchants import channel_for_account
from tests.e2e.helpers import order_row, wait_until
from tests.e2e.refund_helpers import (
    SHANGHAI,
    card_orders_locked,
    card_with_topups,
    counter_takes,
    cron_stopped,
    dispatch_only,
    his_balance,
    his_records,
    his_signed_post,
    refund_request,
    refunded_at_channels,
    request_writes,
    sandbox_faults,
    set_faults,
    topup_attempts,
    trade_view,
    wait_settled,
    wechat_merchant,
    wechat_refund_notification,
)

NOTIFY = "/notify/wechat/demo/refund"


def test_two_requests_together_over_the_balance_only_one_takes_money(platform, sandbox, rt):
    card, clients = card_with_topups(platform, sandbox, wechat=[5000, 5000], alipay=[])
    card_no = card["card_no"]
    counter_takes(sandbox, card_no, 4000)  # 6000 fen left on the card, 10,000 fen of online top-ups
    answers: dict[str, tuple[int, dict]] = {}

    def patient():
        wechat = clients["wechat"]
        resp = wechat.http.post(f"{platform.url}/api/mp/v1/cards/{card_no}/refunds", json={"amount_fen": 4000},
                                headers={"Authorization": f"Bearer {wechat.token}"}, timeout=60)
        answers["patient"] = (resp.status_code, resp.json())

    def window():
        resp = his_signed_post(platform, sandbox, "/api/his/v1/refunds",
                               {"card_no": card_no, "amount_fen": 4000, "request_no": f"C-{card_no}"})
        answers["window"] = (resp.status_code, resp.json())

    threads = [threading.Thread(target=patient), threading.Thread(target=window)]
    # Both requests read the HIS balance (6000) before either has taken anything: the worst interleaving.
    with card_orders_locked(rt, card_no) as waiting:
        for thread in threads:
            thread.start()
        wait_until(lambda: waiting() == 2, timeout=60, what="both requests at the card lock")
    for thread in threads:
        thread.join(60)

    accepted = {who: body for who, (status, body) in answers.items() if status == 201}
    refused = {who: (status, body.get("error")) for who, (status, body) in answers.items() if status != 201}
    assert len(answers) == 2 and accepted, answers
    assert set(refused.values()) <= {(409, "refund_exceeds_balance")}, answers
    settled = {who: wait_settled(rt, body["refund_request_no"]) for who, body in accepted.items()}
    succeeded = [view for view in settled.values() if view["status"] == "succeeded"]
    failed = [view for view in settled.values() if view["status"] != "succeeded"]
    assert len(succeeded) == 1, settled
    for view in failed:  # it passed the platform's check on a stale balance; the HIS refused to take it
        assert view["status"] == "failed", view
        assert {(p["status"], p["failure_code"]) for p in view["parts"]} == {("failed", "refund_exceeds_balance")}
        assert his_records(sandbox, view["refund_request_no"]) == []
    [winner] = succeeded
    assert [(r["kind"], r["amount_fen"]) for r in his_records(sandbox, winner["refund_request_no"])] == [
        ("refund_hold", 4000)]
    assert his_balance(sandbox, card_no) == 2000
    assert refunded_at_channels(rt, sandbox, card_no) == 4000


def test_refund_notification_twice_applies_once_and_a_forged_one_changes_nothing(platform, sandbox, rt):
    card, clients = card_with_topups(platform, sandbox, wechat=[2000], alipay=[])
    [order] = card["orders"]["wechat"]
    [attempt] = topup_attempts(rt, [order["order_no"]])
    merchant = wechat_merchant(sandbox)
    # The dispatcher is stopped, and the sandbox's own notification dropped, so this test decides what runs.
    with cron_stopped(platform, rt), sandbox_faults(sandbox, notify_drop_rate=1):
        refund = clients["wechat"].call("POST", f"/cards/{card['card_no']}/refunds", json={"amount_fen": 2000})
        [part] = refund["parts"]
        assert part["status"] == "pending", "the HIS took the amount off the card; the part may go"
        assert dispatch_only(rt, "refunds") >= 1
        wait_until(lambda: _part(rt, part["refund_no"]).status == "processing", timeout=60,
                   what="the refund to reach the channel")
        trade = wait_until(lambda: (t := trade_view(sandbox, "wechat", attempt.out_trade_no))["refunds"]
                           and t["refunds"][0]["refund_status"] == "SUCCESS" and t, timeout=30,
                           what="the channel to settle the refund")
        [channel_refund] = trade["refunds"]
        genuine = wechat_refund_notification(merchant, trade, channel_refund)

        forged = wechat_refund_notification(merchant, trade, channel_refund, key="x" * 32)
        assert "FAIL" in _post(platform, forged)
        flipped = genuine.replace(b"<req_info><![CDATA[", b"<req_info><![CDATA[A", 1)
        assert "FAIL" in _post(platform, flipped)
        assert _refund_inbox(rt, attempt.out_trade_no) == []
        assert _part(rt, part["refund_no"]).status == "processing"

        assert "SUCCESS" in _post(platform, genuine)
        assert "SUCCESS" in _post(platform, genuine)
        assert [row.status for row in _refund_inbox(rt, attempt.out_trade_no)] == ["received", "received"]
        assert dispatch_only(rt, "inbox") >= 2  # only the notifications: no query may settle the refund
        wait_until(lambda: {r.status for r in _refund_inbox(rt, attempt.out_trade_no)} == {"processed"},
                   timeout=60, what="both notifications processed")

        settled = _part(rt, part["refund_no"])
        assert settled.status == "succeeded" and settled.channel_refund_id == channel_refund["refund_id"]
        success_time = datetime.strptime(channel_refund["success_time"], "%Y-%m-%d %H:%M:%S")
        assert settled.succeeded_at == success_time.replace(tzinfo=SHANGHAI)
        assert settled.query_count == 1, "settled by the notification, not by a query"
        assert order_row(rt, order["order_no"]).refunded_fen == 2000
        assert order_row(rt, order["order_no"]).status == "refunded"
        assert _events_to(rt, order["order_no"], "refunded") == 1
        assert refund_request(rt, refund["refund_request_no"]).status == "succeeded"
        assert {r.error for r in _refund_inbox(rt, attempt.out_trade_no)} == {None}
    assert trade_view(sandbox, "wechat", attempt.out_trade_no)["refunded_fen"] == 2000
    assert [(r["kind"], r["amount_fen"]) for r in his_records(sandbox, refund["refund_request_no"])] == [
        ("refund_hold", 2000)]
    assert his_balance(sandbox, card["card_no"]) == 0


def _post(platform, body: bytes) -> str:
    resp = requests.post(f"{platform.url}{NOTIFY}", data=body, headers={"Content-Type": "text/xml"}, timeout=30)
    assert resp.status_code == 200
    return resp.text


def _part(rt, refund_no: str) -> Refund:
    with rt.db.session() as session:
        return session.scalar(select(Refund).where(Refund.refund_no == refund_no))


def _refund_inbox(rt, out_trade_no: str) -> list[NotificationInbox]:
    with rt.db.session() as session:
        return list(session.scalars(select(NotificationInbox).where(
            NotificationInbox.out_trade_no == out_trade_no, NotificationInbox.kind == "refund")
            .order_by(NotificationInbox.id)))


def _events_to(rt, order_no: str, status: str) -> int:
    with rt.db.session() as session:
        return session.scalar(select(func.count(OrderEvent.id)).join(Order, Order.id == OrderEvent.order_id)
                              .where(Order.order_no == order_no, OrderEvent.to_status == status))


def test_a_lost_refund_notification_is_made_good_by_querying(platform, sandbox, rt):
    card, clients = card_with_topups(platform, sandbox, wechat=[1200], alipay=[])
    [attempt] = topup_attempts(rt, [card["orders"]["wechat"][0]["order_no"]])
    with sandbox_faults(sandbox, notify_drop_rate=1):
        refund = clients["wechat"].call("POST", f"/cards/{card['card_no']}/refunds", json={"amount_fen": 1200})
        done = wait_settled(rt, refund["refund_request_no"])
    assert done["status"] == "succeeded"
    [part] = done["parts"]
    dropped = [e for e in requests.get(f"{sandbox.url}/sandbox/log", params={"limit": 2000}, timeout=10).json()
               if e["kind"] == "notify_dropped" and e.get("ref") == part["refund_no"]]
    assert len(dropped) == 1, "the channel's notification of this refund was lost"
    assert _refund_inbox(rt, attempt.out_trade_no) == []
    assert _part(rt, part["refund_no"]).query_count >= 2, "sent, then found settled by a query"
    assert trade_view(sandbox, "wechat", attempt.out_trade_no)["refunded_fen"] == 1200
    assert his_balance(sandbox, card["card_no"]) == 0


def test_his_failing_while_the_amount_is_taken_off_the_card(platform, sandbox, rt):
    card, clients = card_with_topups(platform, sandbox, wechat=[3000], alipay=[])
    card_no = card["card_no"]
    [attempt] = topup_attempts(rt, [card["orders"]["wechat"][0]["order_no"]])
    answer: dict = {}

    def patient():
        answer["refund"] = clients["wechat"].call("POST", f"/cards/{card_no}/refunds", json={"amount_fen": 3000})

    try:
        # The request reads the balance while the HIS works, and reaches the hold once the HIS has failed.
        thread = threading.Thread(target=patient)
        with card_orders_locked(rt, card_no) as waiting:
            thread.start()
            wait_until(lambda: waiting() == 1, timeout=60, what="the request at the card lock")
            set_faults(sandbox, his_error_rate=1)
        thread.join(60)
        refund = answer["refund"]
        assert refund["status"] == "processing" and {p["status"] for p in refund["parts"]} == {"waiting"}
        # The dispatcher sends the hold again, and again, while the HIS keeps failing.
        hold = wait_until(lambda: (w := request_writes(rt, refund["refund_request_no"])[0]).attempts >= 3 and w,
                          timeout=60, what="the hold to be retried")
        assert hold.kind == "refund_hold" and hold.status == "pending" and "503" in hold.last_error
        assert refund_request(rt, refund["refund_request_no"]).status == "processing"
        assert {p.status for p in refund_request(rt, refund["refund_request_no"]).parts} == {"waiting"}
        assert trade_view(sandbox, "wechat", attempt.out_trade_no)["refunds"] == [], "no money left"
        assert his_balance(sandbox, card_no) == 3000
    finally:
        requests.delete(f"{sandbox.url}/sandbox/faults", timeout=10).raise_for_status()

    done = wait_settled(rt, refund["refund_request_no"])
    assert done["status"] == "succeeded"
    assert [(r["kind"], r["amount_fen"]) for r in his_records(sandbox, refund["refund_request_no"])] == [
        ("refund_hold", 3000)]
    assert his_balance(sandbox, card_no) == 0
    assert trade_view(sandbox, "wechat", attempt.out_trade_no)["refunded_fen"] == 3000


def test_his_answer_lost_after_taking_the_amount_is_not_taken_twice(platform, sandbox, rt):
    card, clients = card_with_topups(platform, sandbox, wechat=[2500], alipay=[])
    card_no = card["card_no"]
    [attempt] = topup_attempts(rt, [card["orders"]["wechat"][0]["order_no"]])
    answer: dict = {}

    def patient():
        answer["refund"] = clients["wechat"].call("POST", f"/cards/{card_no}/refunds", json={"amount_fen": 2500})

    try:
        # The HIS takes the amount off the card, but its answer never arrives in time.
        thread = threading.Thread(target=patient)
        with card_orders_locked(rt, card_no) as waiting:
            thread.start()
            wait_until(lambda: waiting() == 1, timeout=60, what="the request at the card lock")
            set_faults(sandbox, his_timeout_rate=1)
        thread.join(60)
        refund = answer["refund"]
        assert refund["status"] == "processing" and {p["status"] for p in refund["parts"]} == {"waiting"}
        assert his_balance(sandbox, card_no) == 0, "the HIS did take it"
    finally:
        requests.delete(f"{sandbox.url}/sandbox/faults", timeout=10).raise_for_status()

    done = wait_settled(rt, refund["refund_request_no"], timeout=90)
    assert done["status"] == "succeeded"
    assert [(r["kind"], r["amount_fen"]) for r in his_records(sandbox, refund["refund_request_no"])] == [
        ("refund_hold", 2500)], "sent again under the same key: recorded once"
    [hold] = request_writes(rt, refund["refund_request_no"])
    assert hold.status == "sent" and hold.attempts >= 2
    assert his_balance(sandbox, card_no) == 0
    assert trade_view(sandbox, "wechat", attempt.out_trade_no)["refunded_fen"] == 2500


def test_a_part_the_channel_refuses_fails_and_its_amount_goes_back_on_the_card(platform, sandbox, rt):
    card, clients = card_with_topups(platform, sandbox, wechat=[3000, 2000], alipay=[])
    card_no = card["card_no"]
    older, newer = card["orders"]["wechat"]
    older_attempt, newer_attempt = topup_attempts(rt, [older["order_no"], newer["order_no"]])
    # Staff refunded 1 fen of the older payment at the WeChat merchant console, outside the platform:
    # the channel will refuse to refund all 3000 fen the platform believes are left.
    with rt.db.session() as session:
        channel = channel_for_account(rt, session, session.get(MerchantAccount, older_attempt.merchant_account_id))
    channel.refund(older_attempt.out_trade_no, f"CONSOLE{older_attempt.id}", 3000, 1, "counter", None)

    resp = his_signed_post(platform, sandbox, "/api/his/v1/refunds",
                           {"card_no": card_no, "amount_fen": 5000, "request_no": f"F-{card_no}"})
    assert resp.status_code == 201, resp.text
    request_no = resp.json()["refund_request_no"]
    done = wait_settled(rt, request_no)

    assert done["status"] == "partially_failed"
    ok, refused = done["parts"]
    assert (ok["order_no"], ok["amount_fen"], ok["status"]) == (newer["order_no"], 2000, "succeeded")
    assert (refused["order_no"], refused["amount_fen"], refused["status"]) == (older["order_no"], 3000, "failed")
    assert refused["failure_code"] == "ERROR" and "累计退款金额大于支付金额" in refused["failure_reason"]
    # The refused part's 3000 fen go back on the card, once.
    wait_until(lambda: [(w.kind, w.status) for w in request_writes(rt, request_no)] == [
        ("refund_hold", "sent"), ("refund_restore", "sent")], timeout=60, what="the refused part restored")
    assert [(r["kind"], r["amount_fen"]) for r in his_records(sandbox, request_no)] == [
        ("refund_hold", 5000), ("refund_restore", 3000)]
    assert his_balance(sandbox, card_no) == 3000
    assert trade_view(sandbox, "wechat", newer_attempt.out_trade_no)["refunded_fen"] == 2000
    assert trade_view(sandbox, "wechat", older_attempt.out_trade_no)["refunded_fen"] == 1
    assert (order_row(rt, older["order_no"]).status, order_row(rt, older["order_no"]).refunded_fen) == ("completed", 0)
    assert order_row(rt, newer["order_no"]).status == "refunded"
