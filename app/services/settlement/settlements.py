"""Settlement of checked statements in a batch: cash against an invoice, or a coupon of equal value; then, for
cash, the clinic's invoice received and the operator's bank payout.

Who does what: the clinic's finance settles; the operator (platform-wide) records that the clinic's invoice
arrived and then the bank transfer (`paid`, with the bank's serial number), which the clinic sees. A payout
waits for the invoice: the platform pays against an invoice it holds, never ahead of one.

One transaction per batch. The statements are locked and then moved to `settled`
by a conditional update that must hit every one of them, so of two concurrent
settlements of the same statement one wins and the other is refused whole.
"""
from __future__ import annotations

import re
import secrets
from datetime import datetime, timedelta

from sqlalchemy import func, select, true
from sqlalchemy.orm import Session

from app.db.models import Clinic, Coupon, Settlement, SettlementInvoice, Statement
from app.db.types import utcnow
from app.domain.errors import Conflict, InvalidInput, NotFound
from app.domain.settlement import (
    CASH,
    CHECKED,
    COMPLETED,
    COUPON,
    INVOICE_TYPES,
    PAID,
    PENDING_PAYMENT,
    SETTLED,
    SETTLEMENT_METHODS,
    SHANGHAI,
    CouponStatus,
    InvoiceStatus,
    coupon_expiry,
    invoice_amount_fen,
    parse_settlement_months,
    require_settlement_window,
)
from app.runtime import Runtime
from app.services.common.audit import record_staff_event
from app.services.common.principals import StaffPrincipal
from app.services.common.staff_scope import MAX_ROW_ID, clinic_ids_in_scope
from app.services.common.status import set_status

MAX_STATEMENTS_PER_BATCH = 100
_ACCOUNT_NO = re.compile(r"[0-9]{8,32}")
_BANK_SERIAL_NO = re.compile(r"[A-Za-z0-9-]{6,64}")
_INVOICE_NO = re.compile(r"[A-Za-z0-9]{6,32}")
# How far another machine's clock may run ahead of ours before a "paid at" time counts as in the future.
PAID_AT_CLOCK_SLACK = timedelta(minutes=5)


def _bank_account(method: str, bank_account: dict | None, invoice_type: str | None) -> dict | None:
    if method == COUPON:
        if bank_account is not None or invoice_type is not None:
            raise InvalidInput("a coupon settlement takes no bank account and no invoice", "not_for_coupon")
        return None
    if invoice_type not in INVOICE_TYPES:
        raise InvalidInput(f"a cash settlement needs invoice_type, one of {', '.join(INVOICE_TYPES)}",
                           "invalid_invoice_type")
    account = {key: str((bank_account or {}).get(key) or "").strip() for key in ("name", "bank", "account_no")}
    missing = [key for key, value in account.items() if not value]
    if missing:
        raise InvalidInput("a cash settlement needs the clinic's complete bank account: "
                           f"{', '.join(missing)} missing", "bank_account_required")
    account["account_no"] = re.sub(r"[\s-]", "", account["account_no"])
    if not _ACCOUNT_NO.fullmatch(account["account_no"]):
        raise InvalidInput("account_no must be 8 to 32 digits", "invalid_bank_account")
    return account


def _masked_account_no(account_no: str) -> str:
    return "*" * (len(account_no) - 4) + account_no[-4:]


def settlement_view(settlement: Settlement, clinic_code: str, statement_ids: list[int],
                    coupon: Coupon | None, invoice: SettlementInvoice | None = None) -> dict:
    view = {
        "id": settlement.id, "clinic_code": clinic_code, "method": settlement.method, "status": settlement.status,
        "amount_fen": settlement.amount_fen, "statement_ids": statement_ids, "settled_on": settlement.settled_on,
        "created_by": settlement.created_by, "created_at": settlement.created_at,
    }
    if settlement.method == CASH:
        view["invoice_type"] = settlement.invoice_type
        view["invoice_amount_fen"] = settlement.invoice_amount_fen
        view["bank_account"] = {"name": settlement.bank_account_name, "bank": settlement.bank_name,
                                "account_no": _masked_account_no(settlement.bank_account_no)}
        view["payout"] = ({"bank_serial_no": settlement.bank_serial_no, "paid_at": settlement.paid_at,
                           "paid_by": settlement.paid_by} if settlement.paid_at else None)
    if invoice is not None:
        view["invoice"] = {"type": settlement.invoice_type, "title": invoice.title, "tax_no": invoice.tax_no,
                           "amount_fen": settlement.invoice_amount_fen, "status": invoice.status,
                           "invoice_no": invoice.invoice_no, "received_at": invoice.received_at,
                           "received_by": invoice.received_by}
    if coupon is not None:
        view["coupon"] = {"code": coupon.code, "value_fen": coupon.value_fen, "expires_on": coupon.expires_on}
    return view


