"""A mini-program user's messages (`GET /api/mp/v1/messages`), newest first: everything announced to them,
pushed to the channel or not."""
from __future__ import annotations

from sqlalchemy import func, select

from app.db.models import MessagePush, MpMessage
from app.runtime import Runtime
from app.services.common.principals import MpPrincipal


def message_view(message: MpMessage, push: MessagePush | None) -> dict:
    return {"id": message.id, "kind": message.kind, "title": message.title, "bill_id": message.bill_id,
            "card_no": message.card_no, "amount_fen": message.data.get("amount_fen"),
            "bill_kind": message.data.get("kind"), "bill_title": message.data.get("title"), "page": message.page,
            "created_at": message.created_at, "pushed": push.status if push is not None else None}


def list_messages(rt: Runtime, principal: MpPrincipal, limit: int = 20, offset: int = 0) -> dict:
    with rt.db.session() as session:
        mine = (MpMessage.user_id == principal.user_id, MpMessage.clinic_id == principal.clinic_id)
        total = session.scalar(select(func.count(MpMessage.id)).where(*mine))
        rows = session.execute(select(MpMessage, MessagePush).outerjoin(MessagePush,
                                                                        MessagePush.message_id == MpMessage.id)
                               .where(*mine).order_by(MpMessage.id.desc()).limit(limit).offset(offset)).all()
        return {"items": [message_view(message, push) for message, push in rows], "total": total, "limit": limit,
                "offset": offset}
