"""Attachments of a booking over the admin API: a panoramic X-ray uploaded, stored once by content hash and read
back as a download with its stored type; fake images (text or a PDF named .jpg) refused; the size limit, larger
than the app's own body limit for this route only; other clinics' files never reachable; redeeming an item that
requires an attachment."""
from __future__ import annotations

import io
import os
import random

import pytest
from PIL import Image
from sqlalchemy import select, update

from app.db.models import AuditEvent, Item, OrderAttachment
from tests.api.admin_helpers import ADMIN, confirmed_booking, drive_his_writes, other_clinic, staff_headers
from tests.api.test_admin_role_matrix import Call, Case

PANORAMIC = "panoramic_xray"


def xray_png(width: int = 1200, height: int = 500) -> bytes:
    image = Image.new("L", (width, height))
    image.putdata([(x * 7 + y * 3) % 256 for y in range(height) for x in range(width)])
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


def xray_jpeg() -> bytes:
    out = io.BytesIO()
    Image.new("L", (800, 400), 120).save(out, "JPEG", quality=80)
    return out.getvalue()


def _upload(client, headers, order_no: str, data: bytes, name: str = "xray.png", mime: str = "image/png",
            kind: str = PANORAMIC):
    return client.post(f"{ADMIN}/orders/{order_no}/attachments", headers=headers, content_type="multipart/form-data",
                       data={"kind": kind, "file": (io.BytesIO(data), name, mime)})


def _uploaded(w) -> tuple[str, int]:
    booked = w.booked_now()
    headers = _matrix_staff_headers(w)
    resp = _upload(w.client, headers, booked.order_no, xray_jpeg(), "x.jpg", "image/jpeg")
    assert resp.status_code == 201, resp.get_json()
    return booked.order_no, resp.get_json()["id"]


def _matrix_staff_headers(w):
    return staff_headers(w.client, w.rt, "staff")[0]


def _upload_call(order_no: str) -> Call:
    return Call("POST", f"/orders/{order_no}/attachments",
                {"content_type": "multipart/form-data",
                 "data": {"kind": PANORAMIC, "file": (io.BytesIO(xray_jpeg()), "x.jpg", "image/jpeg")}})


ROLE_MATRIX_CASES = {
    "admin_attachments.upload_attachment": Case(lambda w: _upload_call(w.booked_now().order_no),
                                                lambda w: _upload_call(w.other.order_no)),
    "admin_attachments.list_order_attachments": Case(
        lambda w: Call("GET", f"/orders/{w.booked_now().order_no}/attachments"),
                                    lambda w: Call("GET", f"/orders/{w.other.order_no}/attachments")),
    "admin_attachments.download": Case(
        lambda w: Call("GET", "/orders/{}/attachments/{}".format(*_uploaded(w))),
        lambda w: Call("GET", f"/orders/{w.other.order_no}/attachments/1")),
}


@pytest.fixture()
def desk(client, rt, demo_clinic):
    return staff_headers(client, rt, "staff")


def _store_files(rt) -> list[str]:
    root = rt.settings.ATTACHMENTS_DIR
    return [name for _d, _s, names in os.walk(root) for name in names]


def test_an_xray_is_stored_once_by_its_hash_and_read_back_as_a_download(client, sandbox, rt, desk):
    headers, username = desk
    booked = confirmed_booking(client, sandbox, rt, username)
    data = xray_png()

    first = _upload(client, headers, booked.order_no, data, "曲面断层.png")
    again = _upload(client, headers, booked.order_no, data, "copy.png", kind="xray")

    assert first.status_code == 201, first.get_json()
    body = first.get_json()
    assert (body["mime"], body["width"], body["height"], body["size_bytes"], body["uploaded_by"]) == (
        "image/png", 1200, 500, len(data), username)
    assert again.get_json()["sha256"] == body["sha256"]
    assert _store_files(rt).count(body["sha256"]) == 1
    download = client.get(f"{ADMIN}/orders/{booked.order_no}/attachments/{body['id']}", headers=headers)
    assert download.status_code == 200
    assert download.data == data
    assert download.headers["Content-Type"] == "image/png"
    assert download.headers["Content-Disposition"].startswith("attachment")
    assert download.headers["X-Content-Type-Options"] == "nosniff"
    listed = client.get(f"{ADMIN}/orders/{booked.order_no}/attachments", headers=headers).get_json()
    assert [(a["id"], a["kind"]) for a in listed] == [(body["id"], PANORAMIC), (again.get_json()["id"], "xray")]
    booking = client.get(f"{ADMIN}/bookings/{booked.order_no}", headers=headers).get_json()
    assert [a["sha256"] for a in booking["attachments"]] == [body["sha256"]] * 2
    with rt.db.session() as session:
        audit = session.scalar(select(AuditEvent).where(AuditEvent.action == "attachment_uploaded",
                                                        AuditEvent.target_id == booked.order_no))
    assert (audit.actor_name, audit.after["sha256"]) == (username, body["sha256"])


@pytest.mark.parametrize(("data", "name", "mime"), [
    (b"this is an X-ray, honestly\n" * 40, "xray.jpg", "image/jpeg"),
    (b"%PDF-1.7\n1 0 obj << /Type /Catalog /Pages 2 0 R >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n",
     "scan.jpg", "image/jpeg"),
    (b"<svg xmlns='http://www.w3.org/2000/svg' onload='alert(1)'/>", "x.png", "image/png"),
])
def test_a_fake_image_is_refused_whatever_it_is_named(client, sandbox, rt, desk, data, name, mime):
    headers, username = desk
    booked = confirmed_booking(client, sandbox, rt, username)

    resp = _upload(client, headers, booked.order_no, data, name, mime)

    assert (resp.status_code, resp.get_json()["error"]) == (422, "invalid_image")
    with rt.db.session() as session:
        assert session.scalars(select(OrderAttachment).where(OrderAttachment.order_id == booked.order_id)).all() == []