def settle(rt: Runtime, principal: StaffPrincipal, statement_ids: list[int], method: str,
           bank_account: dict | None = None, invoice_type: str | None = None, now: datetime | None = None) -> dict:
    """Settle the checked statements `statement_ids` (one clinic's) together; refused whole or done whole."""
    now = now or utcnow()
    if method not in SETTLEMENT_METHODS:
        raise InvalidInput(f"method must be one of {', '.join(SETTLEMENT_METHODS)}", "invalid_method")
    ids = sorted(set(statement_ids))
    if not ids or len(ids) > MAX_STATEMENTS_PER_BATCH or not all(0 < i <= MAX_ROW_ID for i in ids):
        raise InvalidInput(f"statement_ids must list 1 to {MAX_STATEMENTS_PER_BATCH} statements",
                           "invalid_statement_ids")
    account = _bank_account(method, bank_account, invoice_type)
    require_settlement_window(now, parse_settlement_months(rt.settings.SETTLEMENT_MONTHS))
    settled_on = now.astimezone(SHANGHAI).date()
    with rt.db.session() as session:
        statements = _settleable(session, principal, ids)
        clinic_id = statements[0].clinic_id
        amount = sum(statement.total_fen for statement in statements)
        if amount <= 0:
            raise InvalidInput("these statements add up to nothing; there is nothing to settle", "nothing_to_settle")
        settlement = Settlement(
            clinic_id=clinic_id, method=method, status=PENDING_PAYMENT if method == CASH else COMPLETED,
            amount_fen=amount, invoice_type=invoice_type if method == CASH else None,
            invoice_amount_fen=invoice_amount_fen(amount, invoice_type) if method == CASH else None,
            bank_account_name=account and account["name"], bank_name=account and account["bank"],
            bank_account_no=account and account["account_no"], settled_on=settled_on, created_by=principal.username)
        session.add(settlement)
        session.flush()
        moved = sum(set_status(session, statement, SETTLED, reason=f"settled in settlement {settlement.id}",
                               actor=f"staff:{principal.username}", settlement_id=settlement.id, settled_at=now)
                    for statement in statements)
        if moved != len(ids):
            raise Conflict("another settlement took some of these statements first", "statement_already_settled")
        coupon = invoice = None
        if method == CASH:
            invoice = SettlementInvoice(settlement_id=settlement.id, title=rt.settings.INVOICE_TITLE,
                                        tax_no=rt.settings.INVOICE_TAX_NO, status=str(InvoiceStatus.AWAITING),
                                        created_at=now)
            session.add(invoice)
            session.flush()
        if method == COUPON:
            coupon = Coupon(settlement_id=settlement.id, clinic_id=clinic_id, code=f"CP{secrets.token_hex(8).upper()}",
                            value_fen=amount, issued_on=settled_on, expires_on=coupon_expiry(settled_on),
                            status=str(CouponStatus.UNUSED))
            session.add(coupon)
            session.flush()
        clinic_code = session.get(Clinic, clinic_id).code
        view = settlement_view(settlement, clinic_code, ids, coupon, invoice)
        for statement in statements:
            record_staff_event(session, principal, clinic_id, "statement.settled", "statement", statement.id,
                               before={"status": CHECKED}, after={"status": SETTLED, "settlement_id": settlement.id})
        record_staff_event(session, principal, clinic_id, "settlement.created", "settlement", settlement.id,
                           after=_audit_state(view))
        return view


