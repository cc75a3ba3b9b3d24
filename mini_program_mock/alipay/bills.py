"""Bill downloads: the downloadurl.query method and the short-lived `/alipay/bills/<token>` link it hands out.

A bill for day D (Asia/Shanghai) lists payments completed and refunds made on D
up to the sandbox's now, so today's bill is the day so far; a later day has no
bill yet. The link lives 30 seconds of sandbox clock.
"""
from __future__ import annotations

from datetime import date

from flask import Blueprint, Response, request

from .bill_file import PAYMENT, REFUND, BillEntry, bill_archive
from .ledger import AlipayLedger
from .protocol import business_failure, invalid_parameter, service_fee_fen, success
from .state import GatewayCall, current_alipay

bp = Blueprint("sandbox_alipay_bills", __name__)


def bill_entries(ledger: AlipayLedger, app_id: str, day: date) -> list[BillEntry]:
    """The day's payment and refund rows of one app, in completion order."""
    entries = [
        BillEntry(trade_no=t["trade_no"], out_trade_no=t["out_trade_no"], business_type=PAYMENT, subject=t["subject"],
                  created_at=t["gmt_create"], finished_at=t["gmt_payment"], counterparty=t["buyer_id"],
                  amount_fen=t["total_fen"], out_request_no="", fee_fen=-service_fee_fen(t["total_fen"]))
        for t in ledger.payments_on(app_id, day.isoformat())
    ]
    entries += [
        BillEntry(trade_no=r["trade_no"], out_trade_no=r["out_trade_no"], business_type=REFUND, subject=r["subject"],
                  created_at=r["gmt_create"], finished_at=r["gmt_refund"][:19], counterparty=r["buyer_id"],
                  amount_fen=-r["refund_fen"], out_request_no=r["out_request_no"],
                  fee_fen=service_fee_fen(r["refund_fen"]))
        for r in ledger.refunds_on(app_id, day.isoformat())
    ]
    return sorted(entries, key=lambda e: (e.finished_at, e.trade_no, e.business_type))


def bill_download_url(call: GatewayCall) -> dict:
    if call.biz.get("bill_type") != "trade":
        raise invalid_parameter("bill_type仅支持trade")
    raw_date = call.biz.get("bill_date")
    try:
        day = date.fromisoformat(raw_date) if isinstance(raw_date, str) and len(raw_date) == 10 else None
    except ValueError:
        day = None
    if day is None:
        raise invalid_parameter("bill_date格式应为yyyy-MM-dd")
    world = call.sandbox.world
    if day > world.now_shanghai().date():
        raise business_failure("isp.bill_not_exist", "账单不存在")
    token = call.sandbox.ledger.issue_bill_token(call.app_id, day.isoformat())
    base = world.public_url or request.host_url.rstrip("/")
    return success(bill_download_url=f"{base}/alipay/bills/{token}")


@bp.get("/alipay/bills/<token>")
def download_bill(token: str):
    sandbox = current_alipay()
    grant = sandbox.ledger.live_bill_token(token)
    if grant is None:
        return Response("bill download link expired or unknown\n", status=404, mimetype="text/plain")
    merchant = sandbox.merchant(grant["app_id"])
    day = date.fromisoformat(grant["bill_date"])
    entries = bill_entries(sandbox.ledger, grant["app_id"], day)
    name, data = bill_archive(merchant["pid"], day, entries, sandbox.world.now_shanghai())
    sandbox.world.log("alipay_bill_download", app_id=grant["app_id"], bill_date=grant["bill_date"], rows=len(entries))
    return Response(data, mimetype="application/zip", headers={"Content-Disposition": f'attachment; filename="{name}"'})
