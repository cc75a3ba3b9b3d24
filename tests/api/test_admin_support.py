"""Support over HTTP: find a payment by any of its numbers, its order's whole story, asking the channel now and the
receipt, for staff and finance within their clinics; the mini-program's own inquiry and receipt."""
from __future__ import annotations

import codecs
import csv
import io
import secrets

import openpyxl
from pypdf import PdfReader
from sqlalchemy import select

from app.db.models import HisOutbox, PaymentAttempt
from tests.api.admin_helpers import (
    ADMIN,
    other_clinic,
    paid_booking,
    staff_headers,
)
from tests.api.order_helpers import MP, add_patient, booking, created, label, place_order, user
from tests.api.test_admin_role_matrix import Call, Case
from tests.e2e.helpers import fresh_slot

ROLE_MATRIX_CASES = {
    "admin_transactions.search_transactions": Case(
        lambda w: Call("GET", "/transactions", {"query_string": {"q": w.paid().order_no}}),
        lambda w: Call("GET", "/transactions", {"query_string": {"clinic_code": w.other.code}})),
    "admin_transactions.export": Case(
        lambda w: Call("GET", "/transactions/export", {"query_string": {"format": "csv", "q": w.paid().order_no}}),
        lambda w: Call("GET", "/transactions/export",
                       {"query_string": {"format": "csv", "clinic_code": w.other.code}})),
    "admin_order_story.get_story": Case(
        lambda w: Call("GET", f"/orders/{w.paid().order_no}"),
        lambda w: Call("GET", f"/orders/{w.other.order_no}")),
    "admin_order_story.inquire": Case(
        lambda w: Call("POST", f"/orders/{w.paid().order_no}/inquiry"),
        lambda w: Call("POST", f"/orders/{w.other.order_no}/inquiry")),
    "admin_order_story.receipt": Case(
        lambda w: Call("GET", f"/orders/{w.paid().order_no}/receipt"),
        lambda w: Call("GET", f"/orders/{w.other.order_no}/receipt")),
}


def _phone() -> str:
    return f"139{secrets.randbelow(10**8):08d}"


def _attempt(rt, order_no: str) -> PaymentAttempt:
    with rt.db.session() as session:
        return session.scalar(select(PaymentAttempt).where(PaymentAttempt.out_trade_no.startswith(order_no)))


def _search(client, headers, **query) -> list[dict]:
    resp = client.get(f"{ADMIN}/transactions", query_string=query, headers=headers)
    assert resp.status_code == 200, resp.get_json()
    return resp.get_json()["items"]


def test_staff_and_finance_find_a_payment_by_each_of_its_numbers(client, sandbox, rt, demo_clinic):
    phone = _phone()
    paid = paid_booking(client, sandbox, rt, channel="alipay", name="钱小七", phone=phone)
    attempt = _attempt(rt, paid.order_no)
    for role in ("staff", "finance"):
        headers, _ = staff_headers(client, rt, role)
        for q in (paid.order_no, attempt.out_trade_no, attempt.channel_trade_no, phone, phone[-4:]):
            rows = _search(client, headers, q=q)
            assert paid.order_no in {row["order_no"] for row in rows}, (role, q, rows)
        [row] = _search(client, headers, q=attempt.channel_trade_no)
        assert (row["kind"], row["order_type"], row["channel"], row["status"], row["clinic_code"]) == (
            "payment", "booking", "alipay", "paid", "demo")
        assert row["patient"] == {"id": paid.patient_id, "name": "钱小七", "phone": f"{phone[:3]}****{phone[-4:]}"}
        assert row["settled_at"] and row["amount_fen"] == 2000


