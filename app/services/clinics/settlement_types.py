"""Settlement-type settings: how redeemed platform orders of each channel count in a clinic's books.

A redeemed package is recorded in the HIS as a `charge` carrying its settlement type; the
clinic decides per type whether it counts in cash flow and in revenue (the money reaches the
clinic later, through the quarterly settlement). Without a setting, a channel's type is
`platform_<channel>` and counts in both.
"""
from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.db.models import SettlementTypeSetting
from app.domain.errors import Conflict
from app.runtime import Runtime
from app.services.clinics.merchants import CHANNELS
from app.services.common.audit import record_staff_event
from app.services.common.principals import StaffPrincipal
from app.services.common.staff_scope import one_clinic


def _document(channel: str, row: SettlementTypeSetting | None) -> dict:
    if row is None:
        return {"channel": channel, "settlement_type": f"platform_{channel}", "count_in_cash_flow": True,
                "count_in_revenue": True}
    return {"channel": channel, "settlement_type": row.settlement_type, "count_in_cash_flow": row.count_in_cash_flow,
            "count_in_revenue": row.count_in_revenue}


def settlement_setting(session: Session, clinic_id: int, channel: str) -> dict:
    """`{channel, settlement_type, count_in_cash_flow, count_in_revenue}` in force for this clinic and channel."""
    return _document(channel, session.scalar(select(SettlementTypeSetting).where(
        SettlementTypeSetting.clinic_id == clinic_id, SettlementTypeSetting.channel == channel)))


def get_settlement_types(rt: Runtime, scope: tuple[int, ...], clinic_code: str | None) -> list[dict]:
    with rt.db.session() as session:
        clinic = one_clinic(session, scope, clinic_code)
        return [settlement_setting(session, clinic.id, channel) for channel in CHANNELS]


def put_settlement_types(rt: Runtime, principal: StaffPrincipal, clinic_code: str | None,
                         entries: list[dict]) -> list[dict]:
    """Set the named channels' settings (channels not named keep theirs); returns every channel's."""
    try:
        return _put(rt, principal, clinic_code, entries)
    except IntegrityError:
        # Another request created the same channel's setting at the same moment.
        raise Conflict("the settings changed meanwhile; reload them and try again", "concurrent_update") from None


def _put(rt: Runtime, principal: StaffPrincipal, clinic_code: str | None, entries: list[dict]) -> list[dict]:
    with rt.db.session() as session:
        clinic = one_clinic(session, principal.clinic_ids, clinic_code)
        before = [settlement_setting(session, clinic.id, channel) for channel in CHANNELS]
        for entry in entries:
            row = session.scalar(select(SettlementTypeSetting).where(
                SettlementTypeSetting.clinic_id == clinic.id, SettlementTypeSetting.channel == entry["channel"])
                .with_for_update())
            if row is None:
                row = SettlementTypeSetting(clinic_id=clinic.id, channel=entry["channel"])
                session.add(row)
            row.settlement_type = entry.get("settlement_type") or f"platform_{entry['channel']}"
            row.count_in_cash_flow = entry["count_in_cash_flow"]
            row.count_in_revenue = entry["count_in_revenue"]
        session.flush()
        after = [settlement_setting(session, clinic.id, channel) for channel in CHANNELS]
        record_staff_event(session, principal, clinic.id, "settlement_types_set", "clinic", clinic.code,
                           before={"settings": before}, after={"settings": after})
        return after
