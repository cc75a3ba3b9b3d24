"""The transaction search: every payment and refund of the user's clinics, of every order type, in one list.

A query is two selects, one over payment attempts and one over refunds, each joined to its order (the clinic
scope, the order number and type, the card and the patient) and merged newest first with UNION ALL. What was
typed (`q`) is recognised by its shape (app.domain.transaction_search) and becomes sets of ids found through
indexed equalities: orders (an order number, the patients with that phone or last 4 digits, a card), payment
attempts (an out_trade_no, a channel trade number) and refunds (a refund number, a refund request, a channel
refund id). Each branch keeps the rows whose id is in its set, so PostgreSQL starts from those few rows and
never reads the year around them; a search without `q` walks the (created_at, id) index of each table from
the newest row. bench/transactions_search.py measures every shape on 2-3 million rows.

Paging is by offset, up to `MAX_PAGE_DEPTH` rows deep. Each branch is cut at offset + limit before the merge,
so a page costs at most that many rows per table whatever the table's size, and the total is counted up to
the same depth (`total_exact` false beyond it). Keyset paging would reach deeper pages at the same cost, but
a person answering a phone call narrows the search rather than reading page 500, and offset paging keeps the
console's pager (jump to a page, page size) and a total.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date, datetime, time, timedelta

from sqlalchemy import Select, func, literal, null, select, union, union_all
from sqlalchemy.orm import Session

from app.db.models import Card, Clinic, Order, Patient, PaymentAttempt, Refund, RefundRequest
from app.domain.errors import InvalidInput
from app.domain.payments import PaymentStatus
from app.domain.refunds import RefundStatus
from app.domain.transaction_search import SearchShape, SearchTerm, recognise
from app.runtime import Runtime
from app.services.common.staff_scope import SHANGHAI, clinic_ids_in_scope
from app.services.support.channel_lookup import find_at_channel
from config.logging import mask_phone

PAYMENT, REFUND = "payment", "refund"
KINDS = (PAYMENT, REFUND)
PAYMENT_STATUSES = tuple(str(s) for s in PaymentStatus)
REFUND_STATUSES = tuple(str(s) for s in RefundStatus)
STATUSES = tuple(sorted(set(PAYMENT_STATUSES) | set(REFUND_STATUSES)))
MAX_PAGE_DEPTH = 10_000

_PA, _R = PaymentAttempt, Refund


@dataclass(frozen=True)
class TransactionQuery:
    """What to find; `clinic_ids` is the scope, already narrowed to the clinic asked for."""

    clinic_ids: tuple[int, ...]
    q: str | None = None
    kind: str | None = None
    channel: str | None = None
    status: str | None = None
    date_from: date | None = None
    date_to: date | None = None

    def term(self) -> SearchTerm | None:
        if not self.q or not self.q.strip():
            return None
        term = recognise(self.q)
        if term is None:
            raise InvalidInput("q must be an order, payment or refund number, a channel trade number, a card "
                               "number, a phone number or its last 4 digits", "invalid_search")
        return term


def _day_start(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=SHANGHAI)


@dataclass(frozen=True)
class _Anchors:
    """The ids a term names: orders, payment attempts and refunds (None: the term names none of that kind)."""

    orders: Select | None = None
    attempts: Select | None = None
    refunds: Select | None = None


def _anchors(term: SearchTerm, clinic_ids: tuple[int, ...]) -> _Anchors:
    value = term.value
    if term.shape == SearchShape.ORDER_NO:
        return _Anchors(orders=select(Order.id).where(Order.order_no == value))
    if term.shape == SearchShape.OUT_TRADE_NO:
        return _Anchors(attempts=select(_PA.id).where(_PA.out_trade_no == value))
    if term.shape == SearchShape.REFUND_NO:
        return _Anchors(refunds=select(_R.id).where(_R.refund_no == value))
    if term.shape == SearchShape.REFUND_REQUEST_NO:
        return _Anchors(refunds=select(_R.id).join(RefundRequest, RefundRequest.id == _R.refund_request_id)
                        .where(RefundRequest.refund_request_no == value))
    if term.shape in (SearchShape.PHONE_LAST4, SearchShape.PHONE):
        column = Patient.phone_last4 if term.shape == SearchShape.PHONE_LAST4 else Patient.phone
        patients = select(Patient.id).where(Patient.clinic_id.in_(clinic_ids), column == value)
        return _Anchors(orders=select(Order.id).where(Order.patient_id.in_(patients)))
    # A reference: the channel's trade or refund number, or a card (on the order, or of the order's patient).
    holders = select(Card.patient_id).where(Card.card_no == value, Card.clinic_id.in_(clinic_ids))
    return _Anchors(
        orders=union(select(Order.id).where(Order.card_no == value, Order.clinic_id.in_(clinic_ids)),
                     select(Order.id).where(Order.patient_id.in_(holders))),
        attempts=select(_PA.id).where(_PA.channel_trade_no == value),
        refunds=select(_R.id).where(_R.channel_refund_id == value))


def _payment_ids(anchors: _Anchors) -> Select | None:
    parts = []
    if anchors.orders is not None:
        parts.append(select(_PA.id).where(_PA.order_id.in_(anchors.orders)))
    if anchors.attempts is not None:
        parts.append(anchors.attempts)
    return None if not parts else parts[0] if len(parts) == 1 else union(*parts)


def _refund_ids(anchors: _Anchors) -> Select | None:
    parts = []
    if anchors.orders is not None:
        parts.append(select(_R.id).where(_R.order_id.in_(anchors.orders)))
    if anchors.attempts is not None:
        parts.append(select(_R.id).where(_R.payment_attempt_id.in_(anchors.attempts)))
    if anchors.refunds is not None:
        parts.append(anchors.refunds)
    return None if not parts else parts[0] if len(parts) == 1 else union(*parts)


def _payments(query: TransactionQuery, anchors: _Anchors | None) -> Select | None:
    where = [Order.clinic_id.in_(query.clinic_ids)]
    if anchors is not None:
        ids = _payment_ids(anchors)
        if ids is None:
            return None
        where.append(_PA.id.in_(ids))
    if query.status:
        where.append(_PA.status == query.status)
    where += _common(query, _PA.created_at)
    return (select(literal(PAYMENT).label("kind"), _PA.id.label("row_id"), Order.order_no,
                   Order.type.label("order_type"), Order.clinic_id, _PA.out_trade_no, null().label("refund_no"),
                   null().label("refund_request_no"), _PA.channel, _PA.channel_trade_no,
                   null().label("channel_refund_id"), _PA.amount_fen, _PA.status, _PA.created_at,
                   _PA.paid_at.label("settled_at"), Order.card_no, Order.patient_id, _PA.late)
            .join(Order, Order.id == _PA.order_id).where(*where))


def _refunds(query: TransactionQuery, anchors: _Anchors | None) -> Select | None:
    where = [Order.clinic_id.in_(query.clinic_ids)]
    if anchors is not None:
        ids = _refund_ids(anchors)
        if ids is None:
            return None
        where.append(_R.id.in_(ids))
    if query.status:
        where.append(_R.status == query.status)
    where += _common(query, _R.created_at)
    return (select(literal(REFUND).label("kind"), _R.id.label("row_id"), Order.order_no,
                   Order.type.label("order_type"), Order.clinic_id, _PA.out_trade_no, _R.refund_no,
                   RefundRequest.refund_request_no, _PA.channel, _PA.channel_trade_no, _R.channel_refund_id,
                   _R.amount_fen, _R.status, _R.created_at, _R.succeeded_at.label("settled_at"), Order.card_no,
                   Order.patient_id, literal(False).label("late"))
            .join(_PA, _PA.id == _R.payment_attempt_id).join(Order, Order.id == _R.order_id)
            .join(RefundRequest, RefundRequest.id == _R.refund_request_id).where(*where))


def _common(query: TransactionQuery, created_at) -> list:
    where = []
    if query.channel:
        where.append(_PA.channel == query.channel)
    if query.date_from:
        where.append(created_at >= _day_start(query.date_from))
    if query.date_to:
        where.append(created_at < _day_start(query.date_to + timedelta(days=1)))
    return where


def branches(query: TransactionQuery) -> list[Select]:
    """The selects whose rows answer the query (none when nothing can match), each of the same columns."""
    if query.date_from and query.date_to and query.date_from > query.date_to:
        raise InvalidInput("from must not be after to", "invalid_date_range")
    term = query.term()
    anchors = _anchors(term, query.clinic_ids) if term else None
    wanted = []
    if query.kind in (None, PAYMENT) and (not query.status or query.status in PAYMENT_STATUSES):
        wanted.append(_payments(query, anchors))
    if query.kind in (None, REFUND) and (not query.status or query.status in REFUND_STATUSES):
        wanted.append(_refunds(query, anchors))
    return [branch for branch in wanted if branch is not None]


def newest_first(selects: list[Select], depth: int | None = None) -> Select:
    """The branches merged newest first; each cut at `depth` rows before the merge when given."""
    parts = []
    for branch in selects:
        ordered = branch.order_by(branch.selected_columns.created_at.desc(), branch.selected_columns.row_id.desc())
        # Wrapped in a subquery: SQLite takes no ORDER BY or LIMIT inside a member of a UNION.
        parts.append(select(ordered.limit(depth).subquery()) if depth is not None else ordered.subquery().select())
    merged = (parts[0] if len(parts) == 1 else union_all(*parts)).subquery()
    return select(merged).order_by(merged.c.created_at.desc(), merged.c.kind, merged.c.row_id.desc())


def count_up_to(session: Session, selects: list[Select], cap: int) -> int:
    """How many rows the branches hold, counting each up to `cap` + 1 (enough to tell "more than cap")."""
    total = 0
    for branch in selects:
        limited = branch.with_only_columns(literal(1).label("one")).limit(cap + 1).subquery()
        total += session.scalar(select(func.count()).select_from(limited))
    return total


def present(session: Session, rows) -> list[dict]:
    """Result rows as the API shows them: the clinic's code, the patient (phone masked)."""
    rows = list(rows)
    patient_ids = {row.patient_id for row in rows if row.patient_id}
    patients = {p.id: p for p in session.scalars(select(Patient).where(Patient.id.in_(patient_ids)))} \
        if patient_ids else {}
    codes = dict(session.execute(select(Clinic.id, Clinic.code).where(
        Clinic.id.in_({row.clinic_id for row in rows}))).all()) if rows else {}
    return [_row_view(row, codes, patients.get(row.patient_id)) for row in rows]


