"""The HIS writes a refund makes before its money may leave, and what their outcome means for its parts.

`refund_hold` takes the amount off the card before any money leaves: recorded, the parts go to their
channels; refused, they fail. `refund_restore` gives back what a failed part took; a refused restore is
left for a person (the audit trail says which card and how much). A staff refund of a visit-bill order first
has the HIS reverse its bill settlement for the amount (`bill_settlement_reversal`), of a redeemed booking
first has the package's charge reduced (`charge_adjustment`): recorded, the part goes; refused, it fails and
nothing leaves.
"""
from __future__ import annotations

import logging

from sqlalchemy.orm import Session

from app.db.models import HisOutbox, RefundRequest
from app.domain.his_writes import HisWriteKind
from app.his.base import HisClient, HisRejected
from app.services.common.audit import record_system_event
from app.services.his import Performed, WriteKind, WriteRequest, register_kind
from app.services.refunds.gates import HOLD_REFUSALS, fail_parts, release_parts

log = logging.getLogger(__name__)


def _hold(client: HisClient, write: WriteRequest) -> Performed:
    p = write.payload
    return Performed(client.refund_hold(p["card_no"], p["amount_fen"], write.order_no, write.key).record_id)


def _hold_recorded(session: Session, row: HisOutbox, _performed: Performed) -> None:
    release_parts(session, row.refund_request_id, "the HIS took the amount off the card")


def _hold_refused(session: Session, row: HisOutbox, exc: HisRejected) -> None:
    request = session.get(RefundRequest, row.refund_request_id)
    refusal = HOLD_REFUSALS.get(exc.code, exc.code or "his_rejected")
    fail_parts(session, request, refusal, f"the HIS refused to take the amount off the card: {exc.code}")
    record_system_event(session, request.clinic_id, "refund_hold_refused", "refund_request",
                        request.refund_request_no, after={"code": exc.code, "amount_fen": request.amount_fen})


def _restore(client: HisClient, write: WriteRequest) -> Performed:
    p = write.payload
    return Performed(client.refund_restore(p["card_no"], p["amount_fen"], write.order_no, write.key).record_id)


def _restore_refused(session: Session, row: HisOutbox, exc: HisRejected) -> None:
    request = session.get(RefundRequest, row.refund_request_id)
    log.error("HIS refused to restore %s: %s", row.idempotency_key, exc.code)
    record_system_event(session, request.clinic_id, "refund_restore_refused", "refund_request",
                        request.refund_request_no, after={"code": exc.code, "payload": row.payload})


REFUND_HOLD = register_kind(WriteKind(HisWriteKind.REFUND_HOLD, _hold, on_sent=_hold_recorded,
                                      on_rejected=_hold_refused))
REFUND_RESTORE = register_kind(WriteKind(HisWriteKind.REFUND_RESTORE, _restore, on_rejected=_restore_refused))


def _reverse_settlement(client: HisClient, write: WriteRequest) -> Performed:
    p = write.payload
    return Performed(client.reverse_bill_settlement(p["card_no"], p["amount_fen"], write.order_no,
                                                    write.key).record_id)


def _adjust_charge(client: HisClient, write: WriteRequest) -> Performed:
    p = write.payload
    return Performed(client.adjust_charge(write.order_no, p["card_no"], p["amount_fen"], write.key).record_id)


def _his_told(session: Session, row: HisOutbox, _performed: Performed) -> None:
    release_parts(session, row.refund_request_id, f"the HIS recorded the {row.kind}")


def _his_refused(session: Session, row: HisOutbox, exc: HisRejected) -> None:
    request = session.get(RefundRequest, row.refund_request_id)
    fail_parts(session, request, exc.code or "his_rejected", f"the HIS refused the {row.kind}: {exc.code}")
    record_system_event(session, request.clinic_id, f"{row.kind}_refused", "refund_request",
                        request.refund_request_no, after={"code": exc.code, "amount_fen": request.amount_fen})


BILL_SETTLEMENT_REVERSAL = register_kind(WriteKind(HisWriteKind.BILL_SETTLEMENT_REVERSAL, _reverse_settlement,
                                                   on_sent=_his_told, on_rejected=_his_refused))
CHARGE_ADJUSTMENT = register_kind(WriteKind(HisWriteKind.CHARGE_ADJUSTMENT, _adjust_charge, on_sent=_his_told,
                                            on_rejected=_his_refused))
