"""Messages to patients: what a push goes through, and how a bill becomes a channel template's data.

A mini-program user has a message for each bill the HIS announced on a card they hold (their inbox,
`GET /api/mp/v1/messages`); a message is pushed to the channel (a WeChat subscribe message, an Alipay
template message) only when the user granted a subscription to the app's template for it. A push is
pending until the channel took it (sent) or refused it for good (refused: no subscription left, a
template or page the channel does not know); when the channel cannot be reached for the retry horizon
it is failed, for a person to look at.

Each channel app's template names its own keywords (WeChat `thing1`, `amount2`…, Alipay `keyword1`…);
the operator maps each keyword to one of our facts about the bill (`fields`: keyword -> source), and
the value is fitted to the keyword's rules (WeChat's `thing` is at most 20 characters, and so on).
"""
from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from enum import StrEnum

from app.domain.money import fen_to_yuan
from app.domain.state_machine import StateMachine

SHANGHAI = timezone(timedelta(hours=8), "Asia/Shanghai")


class MessageKind(StrEnum):
    BILL_CREATED = "bill_created"
    BILL_CANCELLED = "bill_cancelled"


class Purpose(StrEnum):
    """What a channel app's message template is for."""

    BILL_CREATED = "bill_created"
    PAYMENT_SUCCEEDED = "payment_succeeded"
    REFUND_SUCCEEDED = "refund_succeeded"


class PushStatus(StrEnum):
    PENDING = "pending"
    SENT = "sent"
    REFUSED = "refused"
    """The channel will never take it (no subscription left, a template or page it does not know)."""
    FAILED = "failed"
    """The channel could not be reached for the whole retry horizon: flagged for a person."""


PUSH = StateMachine("message push", PushStatus, {
    PushStatus.PENDING: {PushStatus.SENT, PushStatus.REFUSED, PushStatus.FAILED},
})

# A subscription's standing as the patient last answered the channel's dialog.
SUBSCRIPTION_RESULTS = ("accept", "reject", "ban")
# What one user may hold for one template: each accept adds one; a client cannot pile up more.
MAX_ALLOWANCE = 50

# The facts a template's keyword may show, by purpose (bill_created is the one the platform pushes today).
SOURCES: dict[str, tuple[str, ...]] = {
    Purpose.BILL_CREATED: ("title", "amount", "time", "clinic", "card_no", "bill_kind", "bill_id"),
    Purpose.PAYMENT_SUCCEEDED: ("order_no", "amount", "time", "title", "clinic"),
    Purpose.REFUND_SUCCEEDED: ("order_no", "amount", "time", "status", "clinic"),
}
# A template's keywords in order, mapped to these facts when the operator gives no mapping (seed-demo).
DEFAULT_ORDER: dict[str, tuple[str, ...]] = {
    Purpose.BILL_CREATED: ("title", "amount", "time", "clinic"),
    Purpose.PAYMENT_SUCCEEDED: ("order_no", "amount", "time", "title"),
    Purpose.REFUND_SUCCEEDED: ("order_no", "amount", "time", "status"),
}
BILL_KIND_LABELS = {"exam": "检查", "lab": "检验", "prescription": "处方", "treatment": "治疗", "charge": "收费"}

DEFAULT_PAGE = "pages/bills/index"
PAGE_PATTERN = re.compile(r"[A-Za-z0-9_-]+(/[A-Za-z0-9_-]+)*")
MAX_PAGE_LEN = 128
KEYWORD_PATTERN = re.compile(r"[a-z_]+[0-9]+")
MAX_KEYWORDS = 10

# WeChat's keyword rules by prefix (subscribeMessage.send): how long a value may be.
_WECHAT_MAX_LEN = {"thing": 20, "character_string": 32, "phrase": 5, "name": 10, "letter": 32, "number": 32,
                   "car_number": 8, "phone_number": 17, "symbol": 5}
ALIPAY_MAX_LEN = 50
_ELLIPSIS = "…"


@dataclass(frozen=True)
class BillFacts:
    """What a bill message says, read from the HIS (never from the announcement)."""

    bill_id: str
    card_no: str
    kind: str
    title: str
    amount_fen: int
    clinic_name: str
    at: datetime
    """When the platform learnt of it (aware)."""

    def source(self, name: str, channel: str) -> str:
        if name == "title":
            return self.title
        if name == "amount":
            return fen_to_yuan(self.amount_fen) + ("元" if channel == "alipay" else "")
        if name == "time":
            return self.at.astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M")
        if name == "clinic":
            return self.clinic_name
        if name == "card_no":
            return self.card_no
        if name == "bill_kind":
            return BILL_KIND_LABELS.get(self.kind, self.kind)
        if name == "bill_id":
            return self.bill_id
        raise KeyError(f"a bill has no fact {name!r}")


def fit(value: str, keyword: str, channel: str) -> str:
    """The value as the keyword accepts it: one line, cut to the keyword's length with an ellipsis."""
    value = " ".join(value.split())
    if channel == "wechat":
        prefix = re.sub(r"[0-9]+$", "", keyword)
        limit = _WECHAT_MAX_LEN.get(prefix)
        if prefix in ("character_string", "letter", "number", "phone_number"):
            # These take no ellipsis (ASCII or digits only): cut plainly.
            return value[:limit]
    else:
        limit = ALIPAY_MAX_LEN
    if limit is None or len(value) <= limit:
        return value
    return value[:limit - 1] + _ELLIPSIS


def template_data(fields: Mapping[str, str], facts: BillFacts, channel: str) -> dict[str, dict[str, str]]:
    """The template's data, `{keyword: {"value": …}}`, from the operator's mapping of keyword -> fact."""
    return {keyword: {"value": fit(facts.source(source, channel), keyword, channel)}
            for keyword, source in fields.items()}


def bill_page(page: str, card_no: str) -> str:
    """The page the message opens: the template's page with the card (the bills of that card)."""
    return f"{page}?card_no={card_no}"


def fields_problem(purpose: str, fields: object) -> str | None:
    """Why a keyword mapping cannot be used, or None."""
    if not isinstance(fields, Mapping) or not 0 < len(fields) <= MAX_KEYWORDS:
        return f"fields must map 1 to {MAX_KEYWORDS} template keywords to facts"
    allowed = SOURCES.get(purpose, ())
    for keyword, source in fields.items():
        if not isinstance(keyword, str) or not KEYWORD_PATTERN.fullmatch(keyword):
            return f"{keyword!r} is not a template keyword such as thing1 or keyword2"
        if source not in allowed:
            return f"{keyword}: a {purpose} message can show {', '.join(allowed)}, not {source!r}"
    return None


def default_fields(purpose: str, keywords: list[str]) -> dict[str, str]:
    """The template's keywords, in order, mapped to the purpose's usual facts."""
    return dict(zip(keywords, DEFAULT_ORDER.get(purpose, ()), strict=False))


def page_problem(page: object) -> str | None:
    if not isinstance(page, str) or len(page) > MAX_PAGE_LEN or not PAGE_PATTERN.fullmatch(page):
        return "page must be a mini-program page path such as pages/bills/index (no query)"
    return None
