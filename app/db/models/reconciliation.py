from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Boolean, Date, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.db.base import Base
from app.db.models.messaging import HisOutbox
from app.db.models.orders import PaymentAttempt
from app.db.models.refunds import Refund
from app.db.types import JsonDoc, UTCDateTime, utcnow


class ReconciliationRun(Base):
    """The result of reconciling one business day of one source: a merchant account's channel bill, or a
    clinic's HIS export. One row per (day, source, scope); running the day again replaces its result."""

    __tablename__ = "reconciliation_runs"
    __table_args__ = (UniqueConstraint("business_date", "source", "scope"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    clinic_id: Mapped[int] = mapped_column(ForeignKey("clinics.id"), index=True)
    merchant_account_id: Mapped[int | None] = mapped_column(ForeignKey("merchant_accounts.id"))
    business_date: Mapped[date] = mapped_column(Date, index=True)
    source: Mapped[str] = mapped_column(String(16))
    # `account:<id>` for a channel bill, `clinic:<id>` for the HIS.
    scope: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16))
    # Bumped by every start; a run that finds another attempt's number on its row lets that one win.
    attempt: Mapped[int] = mapped_column(Integer, default=0)
    # The day had not ended (Asia/Shanghai) when this result was made.
    provisional: Mapped[bool] = mapped_column(Boolean, default=False)
    matched_count: Mapped[int] = mapped_column(Integer, default=0)
    discrepancy_count: Mapped[int] = mapped_column(Integer, default=0)
    repaired_count: Mapped[int] = mapped_column(Integer, default=0)
    held_count: Mapped[int] = mapped_column(Integer, default=0)
    totals: Mapped[dict | None] = mapped_column(JsonDoc)
    error: Mapped[str | None] = mapped_column(String(1000))
    started_by: Mapped[str | None] = mapped_column(String(100))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ReconciliationDiscrepancy(Base):
    """A difference a run found: open for finance, held for a late row, repaired automatically, or resolved."""

    __tablename__ = "reconciliation_discrepancies"
    __table_args__ = (Index("ix_reconciliation_discrepancies_run_id_type_status", "run_id", "type", "status"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("reconciliation_runs.id", ondelete="CASCADE"))
    type: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16))
    # payment / refund for a channel, the write's kind for the HIS.
    kind: Mapped[str] = mapped_column(String(32))
    # out_trade_no, out_refund_no, or the HIS write's idempotency key.
    ref: Mapped[str] = mapped_column(String(128), index=True)
    channel_trade_no: Mapped[str | None] = mapped_column(String(64))
    # What the other side says (the channel's bill, the HIS's export), and what we recorded.
    their_amount_fen: Mapped[int | None] = mapped_column(Integer)
    our_amount_fen: Mapped[int | None] = mapped_column(Integer)
    their_status: Mapped[str | None] = mapped_column(String(32))
    our_status: Mapped[str | None] = mapped_column(String(32))
    occurred_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    detail: Mapped[str | None] = mapped_column(String(500))
    repair_id: Mapped[int | None] = mapped_column(ForeignKey("reconciliation_repairs.id"))
    resolution: Mapped[str | None] = mapped_column(String(16))
    note: Mapped[str | None] = mapped_column(String(500))
    resolved_by: Mapped[str | None] = mapped_column(String(100))
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class ReconciliationRepair(Base):
    """An automatic repair, done at most once per key whatever number of runs find the same difference."""

    __tablename__ = "reconciliation_repairs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # `payment:<out_trade_no>`, `refund:<out_refund_no>`, `his:<idempotency key>`.
    key: Mapped[str] = mapped_column(String(160), unique=True)
    clinic_id: Mapped[int] = mapped_column(ForeignKey("clinics.id"), index=True)
    action: Mapped[str] = mapped_column(String(32))
    outcome: Mapped[str] = mapped_column(String(32))
    business_date: Mapped[date] = mapped_column(Date)
    source: Mapped[str] = mapped_column(String(16))
    detail: Mapped[dict | None] = mapped_column(JsonDoc)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ReconciliationClaim(Base):
    """What the platform claims from a channel after finance trusted its own record over the channel's bill
    (`trust_platform`): open until the channel pays or corrects it."""

    __tablename__ = "reconciliation_claims"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    discrepancy_id: Mapped[int] = mapped_column(ForeignKey("reconciliation_discrepancies.id", ondelete="CASCADE"),
                                                unique=True)
    clinic_id: Mapped[int] = mapped_column(ForeignKey("clinics.id"), index=True)
    channel: Mapped[str] = mapped_column(String(16))
    discrepancy_type: Mapped[str] = mapped_column(String(32))
    ref: Mapped[str] = mapped_column(String(128))
    amount_fen: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16))
    note: Mapped[str] = mapped_column(String(500))
    created_by: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    settled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    settled_by: Mapped[str | None] = mapped_column(String(100))


# What a day's run reads from the tables of other modules.
Index("ix_payment_attempts_merchant_account_id_paid_at", PaymentAttempt.merchant_account_id, PaymentAttempt.paid_at)
Index("ix_refunds_succeeded_at", Refund.succeeded_at)
Index("ix_his_outbox_clinic_id_sent_at", HisOutbox.clinic_id, HisOutbox.sent_at)