def test_the_size_limit_is_the_attachments_own_and_no_other_route_takes_more_than_2_mib(client, sandbox, rt, desk,
                                                                                        monkeypatch):
    headers, username = desk
    booked = confirmed_booking(client, sandbox, rt, username)
    rng = random.Random(7)
    noise = Image.frombytes("RGB", (1100, 1000), bytes(rng.getrandbits(8) for _ in range(1100 * 1000 * 3)))
    out = io.BytesIO()
    noise.save(out, "PNG")
    big = out.getvalue()
    assert 2 * 1024 * 1024 < len(big) < rt.settings.ATTACHMENT_MAX_BYTES

    accepted = _upload(client, headers, booked.order_no, big)
    elsewhere = client.post(f"{ADMIN}/orders/{booked.order_no}/refunds", headers=headers,
                            json={"amount_fen": 1, "reason": "x" * len(big)})
    monkeypatch.setattr(rt.settings, "ATTACHMENT_MAX_BYTES", len(big) - 1)
    refused = _upload(client, headers, booked.order_no, big)
    monkeypatch.setattr(rt.settings, "ATTACHMENT_MAX_BYTES", 200_000)
    far_too_big = _upload(client, headers, booked.order_no, big)

    assert accepted.status_code == 201, accepted.get_json()
    assert elsewhere.status_code == 413
    assert (refused.status_code, refused.get_json()["error"]) == (413, "attachment_too_large")
    assert (far_too_big.status_code, far_too_big.get_json()["error"]) == (413, "attachment_too_large")


def test_another_clinics_attachments_are_never_reached(client, sandbox, rt, desk):
    headers, username = desk
    booked = confirmed_booking(client, sandbox, rt, username)
    mine = _upload(client, headers, booked.order_no, xray_jpeg(), "x.jpg", "image/jpeg").get_json()
    elsewhere = other_clinic(rt)
    outsider, _ = staff_headers(client, rt, "staff", clinics=(elsewhere.code,))
    other_booking = confirmed_booking(client, sandbox, rt, username)

    outsiders_read = client.get(f"{ADMIN}/orders/{booked.order_no}/attachments/{mine['id']}", headers=outsider)
    outsiders_upload = _upload(client, outsider, booked.order_no, xray_jpeg(), "x.jpg", "image/jpeg")
    through_another_order = client.get(f"{ADMIN}/orders/{other_booking.order_no}/attachments/{mine['id']}",
                                       headers=headers)

    assert (outsiders_read.status_code, outsiders_read.get_json()["error"]) == (404, "order_not_found")
    assert outsiders_upload.status_code == 404
    assert (through_another_order.status_code, through_another_order.get_json()["error"]) == (
        404, "attachment_not_found")


def test_an_item_that_requires_an_attachment_is_redeemed_with_one_or_a_reason(client, sandbox, rt, desk):
    headers, username = desk
    admin, _ = staff_headers(client, rt, "admin")
    without = confirmed_booking(client, sandbox, rt, username)
    with_reason = confirmed_booking(client, sandbox, rt, username)
    with_file = confirmed_booking(client, sandbox, rt, username)
    for booked in (without, with_reason, with_file):
        patched = client.patch(f"{ADMIN}/items/{booked.item_id}", json={"requires_attachment": True}, headers=admin)
        assert patched.status_code == 200 and patched.get_json()["requires_attachment"] is True
        drive_his_writes(rt, booked.order_no)
    _upload(client, headers, with_file.order_no, xray_png(300, 200))

    refused = client.post(f"{ADMIN}/orders/{without.order_no}/redeem", json={}, headers=headers)
    blank = client.post(f"{ADMIN}/orders/{without.order_no}/redeem", json={"no_attachment_reason": "  "},
                        headers=headers)
    reasoned = client.post(f"{ADMIN}/orders/{with_reason.order_no}/redeem",
                           json={"no_attachment_reason": "设备故障 the X-ray machine is down"}, headers=headers)
    attached = client.post(f"{ADMIN}/orders/{with_file.order_no}/redeem", json={}, headers=headers)

    assert (refused.status_code, refused.get_json()["error"]) == (422, "attachment_required")
    assert (blank.status_code, blank.get_json()["error"]) == (422, "attachment_required")
    assert reasoned.status_code == 200 and attached.status_code == 200
    assert reasoned.get_json()["attachment_required"] is True
    with rt.db.session() as session:
        audits = {e.target_id: e.after for e in session.scalars(select(AuditEvent).where(
            AuditEvent.action == "booking_redeemed",
            AuditEvent.target_id.in_([with_reason.order_no, with_file.order_no])))}
        session.execute(update(Item).where(Item.id.in_([b.item_id for b in (without, with_reason, with_file)]))
                        .values(requires_attachment=False))
    assert audits[with_reason.order_no]["no_attachment_reason"] == "设备故障 the X-ray machine is down"
    assert (audits[with_file.order_no]["attachments"], audits[with_file.order_no]["no_attachment_reason"]) == (1,
                                                                                                             None)