def _row_view(row, codes: dict, patient: Patient | None) -> dict:
    return {"kind": row.kind, "order_no": row.order_no, "order_type": row.order_type,
            "clinic_code": codes.get(row.clinic_id), "out_trade_no": row.out_trade_no, "refund_no": row.refund_no,
            "refund_request_no": row.refund_request_no, "channel": row.channel,
            "channel_trade_no": row.channel_trade_no, "channel_refund_id": row.channel_refund_id,
            "amount_fen": row.amount_fen, "status": row.status, "created_at": row.created_at,
            "settled_at": row.settled_at, "card_no": row.card_no, "late": bool(row.late),
            "patient": None if patient is None else {"id": patient.id, "name": patient.name,
                                                     "phone": mask_phone(patient.phone)}}


def search(session: Session, query: TransactionQuery, limit: int, offset: int) -> dict:
    """`{items, total, total_exact, limit, offset}`, newest first."""
    if offset + limit > MAX_PAGE_DEPTH:
        raise InvalidInput(f"pages go {MAX_PAGE_DEPTH} rows deep: narrow the search (q, dates, status)",
                           "page_too_deep", details={"max_depth": MAX_PAGE_DEPTH})
    selects = branches(query)
    if not selects:
        return {"items": [], "total": 0, "total_exact": True, "limit": limit, "offset": offset}
    rows = session.execute(newest_first(selects, offset + limit).offset(offset).limit(limit))
    items = present(session, rows)
    counted = count_up_to(session, selects, MAX_PAGE_DEPTH)
    return {"items": items, "total": min(counted, MAX_PAGE_DEPTH), "total_exact": counted <= MAX_PAGE_DEPTH,
            "limit": limit, "offset": offset}


def list_transactions(rt: Runtime, scope: tuple[int, ...], *, clinic_code: str | None = None, limit: int = 50,
                      offset: int = 0, **filters) -> dict:
    """The search within the user's clinics (or the one named); `filters` are TransactionQuery's fields.

    A trade number that matches nothing of ours is looked up at the channel (channel_lookup): when the channel
    names one of our payments, that payment is the answer, with `channel_lookup` saying so."""
    with rt.db.session() as session:
        query = TransactionQuery(clinic_ids_in_scope(session, scope, clinic_code), **filters)
        page = search(session, query, limit, offset)
        term = query.term()
        if page["items"] or offset or term is None or term.shape != SearchShape.REFERENCE:
            return {**page, "channel_lookup": None}
        finding = find_at_channel(rt, session, query.clinic_ids, term.value)
        if finding is None:
            return {**page, "channel_lookup": None}
        found = search(session, replace(query, q=finding.out_trade_no), limit, offset)
        return {**found, "channel_lookup": {"channel": finding.channel, "out_trade_no": finding.out_trade_no,
                                            "state": finding.state}}
