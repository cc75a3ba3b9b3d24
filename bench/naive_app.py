"""The naive notification handler the benchmark compares the platform with.

Written as a first implementation in this codebase would be: per request, find the clinic's
merchant account, build its adapter, parse and verify the notification, check the payment
attempt and its amount, insert the inbox row, enqueue its processing on rq, and commit. It
reads the same HPAY_* settings and uses the same Runtime (engine, pool, Redis) as the platform.
"""
from __future__ import annotations

from flask import Flask, Response, request
from sqlalchemy import select

from app.channels.base import InvalidNotification, NotificationKind
from app.db.models import NotificationInbox, PaymentAttempt
from app.db.types import utcnow
from app.runtime import Runtime
from app.services.clinics.merchants import channel_for_account, get_clinic, primary_account
from config.settings import load_settings

SUCCESS = b"<xml><return_code><![CDATA[SUCCESS]]></return_code><return_msg><![CDATA[OK]]></return_msg></xml>"
FAIL = b"<xml><return_code><![CDATA[FAIL]]></return_code><return_msg><![CDATA[ERROR]]></return_msg></xml>"

rt = Runtime(load_settings())
app = Flask(__name__)


def _reply(body: bytes) -> Response:
    return Response(body, content_type="text/xml; charset=utf-8")


@app.post("/notify/wechat/<string:clinic_code>/pay")
def wechat_pay(clinic_code: str) -> Response:
    body = request.get_data()
    with rt.db.session() as session:
        clinic = get_clinic(session, clinic_code)
        account = primary_account(session, clinic.id, "wechat")
        adapter = channel_for_account(rt, session, account)
        try:
            note = adapter.parse_payment_notification(body, request.content_type)
        except InvalidNotification:
            return _reply(FAIL)
        attempt = session.scalar(select(PaymentAttempt).where(PaymentAttempt.out_trade_no == note.out_trade_no))
        if attempt is None or attempt.amount_fen != note.amount_fen:
            return _reply(FAIL)
        row = NotificationInbox(channel="wechat", kind=NotificationKind.PAYMENT.value, clinic_code=clinic_code,
                                merchant_account_id=account.id, out_trade_no=note.out_trade_no,
                                body=body.decode("utf-8"), content_type=request.content_type, status="received",
                                attempts=0, next_attempt_at=utcnow(), received_at=utcnow())
        session.add(row)
        session.flush()
        rt.enqueue("notifications", "workers.jobs.process_notification", row.id)
    return _reply(SUCCESS)
