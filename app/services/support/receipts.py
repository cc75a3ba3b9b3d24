"""A payment receipt as a PDF: the hospital, the patient (masked), what was paid for (the item and appointment,
the card topped up, or the visit bills), the amount, the channel with its trade number and our out_trade_no,
when it was paid, and every refund.

Drawn with reportlab in its built-in CID font STSong-Light (Adobe-GB1, Simplified Chinese). The font ships
with reportlab itself as metrics only: no font file in the package or the image, a receipt of a few
kilobytes, and the glyphs come from the reader's own Chinese font, which Acrobat, browsers' PDF viewers,
Preview, WPS and the phones' viewers all have for this standard PDF font. The price is that the file does not
embed its glyphs; an embedded Noto/Source Han subset would take a 10-20 MB font package from PyPI that no
well-kept project publishes for Simplified Chinese. The text is extractable (tests read it back with pypdf).
"""
from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import datetime

from reportlab.lib.pagesizes import A5
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.cidfonts import UnicodeCIDFont
from reportlab.pdfgen import canvas
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.db.models import Clinic, Item, Order, Patient, PaymentAttempt, Refund
from app.db.types import utcnow
from app.domain.errors import Conflict
from app.domain.export_safety import mask_person_name
from app.domain.money import fen_to_yuan
from app.domain.refunds import RefundStatus
from app.services.common.staff_scope import SHANGHAI
from app.services.support.order_story import RECEIPTED
from config.logging import mask_phone

FONT = "STSong-Light"
pdfmetrics.registerFont(UnicodeCIDFont(FONT))
MIMETYPE = "application/pdf"
CHANNEL_NAMES = {"wechat": "微信支付", "alipay": "支付宝"}
TYPE_NAMES = {"booking": "预约", "topup": "就诊卡充值", "visit_bill": "门诊缴费"}


@dataclass(frozen=True)
class Receipt:
    filename: str
    content: bytes
    mimetype: str = MIMETYPE


def _time(value: datetime | None) -> str:
    return value.astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M:%S") if value else "-"


def _yuan(fen: int) -> str:
    return f"¥{fen_to_yuan(fen)}"


def receipt_lines(session: Session, order: Order) -> tuple[str, list[tuple[str, str]], list[tuple[str, str]]]:
    """(title, the fields, the refunds) of an order's receipt; Conflict when no money was ever received."""
    if order.status not in RECEIPTED or order.paid_attempt_id is None:
        raise Conflict("this order has received no money: there is no receipt", "no_receipt")
    clinic = session.get(Clinic, order.clinic_id)
    attempt = session.get(PaymentAttempt, order.paid_attempt_id)
    patient = session.get(Patient, order.patient_id) if order.patient_id else None
    fields = [("医院 Hospital", clinic.name), ("订单号 Order", order.order_no),
              ("类型 Type", TYPE_NAMES.get(order.type, order.type))]
    if patient is not None:
        fields.append(("患者 Patient", f"{mask_person_name(patient.name)} {mask_phone(patient.phone) or ''}".strip()))
    if order.item_id:
        fields.append(("项目 Item", session.get(Item, order.item_id).name))
    if order.appointment_at:
        fields.append(("预约时间 Appointment", _time(order.appointment_at)))
    if order.card_no:
        fields.append(("就诊卡 Card", order.card_no))
    if order.bill_ids:
        fields.append(("账单 Bills", ", ".join(order.bill_ids)))
    fields += [("金额 Amount", _yuan(order.amount_fen)),
               ("支付方式 Channel", CHANNEL_NAMES.get(attempt.channel, attempt.channel)),
               ("渠道交易号 Trade no.", attempt.channel_trade_no or "-"),
               ("商户订单号 Out trade no.", attempt.out_trade_no),
               ("支付时间 Paid at", _time(attempt.paid_at or order.paid_at))]
    refunds = [(f"{part.refund_no}  {_time(part.succeeded_at)}", _yuan(part.amount_fen))
               for part in session.scalars(select(Refund).where(Refund.order_id == order.id,
                                                                Refund.status == RefundStatus.SUCCEEDED)
                                           .order_by(Refund.id))]
    if refunds:
        refunds.append(("已退款合计 Refunded", _yuan(order.refunded_fen)))
    return f"{clinic.name} 支付凭证", fields, refunds


def render_receipt(session: Session, order: Order) -> Receipt:
    title, fields, refunds = receipt_lines(session, order)
    buffer = io.BytesIO()
    width, height = A5
    pdf = canvas.Canvas(buffer, pagesize=A5, invariant=1, pageCompression=1)
    pdf.setTitle(f"{title} {order.order_no}")
    pdf.setAuthor("Clinic payment platform")
    y = height - 20 * mm
    pdf.setFont(FONT, 15)
    pdf.drawCentredString(width / 2, y, title)
    pdf.setFont(FONT, 9)
    y -= 6 * mm
    pdf.drawCentredString(width / 2, y, "Payment receipt")
    y -= 10 * mm
    y = _table(pdf, fields, y, width)
    if refunds:
        y -= 4 * mm
        pdf.setFont(FONT, 11)
        pdf.drawString(15 * mm, y, "退款 Refunds")
        y -= 7 * mm
        y = _table(pdf, refunds, y, width)
    pdf.setFont(FONT, 8)
    pdf.drawString(15 * mm, 15 * mm, f"打印时间 Printed {_time(utcnow())}    本凭证仅证明付款，不作报销凭据")
    pdf.showPage()
    pdf.save()
    return Receipt(f"receipt-{order.order_no}.pdf", buffer.getvalue())


def _table(pdf: canvas.Canvas, rows: list[tuple[str, str]], y: float, width: float) -> float:
    for label, value in rows:
        pdf.setFont(FONT, 10)
        pdf.drawString(15 * mm, y, label)
        pdf.drawRightString(width - 15 * mm, y, value)
        pdf.setLineWidth(0.3)
        pdf.line(15 * mm, y - 2.5 * mm, width - 15 * mm, y - 2.5 * mm)
        y -= 8 * mm
    return y