def test_bad_searches_are_422_with_a_code(client, rt, demo_clinic):
    headers, _ = staff_headers(client, rt, "finance")
    for query, code in (({"q": "two words"}, "invalid_search"), ({"offset": 9990, "limit": 50}, "page_too_deep"),
                        ({"from": "2026-03-02", "to": "2026-03-01"}, "invalid_date_range")):
        resp = client.get(f"{ADMIN}/transactions", query_string=query, headers=headers)
        assert (resp.status_code, resp.get_json().get("error")) == (422, code), resp.get_json()
    for query in ({"status": "nonsense"}, {"kind": "coupon"}, {"from": "not-a-date"}, {"offset": 10001},
                  {"q": "x" * 65}):
        assert client.get(f"{ADMIN}/transactions", query_string=query, headers=headers).status_code == 422
    resp = client.get(f"{ADMIN}/transactions/export", query_string={"format": "pdf"}, headers=headers)
    assert resp.status_code == 422


def test_the_export_is_a_file_of_the_search_with_names_and_phones_masked(client, sandbox, rt, demo_clinic):
    phone = _phone()
    paid = paid_booking(client, sandbox, rt, name="孙大圣", phone=phone)
    attempt = _attempt(rt, paid.order_no)
    headers, _ = staff_headers(client, rt, "finance")
    resp = client.get(f"{ADMIN}/transactions/export", query_string={"format": "csv", "q": paid.order_no},
                      headers=headers)
    assert resp.status_code == 200 and resp.mimetype == "text/csv"
    assert "attachment" in resp.headers["Content-Disposition"] and ".csv" in resp.headers["Content-Disposition"]
    assert resp.data.startswith(codecs.BOM_UTF8)
    rows = list(csv.reader(io.StringIO(resp.data.decode("utf-8-sig"))))
    assert len(rows) == 2
    record = dict(zip(rows[0], rows[1], strict=True))
    assert (record["平台订单号"], record["商户订单号"], record["渠道交易号"], record["金额"]) == (
        paid.order_no, attempt.out_trade_no, attempt.channel_trade_no, "20.00")
    assert (record["患者"], record["患者手机号"]) == ("孙*圣", f"{phone[:3]}****{phone[-4:]}")
    assert phone not in resp.data.decode("utf-8-sig")

    xlsx = client.get(f"{ADMIN}/transactions/export", query_string={"format": "xlsx", "q": phone}, headers=headers)
    assert xlsx.status_code == 200
    sheet = openpyxl.load_workbook(io.BytesIO(xlsx.data)).active
    values = [[cell.value for cell in row] for row in sheet.iter_rows()]
    assert values[1][2] == paid.order_no and values[1][9] == 20.0


def _write_statuses(rt, order_id: int) -> list[tuple[str, str]]:
    with rt.db.session() as session:
        return [(w.kind, w.status) for w in session.scalars(
            select(HisOutbox).where(HisOutbox.order_id == order_id).order_by(HisOutbox.id))]


def test_the_story_of_a_booking_paid_by_query_shows_no_notification_and_its_his_write(client, sandbox, rt,
                                                                                      demo_clinic):
    paid = paid_booking(client, sandbox, rt)
    attempt = _attempt(rt, paid.order_no)
    headers, username = staff_headers(client, rt, "staff")
    # A worker of a platform running in the same session may deliver the registration at any moment, so the
    # story must show the write as the outbox held it just before or just after it was read.
    before = _write_statuses(rt, paid.order_id)
    resp = client.get(f"{ADMIN}/orders/{paid.order_no}", headers=headers)
    after = _write_statuses(rt, paid.order_id)
    assert resp.status_code == 200, resp.get_json()
    story = resp.get_json()
    assert (story["order"]["order_no"], story["order"]["status"], story["order"]["clinic_code"]) == (
        paid.order_no, "paid", "demo")
    assert [p["channel_trade_no"] for p in story["payments"]] == [attempt.channel_trade_no]
    assert story["notifications"] == []
    shown = [(w["kind"], w["status"]) for w in story["his_writes"]]
    assert [kind for kind, _ in before] == ["registration"] and shown in (before, after), (shown, before, after)
    assert ("order", "created", "paid", "paid via query") in {
        (e["record"], e["from_status"], e["to_status"], e["reason"]) for e in story["events"]}
    assert story["receipt_available"] is True

    asked = client.post(f"{ADMIN}/orders/{paid.order_no}/inquiry", headers=headers)
    assert asked.status_code == 200, asked.get_json()
    assert asked.get_json()["inquiry"]["outcome"] == "already_paid"
    assert [(a["actor_name"], a["action"]) for a in asked.get_json()["audit"]] == [(username, "order_inquiry")]

    receipt = client.get(f"{ADMIN}/orders/{paid.order_no}/receipt", headers=headers)
    assert receipt.status_code == 200 and receipt.mimetype == "application/pdf"
    text = "".join(page.extract_text() for page in PdfReader(io.BytesIO(receipt.data)).pages)
    assert attempt.channel_trade_no in text and paid.order_no in text and "微信支付" in text


