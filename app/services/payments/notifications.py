"""Channel notifications: verified and stored before the channel is answered, processed by workers.

Ingestion does the least that makes a notification durable: verify the
signature and merchant, check the amount against our attempt, and insert the
raw body into the inbox in one statement (an INSERT … SELECT that only inserts
when the attempt exists on the verifying merchant account with that amount). No
Redis on this path: a dispatcher enqueues the processing, and re-enqueues anything
a crash or a Redis restart dropped. Processing applies the payment once, by
conditional updates, after matching it again through the account that verified it
(notification_match). A notification with nothing to act on is still verified
before it is acknowledged. When the database does not answer (a restart), the channel
is answered FAIL with a 503, and sends the notification again.
"""
from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass

from sqlalchemy import Connection, Engine, bindparam, insert, select, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from app import metrics
from app.channels.base import InvalidNotification, NotificationKind, PaymentChannel, RefundState
from app.db.availability import database_unavailable
from app.db.models import MerchantAccount, NotificationInbox, PaymentAttempt, Refund
from app.db.types import utcnow
from app.domain.payments import InboxStatus
from app.domain.refunds import IN_FLIGHT
from app.runtime import Runtime
from app.services.clinics import account_code, accounts_for_notifications, channel_for_account
from app.services.common.status import set_status
from app.services.payments.notification_match import NotificationRefused, payment_attempt, refund_target
from app.services.payments.outcomes import AmountMismatch, record_payment
from app.services.refunds import apply_notification

log = logging.getLogger(__name__)

RECEIVED, PROCESSED, FAILED = InboxStatus.RECEIVED, InboxStatus.PROCESSED, InboxStatus.FAILED
ACCOUNT_CACHE_TTL_S = 30.0


@dataclass(frozen=True)
class IngestResult:
    accepted: bool
    reply: bytes
    content_type: str
    reason: str = ""
    kind: str = "unknown"
    """payment, refund, other, or unknown (not read far enough to tell)."""
    cause: str = "stored"
    """The reason class counted in the metrics: stored, nothing_to_act_on; unknown_clinic, unreadable,
    verification_failed, no_such_payment, amount_mismatch, refund_refused, database_unavailable."""
    status: int = 200
    """503 when the database did not answer: the channel sends the notification again."""


class _AccountCache:
    """The notify path looks up a clinic's channel apps on every request; they change rarely."""

    def __init__(self) -> None:
        self._entries: dict[tuple, tuple[float, list]] = {}
        self._lock = threading.Lock()

    def adapters(self, rt: Runtime, clinic_code: str, channel: str) -> list[tuple[int, PaymentChannel]]:
        key = (id(rt), clinic_code, channel)
        hit = self._entries.get(key)
        if hit and hit[0] > time.monotonic():
            return hit[1]
        with rt.db.session() as session:
            adapters = [(a.id, channel_for_account(rt, session, a))
                        for a in accounts_for_notifications(session, clinic_code, channel)]
        with self._lock:
            self._entries[key] = (time.monotonic() + ACCOUNT_CACHE_TTL_S, adapters)
        return adapters


_accounts = _AccountCache()


def _fail_body(channel: str, message: bytes = b"rejected") -> tuple[bytes, str]:
    if channel == "wechat":
        return (b"<xml><return_code><![CDATA[FAIL]]></return_code><return_msg><![CDATA[" + message +
                b"]]></return_msg></xml>", "text/xml")
    return b"fail", "text/plain"


def _reject(adapter: PaymentChannel | None, channel: str, cause: str, reason: str, clinic_code: str,
            kind: str = "unknown") -> IngestResult:
    log.warning("rejected %s notification for clinic %s: %s", channel, clinic_code, reason)
    body, ctype = _fail_body(channel) if adapter is None else adapter.notification_ack(False)
    return IngestResult(False, body, ctype, reason, kind, cause)


def ingest(rt: Runtime, channel: str, clinic_code: str, body: bytes, content_type: str | None,
           expected_kind: NotificationKind | None = None) -> IngestResult:
    """Verify and store a notification; the answer for the channel (FAIL, to be sent again, when the database did
    not answer). Every verdict is counted (hpay_notifications_total)."""
    try:
        result = _ingest(rt, channel, clinic_code, body, content_type, expected_kind)
    except Exception as exc:
        if not database_unavailable(exc):
            raise
        log.warning("%s notification for clinic %s not stored, the database did not answer (%s); the channel will "
                    "send it again", channel, clinic_code, exc.__class__.__name__)
        reply, ctype = _fail_body(channel, b"retry later")
        kind = expected_kind.value if expected_kind is not None else "unknown"
        result = IngestResult(False, reply, ctype, "the database did not answer", kind, "database_unavailable", 503)
    metrics.NOTIFICATIONS.labels(channel, result.kind, "accepted" if result.accepted else "rejected",
                                 result.cause).inc()
    return result


