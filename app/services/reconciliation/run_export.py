"""A reconciliation run as a file finance can hand on: every line of the day with its outcome.

The run stores what differed (its discrepancies, each with status, decision and repair); the lines that
matched are not stored (a day may hold a million) but regenerated from our records of the run's day and scope,
the same records the run read (settled payments and refunds of the app by payment / refund time; for the HIS,
the writes sent that day), less those among its discrepancies. So the file lists the records as they are now:
a line repaired or settled since the run appears both as its discrepancy (with the repair) and, once settled,
as matched; a row of ours that the channel billed on the next day is listed in the day of our record.
Records stream from the database in batches into the file writer (app/services/common/table_export.py).
"""
from __future__ import annotations

import re
from collections.abc import Iterator

from sqlalchemy import select

from app.db.models import (
    Clinic,
    MerchantAccount,
    PaymentAttempt,
    ReconciliationClaim,
    ReconciliationDiscrepancy,
    ReconciliationRepair,
    Refund,
)
from app.runtime import Runtime
from app.services.common.principals import StaffPrincipal
from app.services.common.staff_scope import SHANGHAI
from app.services.common.table_export import TableFile, require_format, table_file
from app.services.reconciliation.findings import CHANNEL_SOURCES, day_bounds
from app.services.reconciliation.his_run import our_writes
from app.services.reconciliation.queries import scoped_run
from app.services.reconciliation.records import PAID, SUCCEEDED

READ_BATCH = 2000
MATCHED = "matched"
OUTCOME_NAMES = {
    MATCHED: "一致", "missing_on_platform": "平台缺单（渠道有）", "missing_at_channel": "渠道缺单（平台有）",
    "amount_mismatch": "金额不符", "status_mismatch": "状态不符", "missing_in_his": "HIS 缺记录",
    "unknown_in_his": "HIS 多记录",
}
STATUS_NAMES = {"open": "待处理", "held": "暂挂（等次日账单）", "repaired": "已自动修复", "resolved": "已处理"}
RESOLUTION_NAMES = {"trust_channel": "以渠道为准", "trust_platform": "以平台为准（已记索赔）", "ignore": "忽略"}
HEADERS = ["结果", "结果代码", "处理状态", "处理决定", "类别", "单号", "渠道交易号", "渠道金额", "平台金额",
           "渠道状态", "平台状态", "发生时间", "说明", "处理人", "备注", "自动修复", "索赔单"]
MONEY = [header in ("渠道金额", "平台金额") for header in HEADERS]


def _time(value) -> str:
    return value.astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M:%S") if value else ""


def export_run(rt: Runtime, principal: StaffPrincipal, run_id: int, file_format: str) -> TableFile:
    require_format(file_format)
    with rt.db.session() as session:
        run = scoped_run(session, principal, run_id)
        clinic_code = session.scalar(select(Clinic.code).where(Clinic.id == run.clinic_id))
        app_id = run.merchant_account_id and session.scalar(
            select(MerchantAccount.app_id).where(MerchantAccount.id == run.merchant_account_id))
        ticket = (run.id, run.source, run.clinic_id, run.merchant_account_id, run.business_date)
    safe = re.sub(r"[^A-Za-z0-9_-]", "_", f"{clinic_code}-{run.source}{'-' + app_id if app_id else ''}")
    return table_file(f"reconciliation-{safe}-{run.business_date.isoformat()}-run{run.id}", file_format, HEADERS,
                      MONEY, _rows(rt, *ticket))


def _rows(rt: Runtime, run_id: int, source: str, clinic_id: int, account_id: int | None, day) -> Iterator[list]:
    with rt.db.session() as session:
        differed: set[str] = set()
        result = session.execute(
            select(ReconciliationDiscrepancy, ReconciliationRepair.action, ReconciliationClaim.id)
            .outerjoin(ReconciliationRepair, ReconciliationRepair.id == ReconciliationDiscrepancy.repair_id)
            .outerjoin(ReconciliationClaim, ReconciliationClaim.discrepancy_id == ReconciliationDiscrepancy.id)
            .where(ReconciliationDiscrepancy.run_id == run_id).order_by(ReconciliationDiscrepancy.id)
            .execution_options(yield_per=READ_BATCH))
        for row, repair_action, claim_id in result:
            differed.add(row.ref)
            yield [OUTCOME_NAMES.get(row.type, row.type), row.type, STATUS_NAMES.get(row.status, row.status),
                   RESOLUTION_NAMES.get(row.resolution or "", row.resolution or ""), row.kind, row.ref,
                   row.channel_trade_no, row.their_amount_fen, row.our_amount_fen, row.their_status, row.our_status,
                   _time(row.occurred_at), row.detail, row.resolved_by, row.note, repair_action,
                   f"#{claim_id}" if claim_id else ""]
        matched = (_matched_channel_lines(session, account_id, day) if source in CHANNEL_SOURCES
                   else _matched_his_lines(session, clinic_id, day))
        for line in matched:
            if line[5] not in differed:
                yield line


def _matched(kind: str, ref: str, channel_trade_no: str | None, amount_fen: int | None, status: str,
             at) -> list:
    return [OUTCOME_NAMES[MATCHED], MATCHED, "", "", kind, ref, channel_trade_no, amount_fen, amount_fen, "",
            status, _time(at), "", "", "", "", ""]


def _matched_channel_lines(session, account_id: int, day) -> Iterator[list]:
    start, end = day_bounds(day)
    payments = session.execute(
        select(PaymentAttempt.out_trade_no, PaymentAttempt.channel_trade_no, PaymentAttempt.amount_fen,
               PaymentAttempt.paid_at)
        .where(PaymentAttempt.merchant_account_id == account_id, PaymentAttempt.paid_at >= start,
               PaymentAttempt.paid_at < end, PaymentAttempt.status == PAID)
        .order_by(PaymentAttempt.paid_at, PaymentAttempt.id).execution_options(yield_per=READ_BATCH))
    for out_trade_no, channel_trade_no, amount_fen, paid_at in payments:
        yield _matched("payment", out_trade_no, channel_trade_no, amount_fen, str(PAID), paid_at)
    refunds = session.execute(
        select(Refund.refund_no, Refund.channel_refund_id, Refund.amount_fen, Refund.succeeded_at)
        .join(PaymentAttempt, PaymentAttempt.id == Refund.payment_attempt_id)
        .where(PaymentAttempt.merchant_account_id == account_id, Refund.succeeded_at >= start,
               Refund.succeeded_at < end, Refund.status == SUCCEEDED)
        .order_by(Refund.succeeded_at, Refund.id).execution_options(yield_per=READ_BATCH))
    for refund_no, channel_refund_id, amount_fen, succeeded_at in refunds:
        yield _matched("refund", refund_no, channel_refund_id, amount_fen, str(SUCCEEDED), succeeded_at)


def _matched_his_lines(session, clinic_id: int, day) -> Iterator[list]:
    for write in our_writes(session, clinic_id, day).values():
        yield _matched(write.kind, write.key, None, write.amount_fen, write.status, None)

