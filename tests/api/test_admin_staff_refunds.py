"""Staff refunds over the admin API against the sandbox (its HIS and channels over HTTP): a partial refund after
redemption adjusts the HIS charge before the money goes back; a large one waits for a finance user other than
the requester; a booking not yet redeemed is refunded in full only by cancelling it."""
from __future__ import annotations

import secrets
from datetime import timedelta

import pytest
from sqlalchemy import select

from app.db.models import Order, Refund, RefundRequest
from app.db.types import utcnow
from app.domain import ids
from app.services.refunds import advance, request_staff_refund
from tests.api.admin_helpers import ADMIN, confirmed_booking, drive_his_writes, principal, staff_headers
from tests.api.test_admin_role_matrix import Call, Case
from tests.e2e.refund_helpers import his_records


def _awaiting(w) -> str:
    """A staff refund of a paid demo booking, asked for by the matrix's staff user, awaiting approval."""
    paid = w.paid()
    settings = w.rt.settings
    threshold, settings.REFUND_APPROVAL_FEN = settings.REFUND_APPROVAL_FEN, 0
    try:
        return request_staff_refund(w.rt, principal(w.rt, w.staff_username), paid.order_no, 500,
                                    "矩阵测试 matrix")["refund_request_no"]
    finally:
        settings.REFUND_APPROVAL_FEN = threshold


def _foreign(w) -> str:
    """A refund request of the other clinic's paid booking, awaiting approval."""
    with w.rt.db.session() as session:
        order = session.scalar(select(Order).where(Order.order_no == w.other.order_no))
        request = RefundRequest(refund_request_no=ids.new_business_no("refund", utcnow()), clinic_id=order.clinic_id,
                                origin="staff", order_id=order.id, amount_fen=100, status="awaiting_approval",
                                reason="别家 elsewhere")
        session.add(request)
        return request.refund_request_no


ROLE_MATRIX_CASES = {
    "admin_staff_refunds.get_refund_quote": Case(
        lambda w: Call("GET", f"/orders/{w.paid().order_no}/refund-quote"),
        lambda w: Call("GET", f"/orders/{w.other.order_no}/refund-quote")),
    "admin_staff_refunds.ask_for_refund": Case(
        lambda w: Call("POST", f"/orders/{w.paid().order_no}/refunds", {"json": {"amount_fen": 500, "reason": "矩阵"}}),
        lambda w: Call("POST", f"/orders/{w.other.order_no}/refunds", {"json": {"amount_fen": 500, "reason": "矩阵"}})),
    "admin_staff_refunds.list_refund_requests": Case(lambda w: Call("GET", "/refund-requests"), None),
    "admin_staff_refunds.get_refund_request": Case(
        lambda w: Call("GET", f"/refund-requests/{_awaiting(w)}"),
        lambda w: Call("GET", f"/refund-requests/{_foreign(w)}")),
    "admin_staff_refunds.approve_refund_request": Case(
        lambda w: Call("POST", f"/refund-requests/{_awaiting(w)}/approve", {"json": {"note": "矩阵"}}),
        lambda w: Call("POST", f"/refund-requests/{_foreign(w)}/approve", {"json": {}})),
    "admin_staff_refunds.reject_refund_request": Case(
        lambda w: Call("POST", f"/refund-requests/{_awaiting(w)}/reject", {"json": {"note": "矩阵"}}),
        lambda w: Call("POST", f"/refund-requests/{_foreign(w)}/reject", {"json": {"note": "矩阵"}})),
}


@pytest.fixture()
def desk(client, rt, demo_clinic):
    return staff_headers(client, rt, "staff")


def _settle_refunds(rt, request_no: str) -> list[str]:
    """What the refund jobs do: send and follow the request's parts until the sandbox channel settles them."""
    for _ in range(10):
        with rt.db.session() as session:
            part_ids = list(session.scalars(select(Refund.id).join(RefundRequest).where(
                RefundRequest.refund_request_no == request_no).order_by(Refund.id)))
        statuses = [advance(rt, part_id) for part_id in part_ids]
        if all(s in ("succeeded", "failed") for s in statuses):
            return statuses
    raise AssertionError(f"the parts of {request_no} did not settle: {statuses}")


