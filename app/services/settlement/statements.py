"""Monthly statements of redeemed channel orders: generate (or regenerate), read, check.

A statement covers the platform-collected orders (paid through a platform channel app) of one channel that
were redeemed in the month, one line per order at the purchase price the order kept when it was made; its total
is what the platform owes the clinic.

A statement is a snapshot: generation copies each redeemed order of the month
into a line (patient masked), so what finance checked and exported stays what
gets settled. Regenerating replaces the lines of an unsettled statement and
sends it back to `generated` (its content may have changed, so it must be
checked again); a settled statement is final.
"""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, func, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.db.models import Clinic, Item, MerchantAccount, Order, Patient, PaymentAttempt, Slot, Statement, StatementLine
from app.db.types import utcnow
from app.domain.errors import Conflict, InvalidInput, NotFound
from app.domain.export_safety import mask_person_name
from app.domain.orders import BOOKING, REDEEMED
from app.domain.settlement import (
    CHECKED,
    GENERATED,
    SETTLED,
    STATEMENT_STATUSES,
    ended_month,
    format_month,
    month_bounds_utc,
    parse_month,
)
from app.runtime import Runtime
from app.services.clinics import CHANNELS, PLATFORM
from app.services.common.audit import record_staff_event
from app.services.common.principals import StaffPrincipal
from app.services.common.staff_scope import MAX_ROW_ID, clinic_ids_in_scope, one_clinic
from app.services.common.status import set_status, update_while
from app.services.settlement.channel_orders import statement_differences
from config.logging import mask_phone

GENERATION_BATCH = 500


def statement_view(statement: Statement, clinic_code: str) -> dict:
    return {
        "id": statement.id, "clinic_code": clinic_code, "month": statement.month, "channel": statement.channel,
        "status": statement.status, "line_count": statement.line_count, "total_fen": statement.total_fen,
        "generated_at": statement.generated_at, "generated_by": statement.generated_by,
        "checked_at": statement.checked_at, "checked_by": statement.checked_by,
        "settlement_id": statement.settlement_id, "settled_at": statement.settled_at,
    }


def _audit_state(statement: Statement) -> dict:
    return {"status": statement.status, "line_count": statement.line_count, "total_fen": statement.total_fen}


def scoped_statement(session: Session, principal: StaffPrincipal, statement_id: int) -> tuple[Statement, str]:
    """The statement and its clinic code; another clinic's statement does not exist for this user."""
    row = None
    if 0 < statement_id <= MAX_ROW_ID:
        row = session.execute(select(Statement, Clinic.code).join(Clinic, Clinic.id == Statement.clinic_id)
                              .where(Statement.id == statement_id,
                                     Statement.clinic_id.in_(principal.clinic_ids))).first()
    if row is None:
        raise NotFound(f"no statement {statement_id} in your clinics", "statement_not_found")
    return row[0], row[1]


def generate_statement(rt: Runtime, principal: StaffPrincipal, month: str, channel: str,
                       clinic_code: str | None = None, now: datetime | None = None) -> dict:
    """The clinic's statement of `channel` for `month` (a month that has ended), made afresh from its orders."""
    now = now or utcnow()
    month_start = ended_month(month, now)
    if channel not in CHANNELS:
        raise InvalidInput(f"channel must be one of {', '.join(CHANNELS)}", "invalid_channel")
    with rt.db.session() as session:
        clinic = one_clinic(session, principal.clinic_ids, clinic_code)
        statement, before = _claim(session, principal, clinic.id, format_month(month_start), channel, now)
        statement.line_count, statement.total_fen = _copy_lines(session, statement, clinic.id, channel, month_start)
        session.flush()
        view = statement_view(statement, clinic.code)
        record_staff_event(session, principal, clinic.id, "statement.regenerated" if before else "statement.generated",
                           "statement", statement.id, before=before, after=_audit_state(statement))
        return view


def _claim(session: Session, principal: StaffPrincipal, clinic_id: int, month: str, channel: str,
           now: datetime) -> tuple[Statement, dict | None]:
    """A new statement row, or the existing unsettled one emptied for regeneration (with its state before)."""
    def existing() -> Statement | None:
        return session.scalar(select(Statement).where(Statement.clinic_id == clinic_id, Statement.channel == channel,
                                                      Statement.month == month).with_for_update())

    statement = existing()
    if statement is None:
        try:
            with session.begin_nested():
                statement = Statement(clinic_id=clinic_id, month=month, channel=channel, status=GENERATED,
                                      line_count=0, total_fen=0, generated_at=now, generated_by=principal.username)
                session.add(statement)
            return statement, None
        except IntegrityError:
            # Another generation of the same statement committed first; regenerate that one.
            statement = existing()
    before = _audit_state(statement)
    if statement.status == SETTLED:
        raise Conflict(f"the {channel} statement of {month} is settled; it cannot be regenerated", "statement_settled")
    fresh = {"generated_at": now, "generated_by": principal.username, "checked_at": None, "checked_by": None}
    if statement.status == CHECKED:
        # Its content may change: it must be checked again.
        set_status(session, statement, GENERATED, reason="regenerated", actor=f"staff:{principal.username}", **fresh)
    else:
        update_while(session, statement, GENERATED, **fresh)
    session.execute(delete(StatementLine).where(StatementLine.statement_id == statement.id))
    return statement, before


