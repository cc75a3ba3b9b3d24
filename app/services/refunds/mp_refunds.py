"""A patient's own refund of a card balance, through the mini-program they use."""
from __future__ import annotations

from app.db.models import MpUser
from app.runtime import Runtime
from app.services.common.principals import MpPrincipal
from app.services.people import require_user_card
from app.services.refunds import card_refunds


def request_patient_refund(rt: Runtime, principal: MpPrincipal, card_no: str, amount_fen: int) -> dict:
    with rt.db.session() as session:
        card = require_user_card(session, principal, card_no)
        account_id = session.get(MpUser, principal.user_id).merchant_account_id
        card_no = card.card_no
    # A patient's request may only draw on top-ups made through this same channel app.
    request_no = card_refunds.request_refund(rt, clinic_id=principal.clinic_id, card_no=card_no,
                                             amount_fen=amount_fen, origin="patient", account_ids={account_id},
                                             user_id=principal.user_id)
    return card_refunds.describe(rt, request_no)
