"""Whether a channel app's keys work, from a real signed call to the channel (through the Runtime's adapter).

WeChat: `orderquery` of an out_trade_no that cannot exist; a signed ORDERNOTEXIST proves the appid, mch_id and
API key (and our sign type). Then `jscode2session` with a code that cannot exist: `invalid code` (40029) proves
the appid and app secret the logins use. Alipay: `alipay.trade.query` of a number that cannot exist; a signed
40004 ACQ.TRADE_NOT_EXIST proves the app private key (Alipay verified our request) and the Alipay public key (we
verified its answer). Anything else is reported as what it means.
"""
from __future__ import annotations

import secrets

from sqlalchemy import select

from app.channels.base import (
    BadAnswerSignature,
    ChannelError,
    ChannelRejected,
    ChannelUnavailable,
    InvalidResponse,
    MerchantMisconfigured,
    PaymentChannel,
    TradeState,
)
from app.db.models import MerchantAccount
from app.db.types import utcnow
from app.runtime import Runtime
from app.services.clinics.channel_apps import require_app
from app.services.clinics.merchants import channel_for_account
from app.services.clinics.shapes import CHECK_DETAIL_MAX, audited_check
from app.services.common.audit import record_staff_event
from app.services.common.principals import StaffPrincipal

_WECHAT_CODES = {
    "APPID_MCHID_NOT_MATCH": "the app_id does not belong to this mch_id",
    "NOAUTH": "this mch_id has no permission for JSAPI payments",
}
_ALIPAY_CODES = {
    "isv.invalid-signature": "the app private key is wrong (Alipay could not verify our signature)",
    "isv.invalid-app-id": "Alipay does not know this app_id",
    "isv.insufficient-isv-permissions": "this app may not query trades (is the payment product signed?)",
}
_LOGIN_CODES = {"40013": "WeChat does not know this app_id", "40125": "the app_secret is wrong"}


def _probe_number() -> str:
    return f"CHECK{secrets.token_hex(12)}"


def _answer_problem(exc: ChannelError, channel_name: str, key_name: str) -> str:
    if isinstance(exc, MerchantMisconfigured):
        return f"a key is missing or unusable: {exc}"
    if isinstance(exc, BadAnswerSignature):
        return f"the answer's signature does not verify: {key_name} is wrong"
    if isinstance(exc, ChannelUnavailable):
        return f"unreachable: {exc}"
    if isinstance(exc, InvalidResponse):
        return f"this address does not answer like {channel_name}: {exc}"
    return f"unexpected answer from {channel_name}: {exc}"


def _wechat(adapter: PaymentChannel) -> tuple[bool, str]:
    try:
        result = adapter.query_payment(_probe_number())
    except ChannelRejected as exc:
        if "签名错误" in exc.message:
            return False, "the API key is wrong (WeChat Pay: 签名错误, the signature is wrong)"
        if exc.code == "FAIL" and "mch_id" in exc.message:
            return False, f"WeChat Pay does not know this mch_id ({exc.message})"
        return False, _WECHAT_CODES.get(exc.code, f"WeChat Pay refused the query: {exc}")
    except ChannelError as exc:
        return False, _answer_problem(exc, "WeChat Pay", "the API key or the sign_type")
    if result.state is not TradeState.NOT_FOUND:
        return False, f"WeChat Pay answered {result.raw_state} for an order that cannot exist"
    try:
        adapter.login(_probe_number())
    except ChannelRejected as exc:
        if exc.code == "invalid_code":
            return True, ("WeChat Pay answered a signed ORDERNOTEXIST (app_id, mch_id and API key work) and the "
                          "login service refused only the code (app_secret works)")
        return False, _LOGIN_CODES.get(exc.code, f"the login service refused: {exc}")
    except ChannelError as exc:
        return False, f"payments work, but the login service: {_answer_problem(exc, 'WeChat login', 'its answer')}"
    return False, "the login service accepted a code that cannot exist"


def _alipay(adapter: PaymentChannel) -> tuple[bool, str]:
    try:
        result = adapter.query_payment(_probe_number())
    except ChannelRejected as exc:
        return False, _ALIPAY_CODES.get(exc.code, f"Alipay refused the query: {exc}")
    except ChannelError as exc:
        return False, _answer_problem(exc, "Alipay", "the Alipay public key")
    if result.state is not TradeState.NOT_FOUND:
        return False, f"Alipay answered {result.raw_state} for a trade that cannot exist"
    return True, ("Alipay answered a signed ACQ.TRADE_NOT_EXIST: it verified our request (app private key) and we "
                  "verified its answer (Alipay public key)")


def check_app(rt: Runtime, actor: StaffPrincipal, account_id: int) -> dict:
    """`{ok, detail, checked_at}`; recorded on the app and audited."""
    with rt.db.session() as session:
        account = require_app(session, account_id)
        try:
            adapter = channel_for_account(rt, session, account)
        except (ValueError, RuntimeError) as exc:  # an adapter the Runtime refuses to build (sign type, sandbox)
            adapter, refused = None, f"the adapter cannot be built: {exc}"
        channel = account.channel
    if adapter is None:
        ok, detail = False, refused
    else:
        ok, detail = (_wechat if channel == "wechat" else _alipay)(adapter)  # outside any transaction
    detail = detail[:CHECK_DETAIL_MAX]
    now = utcnow()
    with rt.db.session() as session:
        account = session.scalar(select(MerchantAccount).where(MerchantAccount.id == account_id))
        before = audited_check(account.checked_at, account.check_ok, account.check_detail)
        account.checked_at, account.check_ok, account.check_detail = now, ok, detail
        record_staff_event(session, actor, account.clinic_id, "channel_app_checked", "channel_app", account.id,
                           before={"last_check": before}, after={"last_check": audited_check(now, ok, detail)})
    return {"ok": ok, "detail": detail, "checked_at": now}