def _redeemed(client, sandbox, rt, headers, username):
    booked = confirmed_booking(client, sandbox, rt, username)
    drive_his_writes(rt, booked.order_no)
    assert client.post(f"{ADMIN}/orders/{booked.order_no}/redeem", json={}, headers=headers).status_code == 200
    drive_his_writes(rt, booked.order_no)
    return booked


def test_a_partial_refund_after_redemption_adjusts_the_his_charge_then_goes_back(client, sandbox, rt, desk):
    headers, username = desk
    booked = _redeemed(client, sandbox, rt, headers, username)

    quote = client.get(f"{ADMIN}/orders/{booked.order_no}/refund-quote", headers=headers).get_json()
    resp = client.post(f"{ADMIN}/orders/{booked.order_no}/refunds", headers=headers,
                       json={"amount_fen": 800, "reason": "部分项目未做 part not done"})

    assert (quote["refundable_fen"], quote["max_refund_fen"], quote["his_write"], quote["refusal"]) == (
        2000, 2000, "charge_adjustment", None)
    assert resp.status_code == 201, resp.get_json()
    body = resp.get_json()
    assert (body["status"], body["order_status"], body["requested_by"]["username"]) == ("processing", "redeemed",
                                                                                       username)
    assert [(w["kind"], w["status"]) for w in body["his_writes"]] == [("charge_adjustment", "sent")]
    assert [(r["kind"], r["amount_fen"]) for r in his_records(sandbox, booked.order_no)
            if r["kind"] in ("charge", "charge_adjustment")] == [("charge", 2000), ("charge_adjustment", 800)]
    assert _settle_refunds(rt, body["refund_request_no"]) == ["succeeded"]
    story = client.get(f"{ADMIN}/orders/{booked.order_no}", headers=headers).get_json()
    assert (story["order"]["status"], story["order"]["refunded_fen"]) == ("redeemed", 800)
    assert [(r["origin"], r["status"]) for r in story["refunds"]] == [("staff", "succeeded")]
    assert "refund_requested" in [a["action"] for a in story["audit"]]


def test_a_large_refund_is_approved_by_another_finance_user_never_by_its_requester(client, sandbox, rt, desk,
                                                                                  monkeypatch):
    headers, username = desk
    monkeypatch.setattr(rt.settings, "REFUND_APPROVAL_FEN", 1000)
    booked = _redeemed(client, sandbox, rt, headers, username)
    maker, maker_name = staff_headers(client, rt, "finance")
    checker, checker_name = staff_headers(client, rt, "finance")

    asked = client.post(f"{ADMIN}/orders/{booked.order_no}/refunds", headers=maker,
                        json={"amount_fen": 1500, "reason": "大额退款 large"}).get_json()
    request_no = asked["refund_request_no"]
    own = client.post(f"{ADMIN}/refund-requests/{request_no}/approve", headers=maker, json={})
    own_reject = client.post(f"{ADMIN}/refund-requests/{request_no}/reject", headers=maker, json={"note": "撤回"})
    by_staff = client.post(f"{ADMIN}/refund-requests/{request_no}/approve", headers=headers, json={})
    listed = client.get(f"{ADMIN}/refund-requests", query_string={"status": "awaiting_approval"},
                        headers=checker).get_json()

    assert (asked["status"], asked["his_writes"], asked["parts"]) == ("awaiting_approval", [], [])
    assert (own.status_code, own.get_json()["error"]) == (403, "self_approval_forbidden")
    assert (own_reject.status_code, own_reject.get_json()["error"]) == (403, "self_approval_forbidden")
    assert (by_staff.status_code, by_staff.get_json()["error"]) == (403, "role_not_allowed")
    assert [(r["mine"], r["can_decide"]) for r in listed if r["refund_request_no"] == request_no] == [(False, True)]
    assert his_records(sandbox, booked.order_no)[-1]["kind"] == "charge"  # nothing told to the HIS yet

    approved = client.post(f"{ADMIN}/refund-requests/{request_no}/approve", headers=checker,
                           json={"note": "已核实 checked"})
    again = client.post(f"{ADMIN}/refund-requests/{request_no}/approve", headers=checker, json={})

    assert approved.status_code == 200, approved.get_json()
    assert (approved.get_json()["status"], approved.get_json()["decided_by"]["username"]) == ("processing",
                                                                                              checker_name)
    assert (again.status_code, again.get_json()["error"]) == (409, "refund_request_decided")
    assert _settle_refunds(rt, request_no) == ["succeeded"]
    assert [r["amount_fen"] for r in his_records(sandbox, booked.order_no) if r["kind"] == "charge_adjustment"] == [
        1500]
    assert maker_name != checker_name