def _audit_state(view: dict) -> dict:
    """The settlement as the audit trail keeps it: no full bank account number, dates as text."""
    state = {key: view[key] for key in ("method", "status", "amount_fen", "statement_ids")}
    state["settled_on"] = view["settled_on"].isoformat()
    for key in ("invoice_type", "invoice_amount_fen", "bank_account"):
        if key in view:
            state[key] = view[key]
    if "coupon" in view:
        state["coupon"] = {**view["coupon"], "expires_on": view["coupon"]["expires_on"].isoformat()}
    return state


def _settleable(session: Session, principal: StaffPrincipal, ids: list[int]) -> list[Statement]:
    """The statements, locked in id order, each of the user's clinics, checked, unsettled, all of one clinic."""
    statements = list(session.scalars(select(Statement).where(Statement.id.in_(ids))
                                      .order_by(Statement.id).with_for_update()))
    found = {statement.id for statement in statements if statement.clinic_id in principal.clinic_ids}
    missing = [statement_id for statement_id in ids if statement_id not in found]
    if missing:
        raise NotFound(f"no statements {', '.join(map(str, missing))}", "statement_not_found",
                       {"statement_ids": missing})
    settled = [statement.id for statement in statements if statement.status == SETTLED]
    if settled:
        raise Conflict(f"statements {', '.join(map(str, settled))} are settled already", "statement_already_settled",
                       {"statement_ids": settled})
    unchecked = [statement.id for statement in statements if statement.status != CHECKED]
    if unchecked:
        raise Conflict(f"statements {', '.join(map(str, unchecked))} are not checked; check them first",
                       "statement_not_checked", {"statement_ids": unchecked})
    if len({statement.clinic_id for statement in statements}) != 1:
        raise InvalidInput("a settlement covers one clinic's statements", "mixed_clinics")
    return statements


def _views(session: Session, settlements: list[Settlement]) -> list[dict]:
    ids = [settlement.id for settlement in settlements]
    statement_ids: dict[int, list[int]] = {settlement_id: [] for settlement_id in ids}
    for statement_id, settlement_id in session.execute(
            select(Statement.id, Statement.settlement_id).where(Statement.settlement_id.in_(ids))
            .order_by(Statement.id)):
        statement_ids[settlement_id].append(statement_id)
    coupons = {coupon.settlement_id: coupon
               for coupon in session.scalars(select(Coupon).where(Coupon.settlement_id.in_(ids)))}
    invoices = {invoice.settlement_id: invoice
                for invoice in session.scalars(select(SettlementInvoice)
                                               .where(SettlementInvoice.settlement_id.in_(ids)))}
    codes = dict(session.execute(select(Clinic.id, Clinic.code)
                                 .where(Clinic.id.in_({s.clinic_id for s in settlements}))).all())
    return [settlement_view(s, codes[s.clinic_id], statement_ids[s.id], coupons.get(s.id), invoices.get(s.id))
            for s in settlements]


def _visible(principal: StaffPrincipal):
    """The settlements this user sees: the operator (who pays them) every clinic's, anyone else their clinics'."""
    if principal.platform_wide:
        return true()
    return Settlement.clinic_id.in_(principal.clinic_ids)


def list_settlements(rt: Runtime, principal: StaffPrincipal, clinic_code: str | None = None, limit: int = 50,
                     offset: int = 0) -> dict:
    """The user's clinics' settlements, newest first: `{items, total, limit, offset}`."""
    with rt.db.session() as session:
        if principal.platform_wide:
            where = _visible(principal) if clinic_code is None else Settlement.clinic_id.in_(
                select(Clinic.id).where(Clinic.code == clinic_code))
        else:
            where = Settlement.clinic_id.in_(clinic_ids_in_scope(session, principal.clinic_ids, clinic_code))
        total = session.scalar(select(func.count()).select_from(Settlement).where(where))
        page = list(session.scalars(select(Settlement).where(where).order_by(Settlement.id.desc())
                                    .limit(limit).offset(offset)))
        return {"items": _views(session, page), "total": total, "limit": limit, "offset": offset}


def _scoped(session: Session, principal: StaffPrincipal, settlement_id: int, *, lock: bool = False) -> Settlement:
    settlement = None
    if 0 < settlement_id <= MAX_ROW_ID:
        query = select(Settlement).where(Settlement.id == settlement_id, _visible(principal))
        settlement = session.scalar(query.with_for_update() if lock else query)
    if settlement is None:
        raise NotFound(f"no settlement {settlement_id}", "settlement_not_found")
    return settlement