def _ingest(rt: Runtime, channel: str, clinic_code: str, body: bytes, content_type: str | None,
            expected_kind: NotificationKind | None) -> IngestResult:
    adapters = _accounts.adapters(rt, clinic_code, channel)
    expected = expected_kind.value if expected_kind is not None else "unknown"
    if not adapters:
        return _reject(None, channel, "unknown_clinic", "unknown clinic or channel", clinic_code, expected)
    first = adapters[0][1]
    try:
        kind = expected_kind or first.notification_kind(body, content_type)
    except InvalidNotification as exc:
        return _reject(first, channel, "unreadable", f"unreadable: {exc.reason}", clinic_code, expected)
    reason = ""
    for account_id, adapter in adapters:
        try:
            if kind == NotificationKind.OTHER:
                adapter.verify_notification(body, content_type)
                log.info("%s notification for clinic %s verified; nothing to act on", channel, clinic_code)
                return IngestResult(True, *adapter.notification_ack(True), reason="nothing to act on",
                                    kind=kind.value, cause="nothing_to_act_on")
            parsed = (adapter.parse_payment_notification(body, content_type) if kind == NotificationKind.PAYMENT
                      else adapter.parse_refund_notification(body, content_type))
        except InvalidNotification as exc:
            reason = exc.reason
            continue
        refused = _store(rt, channel, kind, clinic_code, account_id, parsed, body, content_type)
        if refused is not None:
            return _reject(adapter, channel, refused[0], refused[1], clinic_code, kind.value)
        return IngestResult(True, *adapter.notification_ack(True), kind=kind.value)
    return _reject(first, channel, "verification_failed", f"verification failed: {reason}", clinic_code, kind.value)


class _InboxConnections:
    """Each thread keeps one autocommit connection for the inbox insert. A checkout from the pool pings
    the server first (pool_pre_ping), a second round trip on the busiest path. A connection found broken
    (the server restarted) is replaced and the insert sent again, as the ping would have done: if the first
    one was stored after all, the inbox holds a duplicate, which processing ignores like the channels' own
    repeats. When no new connection can be had (the server is still down), the error goes up and the next
    insert of this thread connects afresh."""

    def __init__(self) -> None:
        self._local = threading.local()

    def insert(self, engine: Engine, statement, params: dict):
        for retry in (False, True):
            try:
                return self._connection(engine).execute(statement, params).first()
            except DBAPIError as exc:
                if retry or not exc.connection_invalidated:
                    raise

    def _connection(self, engine: Engine) -> Connection:
        held = getattr(self._local, "held", None)
        if held is not None and held[0] is engine and not (held[1].invalidated or held[1].closed):
            return held[1]
        self._local.held = None
        if held is not None:
            held[1].close()
        connection = engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        self._local.held = (engine, connection)
        return connection


_inbox_connections = _InboxConnections()

_INBOX_COLUMNS = ("channel", "kind", "clinic_code", "merchant_account_id", "out_trade_no", "body", "content_type",
                  "status", "attempts", "next_attempt_at", "received_at")


def _inbox_insert(check_amount: bool):
    """INSERT … SELECT storing the notification only when its attempt exists (with that amount, for a
    payment). Built once: building it per request took as much CPU as all the rest of ingestion."""
    inbox, attempts = NotificationInbox.__table__, PaymentAttempt.__table__
    values = [bindparam(name, type_=inbox.c[name].type) for name in _INBOX_COLUMNS]
    conditions = [attempts.c.out_trade_no == bindparam("out_trade_no"),
                  attempts.c.merchant_account_id == bindparam("merchant_account_id")]
    if check_amount:
        conditions.append(attempts.c.amount_fen == bindparam("amount_fen"))
    return (insert(inbox).from_select(list(_INBOX_COLUMNS), select(*values).where(*conditions))
            .returning(inbox.c.id))


_INSERT_PAYMENT = _inbox_insert(check_amount=True)
_INSERT_REFUND = _inbox_insert(check_amount=False)