def test_a_booking_not_yet_redeemed_is_refunded_in_full_only_by_cancelling_it(client, sandbox, rt, desk):
    headers, username = desk
    booked = confirmed_booking(client, sandbox, rt, username, appointment_at=None)

    whole = client.post(f"{ADMIN}/orders/{booked.order_no}/refunds", headers=headers,
                        json={"amount_fen": 2000, "reason": "全退 all"})
    part = client.post(f"{ADMIN}/orders/{booked.order_no}/refunds", headers=headers,
                       json={"amount_fen": 300, "reason": "优惠 discount"})

    assert (whole.status_code, whole.get_json()["error"]) == (409, "use_cancellation")
    assert "cancel" in whole.get_json()["message"]
    assert part.status_code == 201 and part.get_json()["his_writes"] == []
    assert _settle_refunds(rt, part.get_json()["refund_request_no"]) == ["succeeded"]
    with rt.db.session() as session:
        order = session.scalar(select(Order).where(Order.order_no == booked.order_no))
    assert (order.status, order.refunded_fen) == ("booked", 300)
    # The cancellation refunds what is left.
    assert client.post(f"{ADMIN}/bookings/{booked.order_no}/cancel", headers=headers,
                       json={"reason": "不来了"}).status_code == 200
    with rt.db.session() as session:
        cancelled = session.scalar(select(RefundRequest).where(RefundRequest.order_id == order.id,
                                                               RefundRequest.origin == "cancellation"))
    assert cancelled.amount_fen == 1700


def test_bad_refund_requests_are_refused_with_a_reason(client, sandbox, rt, desk):
    headers, username = desk
    booked = confirmed_booking(client, sandbox, rt, username, appointment_at=utcnow() + timedelta(days=1))
    cases = [({"amount_fen": 0, "reason": "零"}, 422), ({"amount_fen": 100}, 422),
             ({"amount_fen": "100", "reason": "字符串"}, 422), ({"amount_fen": 100, "reason": "x" * 201}, 422),
             ({"amount_fen": 1999 + 1, "reason": "多"}, 409), ({"amount_fen": 5000, "reason": "超额 over"}, 409)]
    for body, status in cases:
        resp = client.post(f"{ADMIN}/orders/{booked.order_no}/refunds", headers=headers, json=body)
        assert resp.status_code == status, (body, resp.get_json())
        assert resp.get_json()["error"]
    unknown = client.post(f"{ADMIN}/refund-requests/R{secrets.randbelow(10**20):020d}/approve",
                          headers=staff_headers(client, rt, "finance")[0], json={})
    assert (unknown.status_code, unknown.get_json()["error"]) == (404, "refund_request_not_found")


def test_one_idempotency_key_asks_once(client, sandbox, rt, desk):
    headers, username = desk
    booked = _redeemed(client, sandbox, rt, headers, username)
    key = {"Idempotency-Key": f"refund-{secrets.token_hex(6)}"}
    body = {"amount_fen": 200, "reason": "双击 double click"}

    first = client.post(f"{ADMIN}/orders/{booked.order_no}/refunds", headers={**headers, **key}, json=body)
    second = client.post(f"{ADMIN}/orders/{booked.order_no}/refunds", headers={**headers, **key}, json=body)

    assert first.status_code == second.status_code == 201
    assert first.get_json()["refund_request_no"] == second.get_json()["refund_request_no"]
    with rt.db.session() as session:
        order_id = session.scalar(select(Order.id).where(Order.order_no == booked.order_no))
        assert len(session.scalars(select(RefundRequest).where(RefundRequest.order_id == order_id)).all()) == 1