def get_settlement(rt: Runtime, principal: StaffPrincipal, settlement_id: int) -> dict:
    with rt.db.session() as session:
        return _views(session, [_scoped(session, principal, settlement_id)])[0]


def record_invoice_received(rt: Runtime, principal: StaffPrincipal, settlement_id: int, invoice_no: str) -> dict:
    """The operator has the clinic's invoice for a cash settlement, numbered `invoice_no`. Once only."""
    invoice_no = (invoice_no or "").strip()
    if not _INVOICE_NO.fullmatch(invoice_no):
        raise InvalidInput("invoice_no must be the invoice's number: 6 to 32 letters or digits", "invalid_invoice_no")
    now = utcnow()
    with rt.db.session() as session:
        settlement = _scoped(session, principal, settlement_id, lock=True)
        invoice = session.scalar(select(SettlementInvoice).where(SettlementInvoice.settlement_id == settlement.id))
        if invoice is None:
            raise Conflict("a coupon settlement has no invoice", "no_invoice")
        if invoice.status != InvoiceStatus.AWAITING or not set_status(
                session, invoice, InvoiceStatus.RECEIVED, reason=f"invoice {invoice_no} received",
                actor=f"staff:{principal.username}", invoice_no=invoice_no, received_at=now,
                received_by=principal.username):
            raise Conflict(f"the invoice of settlement {settlement.id} was recorded as received already",
                           "invoice_already_received")
        record_staff_event(session, principal, settlement.clinic_id, "settlement.invoice_received", "settlement",
                           settlement.id, before={"invoice_status": str(InvoiceStatus.AWAITING)},
                           after={"invoice_status": str(InvoiceStatus.RECEIVED), "invoice_no": invoice_no})
        return _views(session, [settlement])[0]


def record_payout(rt: Runtime, principal: StaffPrincipal, settlement_id: int, bank_serial_no: str,
                  paid_at: datetime, now: datetime | None = None) -> dict:
    """The operator paid a cash settlement by bank transfer (`bank_serial_no`, at `paid_at`): it is `paid`.
    Only after its invoice is received; once only."""
    now = now or utcnow()
    bank_serial_no = (bank_serial_no or "").strip()
    if not _BANK_SERIAL_NO.fullmatch(bank_serial_no):
        raise InvalidInput("bank_serial_no must be the bank's transaction serial number: 6 to 64 letters, digits or -",
                           "invalid_bank_serial_no")
    if paid_at.tzinfo is None or paid_at > now + PAID_AT_CLOCK_SLACK:
        raise InvalidInput("paid_at must be a time with its offset, not in the future", "invalid_paid_at")
    with rt.db.session() as session:
        settlement = _scoped(session, principal, settlement_id, lock=True)
        if settlement.method != CASH:
            raise Conflict("a coupon settlement is not paid out", "not_a_cash_settlement")
        if settlement.status == PAID:
            raise Conflict(f"settlement {settlement.id} was paid already (bank serial no. {settlement.bank_serial_no})",
                           "settlement_already_paid")
        if paid_at < settlement.created_at - PAID_AT_CLOCK_SLACK:
            raise InvalidInput("paid_at is before the settlement was made", "invalid_paid_at")
        invoice = session.scalar(select(SettlementInvoice).where(SettlementInvoice.settlement_id == settlement.id))
        if invoice is None or invoice.status != InvoiceStatus.RECEIVED:
            raise Conflict("the clinic's invoice has not been received yet; record it first", "invoice_not_received")
        if not set_status(session, settlement, PAID, reason=f"paid out, bank serial no. {bank_serial_no}",
                          actor=f"staff:{principal.username}", bank_serial_no=bank_serial_no, paid_at=paid_at,
                          paid_by=principal.username):
            raise Conflict(f"settlement {settlement.id} was paid meanwhile", "settlement_already_paid")
        record_staff_event(session, principal, settlement.clinic_id, "settlement.paid", "settlement", settlement.id,
                           before={"status": str(PENDING_PAYMENT)},
                           after={"status": str(PAID), "bank_serial_no": bank_serial_no,
                                  "paid_at": paid_at.isoformat(), "amount_fen": settlement.amount_fen})
        return _views(session, [settlement])[0]
