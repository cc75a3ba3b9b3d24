"""Staff refunds and redemption attachments in the browser, against the platform's processes and the sandbox:
a partial refund after redemption from the order's story; a large refund asked for by one finance user, shown to
them as not theirs to approve, and approved by another on 待审批退款; a panoramic X-ray uploaded (with its preview)
in the redeem dialog of an item that requires one, and a fake image refused."""
from __future__ import annotations

import io
import secrets
import time
from datetime import UTC, datetime, timedelta

import pytest
import requests
from PIL import Image

from app.db.models import Item, ItemInventory, Slot
from mini_program_mock.patient import MiniProgramClient
from tests.api.mp_helpers import channel_user_id
from tests.browser.helpers import AdminApi, answer_box, open_menu, row, screenshot, success_toast
from tests.integration.reconciliation_support import OwnClinic, own_clinic


@pytest.fixture()
def clinic(rt, sandbox) -> OwnClinic:
    return own_clinic(rt, sandbox.url)


def _booking(platform, sandbox, rt, clinic: OwnClinic, price_fen: int = 2000,
             requires_attachment: bool = False) -> tuple[str, int]:
    """A booking paid on WeChat in the mini-program: (its order_no, its patient's id)."""
    phone = f"139{secrets.randbelow(10**8):08d}"
    with rt.db.session() as session:
        item = Item(clinic_id=clinic.id, code=f"UI{secrets.token_hex(4)}", name="全景片套餐", price_fen=price_fen,
                    requires_attachment=requires_attachment)
        session.add(item)
        session.flush()
        session.add_all([ItemInventory(item_id=item.id, channel=channel, quantity=100, reserved=0)
                         for channel in ("wechat", "alipay")])
        starts = (datetime.now(UTC) + timedelta(days=2)).replace(second=0, microsecond=0)
        slot = Slot(item_id=item.id, starts_at=starts, ends_at=starts + timedelta(hours=1), capacity=4, reserved=0)
        session.add(slot)
        session.flush()
        item_id, slot_id = item.id, slot.id
    mp = MiniProgramClient(platform.url, sandbox.url, "wechat", clinic_code=clinic.code, say=lambda _line: None)
    mp.login(channel_user_id("wechat", f"ui-{phone}"))
    patient = mp.call("POST", "/patients", json={"name": "李娜", "phone": phone, "relation": "self"})
    order = mp.call("POST", "/orders", json={"type": "booking", "item_id": item_id, "slot_id": slot_id,
                                             "patient_id": patient["id"], "channel": "wechat"})
    mp.pay(order["order_no"])
    mp.wait_for(order["order_no"], {"paid"})
    return order["order_no"], patient["id"]


def _confirmed_today(desk: AdminApi, order_no: str, patient_id: int) -> None:
    desk.post(f"/bookings/{order_no}/confirm", {"patient_id": patient_id,
                                                "appointment_at": datetime.now(UTC).replace(microsecond=0).isoformat()})


def _wait(api: AdminApi, path: str, done, timeout: float = 60.0) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = api.get(path)
        if done(found):
            return found
        time.sleep(0.5)
    raise AssertionError(f"{path} did not settle: {found}")


def _refund_in_dialog(page, yuan: str, reason: str) -> tuple[str, str]:
    page.get_by_test_id("story-refund").click()
    page.get_by_test_id("refund-refundable").wait_for()
    page.get_by_test_id("refund-amount").fill(yuan)
    page.get_by_test_id("refund-reason").fill(reason)
    hint = page.get_by_test_id("refund-approval-hint").inner_text()
    page.get_by_test_id("refund-submit").click()
    return hint, answer_box(page, "确认退款")


def test_staff_refund_part_of_a_redeemed_booking_from_its_story(console, platform, sandbox, rt, clinic, make_user):
    username, password = make_user("staff", (clinic.code,))
    desk = AdminApi(platform.url, username, password)
    order_no, patient_id = _booking(platform, sandbox, rt, clinic)
    _confirmed_today(desk, order_no, patient_id)
    desk.post(f"/orders/{order_no}/redeem", {"extra_charges": []})

    page = console.sign_in(username, password, f"orders/{order_no}")
    page.get_by_test_id("story-refund").wait_for()
    hint, asked = _refund_in_dialog(page, "5", "少做一项 one step skipped")
    success_toast(page, "退款已提交")

    assert "立即退回" in hint
    assert order_no in asked and "¥5.00" in asked
    request = desk.get("/refund-requests")[0]
    assert (request["order_no"], request["amount_fen"], request["requested_by"]["username"]) == (order_no, 500,
                                                                                                username)
    settled = _wait(desk, f"/refund-requests/{request['refund_request_no']}", lambda r: r["status"] == "succeeded")
    assert [w["kind"] for w in settled["his_writes"]] == ["charge_adjustment"]
    page.reload()
    row(page, "story-refund-requests", request["refund_request_no"]).get_by_text("已退款").wait_for()
    story = desk.get(f"/orders/{order_no}")
    assert (story["order"]["status"], story["order"]["refunded_fen"]) == ("redeemed", 500)
    screenshot(page, "staff-refund-after-redemption")


