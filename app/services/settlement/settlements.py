"""Settlement of checked statements in a batch: cash against an invoice, or a coupon of equal value.

One transaction per batch. The statements are locked and then moved to `settled`
by a conditional update that must hit every one of them, so of two concurrent
settlements of the same statement one wins and the other is refused whole.
"""
from __future__ import annotations

import re
import secrets
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.db.models import Clinic, Coupon, Settlement, Statement
from app.db.types import utcnow
from app.domain.errors import Conflict, InvalidInput, NotFound
from app.domain.settlement import (
    CASH,
    CHECKED,
    COMPLETED,
    COUPON,
    INVOICE_TYPES,
    PENDING_PAYMENT,
    SETTLED,
    SETTLEMENT_METHODS,
    SHANGHAI,
    CouponStatus,
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
                    coupon: Coupon | None) -> dict:
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
        coupon = None
        if method == COUPON:
            coupon = Coupon(settlement_id=settlement.id, clinic_id=clinic_id, code=f"CP{secrets.token_hex(8).upper()}",
                            value_fen=amount, issued_on=settled_on, expires_on=coupon_expiry(settled_on),
                            status=str(CouponStatus.ISSUED))
            session.add(coupon)
            session.flush()
        clinic_code = session.get(Clinic, clinic_id).code
        view = settlement_view(settlement, clinic_code, ids, coupon)
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
    codes = dict(session.execute(select(Clinic.id, Clinic.code)
                                 .where(Clinic.id.in_({s.clinic_id for s in settlements}))).all())
    return [settlement_view(s, codes[s.clinic_id], statement_ids[s.id], coupons.get(s.id)) for s in settlements]


def list_settlements(rt: Runtime, principal: StaffPrincipal, clinic_code: str | None = None, limit: int = 50,
                     offset: int = 0) -> dict:
    """The user's clinics' settlements, newest first: `{items, total, limit, offset}`."""
    with rt.db.session() as session:
        where = Settlement.clinic_id.in_(clinic_ids_in_scope(session, principal.clinic_ids, clinic_code))
        total = session.scalar(select(func.count()).select_from(Settlement).where(where))
        page = list(session.scalars(select(Settlement).where(where).order_by(Settlement.id.desc())
                                    .limit(limit).offset(offset)))
        return {"items": _views(session, page), "total": total, "limit": limit, "offset": offset}


def get_settlement(rt: Runtime, principal: StaffPrincipal, settlement_id: int) -> dict:
    with rt.db.session() as session:
        settlement = session.get(Settlement, settlement_id) if 0 < settlement_id <= MAX_ROW_ID else None
        if settlement is None or settlement.clinic_id not in principal.clinic_ids:
            raise NotFound(f"no settlement {settlement_id}", "settlement_not_found")
        return _views(session, [settlement])[0]