def test_another_clinics_order_is_not_found_and_not_numbers_are_not_routed(client, rt, demo_clinic):
    other = other_clinic(rt)
    headers, _ = staff_headers(client, rt, "staff")
    for method, path in (("GET", f"/orders/{other.order_no}"), ("POST", f"/orders/{other.order_no}/inquiry"),
                         ("GET", f"/orders/{other.order_no}/receipt"), ("GET", "/orders/B2026/receipt"),
                         ("GET", "/orders/..%2Fetc")):
        resp = client.open(f"{ADMIN}{path}", method=method, headers=headers)
        assert resp.status_code == 404, (path, resp.status_code)
        assert other.order_no not in resp.get_data(as_text=True)
    assert _search(client, headers, q=other.order_no) == []
    assert other.code not in {row["clinic_code"] for row in _search(client, headers)}


# --- the mini-program ---------------------------------------------------------------------------------------------

def test_a_patient_asks_about_an_unpaid_order_and_it_stays_unpaid(client, sandbox, rt, demo_clinic):
    headers = user(client, sandbox, label("inquiry"))
    patient = add_patient(client, headers, "周八", _phone())
    item_id, slot_id = fresh_slot(rt, capacity=2)
    order = created(place_order(client, headers, booking(item_id, slot_id, patient["id"])))
    never = client.post(f"{MP}/orders/{order['order_no']}/inquiry", headers=headers)
    assert never.status_code == 200 and never.get_json()["inquiry"]["outcome"] == "no_payment"
    assert client.post(f"{MP}/orders/{order['order_no']}/pay", headers=headers).status_code == 200

    asked = client.post(f"{MP}/orders/{order['order_no']}/inquiry", headers=headers)

    assert asked.status_code == 200, asked.get_json()
    body = asked.get_json()
    assert (body["status"], body["inquiry"]["outcome"], body["inquiry"]["asked"]) == ("created", "not_paid", 1)
    receipt = client.get(f"{MP}/orders/{order['order_no']}/receipt", headers=headers)
    assert (receipt.status_code, receipt.get_json()["error"]) == (409, "no_receipt")


def test_a_patients_receipt_is_their_own_order_only(client, sandbox, rt, demo_clinic):
    phone = _phone()
    paid = paid_booking(client, sandbox, rt, name="吴九", phone=phone)
    attempt = _attempt(rt, paid.order_no)
    receipt = client.get(f"{MP}/orders/{paid.order_no}/receipt", headers=paid.mp_headers)
    assert receipt.status_code == 200 and receipt.mimetype == "application/pdf"
    assert f'receipt-{paid.order_no}.pdf' in receipt.headers["Content-Disposition"]
    text = "".join(page.extract_text() for page in PdfReader(io.BytesIO(receipt.data)).pages)
    assert attempt.channel_trade_no in text and f"{phone[:3]}****{phone[-4:]}" in text and phone not in text
    assert "吴*" in text and "吴九" not in text

    stranger = user(client, sandbox, label("stranger"))
    for method, path in (("GET", "receipt"), ("POST", "inquiry")):
        resp = client.open(f"{MP}/orders/{paid.order_no}/{path}", method=method, headers=stranger)
        assert (resp.status_code, resp.get_json()["error"]) == (404, "order_not_found")
    assert client.post(f"{MP}/orders/{paid.order_no}/inquiry").status_code == 401