def test_a_large_refund_is_approved_by_another_finance_user_and_not_by_its_requester(console, platform, sandbox, rt,
                                                                                    clinic, make_user):
    maker_name, maker_password = make_user("finance", (clinic.code,))
    checker_name, checker_password = make_user("finance", (clinic.code,))
    desk_name, desk_password = make_user("staff", (clinic.code,))
    desk = AdminApi(platform.url, desk_name, desk_password)
    order_no, patient_id = _booking(platform, sandbox, rt, clinic, price_fen=80_000)
    _confirmed_today(desk, order_no, patient_id)
    desk.post(f"/orders/{order_no}/redeem", {"extra_charges": []})

    maker = console.sign_in(maker_name, maker_password, f"orders/{order_no}")
    maker.get_by_test_id("story-refund").wait_for()
    hint, _asked = _refund_in_dialog(maker, "600", "整单质量问题 quality complaint")
    success_toast(maker, "等待财务审批")
    assert "审批" in hint
    open_menu(maker, "待审批退款")
    mine = row(maker, "approvals-table", order_no)
    mine.get_by_test_id("approval-mine").wait_for()
    assert mine.get_by_test_id("approval-approve").count() == 0
    assert "需其他财务审批" in mine.inner_text()
    request_no = AdminApi(platform.url, maker_name, maker_password).get(
        "/refund-requests", status="awaiting_approval")[0]["refund_request_no"]
    own = AdminApi(platform.url, maker_name, maker_password).http.post(
        f"{platform.url}/api/admin/v1/refund-requests/{request_no}/approve", json={}, timeout=30)
    assert (own.status_code, own.json()["error"]) == (403, "self_approval_forbidden")
    screenshot(maker, "finance-approvals-own-request")

    checker = console.sign_in(checker_name, checker_password, "finance/refund-approvals")
    theirs = row(checker, "approvals-table", order_no)
    theirs.get_by_test_id("approval-approve").click()
    asked = answer_box(checker, "批准并退款")
    success_toast(checker, "已批准")

    assert maker_name in asked and "¥600.00" in asked
    theirs.wait_for(state="detached")
    done = _wait(desk, f"/refund-requests/{request_no}", lambda r: r["status"] == "succeeded")
    assert (done["decided_by"]["username"], done["amount_fen"]) == (checker_name, 60_000)


def _png() -> bytes:
    out = io.BytesIO()
    image = Image.new("L", (640, 320))
    image.putdata([(x + y) % 256 for y in range(320) for x in range(640)])
    image.save(out, "PNG")
    return out.getvalue()


def test_staff_upload_an_xray_in_the_redeem_dialog_and_a_fake_image_is_refused(console, platform, sandbox, rt,
                                                                              clinic, make_user):
    username, password = make_user("staff", (clinic.code,))
    desk = AdminApi(platform.url, username, password)
    order_no, patient_id = _booking(platform, sandbox, rt, clinic, requires_attachment=True)
    _confirmed_today(desk, order_no, patient_id)

    page = console.sign_in(username, password)
    open_menu(page, "今日预约")
    row(page, "bookings-table", order_no).get_by_test_id("action-redeem").click()
    page.get_by_test_id("redeem-attachment").wait_for()
    page.get_by_test_id("redeem-attachment-missing").wait_for()

    console.errors.allow_http_status(422)
    page.get_by_test_id("attachment-file").set_input_files(
        {"name": "xray.jpg", "mimeType": "image/jpeg", "buffer": b"not an X-ray at all, only text\n" * 20})
    page.get_by_test_id("attachment-upload").click()
    refusal = answer_box(page, "知道了")
    assert "not a JPEG or PNG" in refusal
    assert desk.get(f"/orders/{order_no}/attachments") == []

    page.get_by_test_id("attachment-file").set_input_files(
        {"name": "panoramic.png", "mimeType": "image/png", "buffer": _png()})
    page.get_by_test_id("attachment-preview").wait_for()
    screenshot(page, "staff-redeem-attachment-preview")
    page.get_by_test_id("attachment-upload").click()
    success_toast(page, "附件已上传")
    page.get_by_test_id("attachment-item").first.locator("img").wait_for()
    page.get_by_test_id("redeem-attachment-missing").wait_for(state="detached")
    page.get_by_test_id("redeem-submit").click()
    answer_box(page, "确认核销")
    success_toast(page, "已核销")

    [attachment] = desk.get(f"/orders/{order_no}/attachments")
    assert (attachment["mime"], attachment["width"], attachment["height"], attachment["uploaded_by"]) == (
        "image/png", 640, 320, username)
    assert desk.get(f"/bookings/{order_no}")["status"] == "redeemed"
    image = requests.get(f"{desk.url}/orders/{order_no}/attachments/{attachment['id']}",
                         headers=desk.http.headers, timeout=30)
    assert image.content == _png() and image.headers["X-Content-Type-Options"] == "nosniff"