def _store(rt: Runtime, channel: str, kind: NotificationKind, clinic_code: str, account_id: int, parsed,
           body: bytes, content_type: str | None) -> tuple[str, str] | None:
    """Insert into the inbox; returns (cause, reason) of a rejection, or None when stored."""
    now = utcnow()
    params = dict(channel=channel, kind=kind.value, clinic_code=clinic_code, merchant_account_id=account_id,
                  out_trade_no=parsed.out_trade_no, body=body.decode("utf-8", errors="replace"),
                  content_type=content_type, status=str(RECEIVED), attempts=0, next_attempt_at=now, received_at=now)
    if kind == NotificationKind.PAYMENT:
        statement, params["amount_fen"] = _INSERT_PAYMENT, parsed.amount_fen
    else:
        # Rarer than payments and with more to check: refuse a foreign refund before storing it.
        with rt.db.session() as session:
            try:
                refund_target(session, account_id, parsed)
            except NotificationRefused as exc:
                return "refund_refused", exc.reason
        statement = _INSERT_REFUND
    engine = rt.db.engine
    if engine.dialect.name == "postgresql":
        # One round trip: the row is durable when the statement returns.
        inserted = _inbox_connections.insert(engine, statement, params)
    else:
        with engine.begin() as connection:
            inserted = connection.execute(statement, params).first()
    if inserted is not None:
        return None
    with rt.db.session() as session:
        attempt = session.scalar(select(PaymentAttempt).where(PaymentAttempt.out_trade_no == parsed.out_trade_no,
                                                              PaymentAttempt.merchant_account_id == account_id))
    if attempt is None:
        return "no_such_payment", f"no payment {parsed.out_trade_no} on merchant account {account_id}"
    return "amount_mismatch", f"amount {parsed.amount_fen} fen does not match the order's {attempt.amount_fen} fen"


def process(rt: Runtime, inbox_id: int) -> str:
    """Apply one stored notification; safe to run any number of times."""
    with rt.db.session() as session:
        row = session.get(NotificationInbox, inbox_id)
        if row is None or row.status != RECEIVED:
            return row.status if row else "missing"
        attempts, channel, kind, clinic_code = row.attempts + 1, row.channel, row.kind, row.clinic_code
        try:
            outcome = _apply(session, _verifying_adapter(rt, session, row), row)
            status, error, why = PROCESSED, None, f"applied: {outcome}"
        except (InvalidNotification, AmountMismatch, NotificationRefused) as exc:
            session.rollback()  # a refusal leaves nothing half-applied
            log.error("%s %s notification %s for clinic %s refused: %s", channel, kind, inbox_id, clinic_code, exc)
            status, error, outcome, why = FAILED, str(exc)[:500], FAILED, "refused"
            row = session.get(NotificationInbox, inbox_id)
            if row.status != RECEIVED:
                return "already_processed"
        if not set_status(session, row, status, reason=why, error=error, processed_at=utcnow(), attempts=attempts):
            session.rollback()
            return "already_processed"
        return outcome


def _verifying_adapter(rt: Runtime, session: Session, row: NotificationInbox) -> PaymentChannel:
    """The adapter of the merchant account that verified the row at ingestion; it verifies it again."""
    account = session.get(MerchantAccount, row.merchant_account_id) if row.merchant_account_id else None
    if account is None or account_code(session, account) != row.clinic_code or account.channel != row.channel:
        raise NotificationRefused(f"merchant account {row.merchant_account_id} is not a {row.channel} account of "
                                  f"clinic {row.clinic_code}")
    return channel_for_account(rt, session, account)


def _apply(session: Session, adapter: PaymentChannel, row: NotificationInbox) -> str:
    body = row.body.encode("utf-8")
    if row.kind == NotificationKind.PAYMENT.value:
        note = adapter.parse_payment_notification(body, row.content_type)
        attempt = payment_attempt(session, row.merchant_account_id, note.out_trade_no, lock=True)
        return record_payment(session, attempt, note.channel_trade_no, note.amount_fen, note.paid_at, "notification")
    note = adapter.parse_refund_notification(body, row.content_type)
    attempt, part = refund_target(session, row.merchant_account_id, note, lock=True)
    if part is not None:
        return "refund_applied" if apply_notification(session, part, note.state, note.channel_refund_id,
                                                      note.succeeded_at) else "refund_already_settled"
    # Alipay may omit the refund number: ask the channel about this payment's refunds now.
    if note.state == RefundState.SUCCEEDED:
        session.execute(update(Refund).where(Refund.payment_attempt_id == attempt.id, Refund.status.in_(IN_FLIGHT))
                        .values(next_query_at=utcnow()).execution_options(synchronize_session=False))
    return "refund_query_scheduled"