def _copy_lines(session: Session, statement: Statement, clinic_id: int, channel: str, month_start) -> tuple[int, int]:
    start, end = month_bounds_utc(month_start)
    query = (
        select(Order.id, Order.order_no, Order.amount_fen, Order.purchase_price_fen, Order.redeemed_at,
               func.coalesce(Order.appointment_at, Slot.starts_at).label("appointment_at"),
               PaymentAttempt.out_trade_no, PaymentAttempt.channel_trade_no,
               Patient.name.label("patient_name"), Patient.phone.label("patient_phone"),
               Item.name.label("item_name"))
        .join(PaymentAttempt, PaymentAttempt.id == Order.paid_attempt_id)
        .join(MerchantAccount, MerchantAccount.id == PaymentAttempt.merchant_account_id)
        .outerjoin(Patient, Patient.id == Order.patient_id)
        .outerjoin(Item, Item.id == Order.item_id)
        .outerjoin(Slot, Slot.id == Order.slot_id)
        .where(Order.clinic_id == clinic_id, Order.type == BOOKING, Order.status == REDEEMED,
               Order.channel == channel, Order.redeemed_at >= start, Order.redeemed_at < end,
               MerchantAccount.owner == PLATFORM, Order.purchase_price_fen.is_not(None))
        .order_by(Order.id)
        .limit(GENERATION_BATCH)
    )
    count = total = 0
    last_id = 0
    while True:
        rows = session.execute(query.where(Order.id > last_id)).all()
        if not rows:
            return count, total
        session.execute(insert(StatementLine), [{
            "statement_id": statement.id, "order_id": row.id, "order_no": row.order_no,
            "out_trade_no": row.out_trade_no, "channel_trade_no": row.channel_trade_no,
            "patient_name": mask_person_name(row.patient_name), "patient_phone": mask_phone(row.patient_phone),
            "item_name": row.item_name or "", "appointment_at": row.appointment_at, "redeemed_at": row.redeemed_at,
            "channel": channel, "purchase_price_fen": row.purchase_price_fen, "amount_fen": row.amount_fen,
        } for row in rows])
        count += len(rows)
        total += sum(row.purchase_price_fen for row in rows)
        last_id = rows[-1].id


def list_statements(rt: Runtime, principal: StaffPrincipal, clinic_code: str | None = None, month: str | None = None,
                    channel: str | None = None, status: str | None = None, limit: int = 50,
                    offset: int = 0) -> dict:
    """The user's clinics' statements, newest month first: `{items, total, limit, offset}`."""
    with rt.db.session() as session:
        conditions = [Statement.clinic_id.in_(clinic_ids_in_scope(session, principal.clinic_ids, clinic_code))]
        if month is not None:
            conditions.append(Statement.month == format_month(parse_month(month)))
        if channel is not None:
            conditions.append(Statement.channel == channel)
        if status is not None:
            if status not in STATEMENT_STATUSES:
                raise InvalidInput(f"status must be one of {', '.join(STATEMENT_STATUSES)}", "invalid_status")
            conditions.append(Statement.status == status)
        total = session.scalar(select(func.count()).select_from(Statement).where(*conditions))
        rows = session.execute(select(Statement, Clinic.code).join(Clinic, Clinic.id == Statement.clinic_id)
                               .where(*conditions).order_by(Statement.month.desc(), Statement.id.desc())
                               .limit(limit).offset(offset))
        return {"items": [statement_view(statement, code) for statement, code in rows], "total": total,
                "limit": limit, "offset": offset}


def get_statement(rt: Runtime, principal: StaffPrincipal, statement_id: int) -> dict:
    with rt.db.session() as session:
        return statement_view(*scoped_statement(session, principal, statement_id))


def line_view(line: StatementLine) -> dict:
    return {
        "order_no": line.order_no, "out_trade_no": line.out_trade_no, "channel_trade_no": line.channel_trade_no,
        "patient_name": line.patient_name, "patient_phone": line.patient_phone, "item_name": line.item_name,
        "appointment_at": line.appointment_at, "redeemed_at": line.redeemed_at, "channel": line.channel,
        "purchase_price_fen": line.purchase_price_fen, "amount_fen": line.amount_fen,
    }


def list_lines(rt: Runtime, principal: StaffPrincipal, statement_id: int, limit: int = 100,
               offset: int = 0) -> dict:
    """The statement's lines in redemption order: `{items, total, limit, offset}`."""
    with rt.db.session() as session:
        statement, _ = scoped_statement(session, principal, statement_id)
        lines = session.scalars(select(StatementLine).where(StatementLine.statement_id == statement_id)
                                .order_by(StatementLine.redeemed_at, StatementLine.id).limit(limit).offset(offset))
        return {"items": [line_view(line) for line in lines], "total": statement.line_count, "limit": limit,
                "offset": offset}


def check_statement(rt: Runtime, principal: StaffPrincipal, statement_id: int) -> dict:
    """Mark the statement checked (核对) when every line agrees with the clinic's own report of the month (same
    channel order numbers, same purchase prices); otherwise refuse with the differences. Checking twice changes
    nothing."""
    now = utcnow()
    with rt.db.session() as session:
        statement, clinic_code = scoped_statement(session, principal, statement_id)
        if statement.status == GENERATED:
            differences, count = statement_differences(session, statement)
            if count:
                raise Conflict(f"the statement differs from the clinic's report in {count} line(s); regenerate it "
                               "or find out why", "statement_differs",
                               {"differences": differences, "difference_count": count})
        checked = statement.status == GENERATED and set_status(
            session, statement, CHECKED, reason="checked against the report", actor=f"staff:{principal.username}",
            checked_at=now, checked_by=principal.username)
        session.refresh(statement)
        if checked:
            record_staff_event(session, principal, statement.clinic_id, "statement.checked", "statement", statement.id,
                               before={"status": GENERATED}, after=_audit_state(statement))
        elif statement.status == SETTLED:
            raise Conflict("the statement is settled already", "statement_settled")
        return statement_view(statement, clinic_code)
