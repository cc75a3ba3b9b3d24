"""Steps of the refund tests: a fresh HIS card with known top-ups (bound by a WeChat and an Alipay user),
the world's view (HIS records and balances, the channels' ledgers), the platform's records, and control
over when the platform's background work runs."""
from __future__ import annotations

import base64
import hashlib
import json
import secrets
import time
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone

import requests
from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from rq.job import Job
from sqlalchemy import select, text
from sqlalchemy.orm import selectinload

from app.db.models import HisOutbox, Order, PaymentAttempt, RefundRequest
from app.his.http_client import HttpHisClient
from app.services.refunds.card_refunds import describe
from tests.e2e.helpers import new_client, wait_until
from tests.his_auth import his_headers
from workers.dispatcher import dispatch_one, lease_spec

SHANGHAI = timezone(timedelta(hours=8))


def fresh_card(sandbox, balance_fen: int = 0) -> dict:
    """A new HIS patient and card; returns {card_no, name, phone}."""
    name = "退款测试" + secrets.token_hex(2)
    phone = f"139{secrets.randbelow(10**8):08d}"
    card = requests.post(f"{sandbox.url}/sandbox/his/cards",
                         json={"name": name, "phone": phone, "balance_fen": balance_fen}, timeout=10).json()
    return {"card_no": card["card_no"], "name": name, "phone": phone}


def bind(client, card: dict) -> None:
    """A patient of this user who is the card's holder binds it with the code texted to the holder's phone."""
    patient = client.call("POST", "/patients", json={"name": card["name"], "phone": card["phone"],
                                                     "relation": "self"})
    client.bind_card(patient["id"], card["card_no"], card["phone"])


def topups(client, card_no: str, amounts: list[int]) -> list[dict]:
    done = []
    for amount in amounts:
        order = client.call("POST", "/orders", json={"type": "topup", "card_no": card_no, "amount_fen": amount,
                                                     "channel": client.channel})
        client.pay(order["order_no"])
        done.append(client.wait_for(order["order_no"], {"completed"}))
    return done


def card_with_topups(platform, sandbox, wechat: list[int], alipay: list[int], balance_fen: int = 0):
    """(card, clients by channel); `card["orders"][channel]` lists that channel's top-up orders, oldest first."""
    card = fresh_card(sandbox, balance_fen)
    card["orders"] = {}
    clients = {}
    for channel, amounts in (("wechat", wechat), ("alipay", alipay)):
        client = new_client(platform, sandbox, channel, f"refund-{card['card_no']}-{channel}")
        bind(client, card)
        card["orders"][channel] = topups(client, card["card_no"], amounts)
        clients[channel] = client
    return card, clients


def his_balance(sandbox, card_no: str) -> int:
    return requests.get(f"{sandbox.url}/sandbox/cards/{card_no}", timeout=10).json()["balance_fen"]


def his_signed_post(platform, sandbox, path: str, body: dict, secret: str | None = None,
                    timestamp: int | None = None) -> requests.Response:
    """POST to the platform's HIS API signed as the sandbox's HIS (a fresh nonce each call)."""
    his = sandbox.merchants()["his"][0]
    raw = json.dumps(body).encode()
    return requests.post(f"{platform.url}{path}", data=raw, timeout=30,
                         headers={"Content-Type": "application/json",
                                  **his_headers(his["key_id"], secret or his["secret"], "POST", path, raw,
                                                timestamp=timestamp)})


def wait_refund(client, refund_request_no: str, statuses: set[str], timeout: float = 60.0) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        refund = client.call("GET", f"/refunds/{refund_request_no}")
        if refund["status"] in statuses:
            return refund
        if time.monotonic() > deadline:
            raise AssertionError(f"refund {refund_request_no} still {refund['status']}: {refund}")
        time.sleep(0.3)


# --- the world outside: the counter, the channels' ledgers, the HIS's records ------------------

def counter_takes(sandbox, card_no: str, amount_fen: int) -> None:
    """Money taken off the card at the hospital counter, through the HIS's own API (not the platform)."""
    his = sandbox.merchants()["his"][0]
    client = HttpHisClient(f"{sandbox.url}/his", his["key_id"], his["secret"])
    try:
        reference = f"COUNTER-{secrets.token_hex(4)}"
        client.refund_hold(card_no, amount_fen, reference, reference)
    finally:
        client.close()


def his_records(sandbox, order_no: str) -> list[dict]:
    """What the HIS recorded under one order_no (a refund request's number for card holds and restores)."""
    today = datetime.now(SHANGHAI).date()
    rows = []
    for day in (today - timedelta(days=1), today, today + timedelta(days=1)):
        rows += requests.get(f"{sandbox.url}/sandbox/his/records", params={"date": day.isoformat()},
                             timeout=10).json()
    return [r for r in rows if r["order_no"] == order_no]


def trade_view(sandbox, channel: str, out_trade_no: str) -> dict:
    """The sandbox channel's ledger view of a trade: refunded amount as `refunded_fen` on both channels."""
    merchant = next(m for m in sandbox.merchants()[channel] if m["clinic_code"] == "demo")
    if channel == "wechat":
        resp = requests.get(f"{sandbox.url}/sandbox/wechat/trades/{out_trade_no}",
                            params={"appid": merchant["appid"]}, timeout=10)
        resp.raise_for_status()
        return {**resp.json(), "refunded_fen": resp.json()["refunded_fee"]}
    resp = requests.get(f"{sandbox.url}/sandbox/alipay/trades/{out_trade_no}",
                        params={"app_id": merchant["app_id"]}, timeout=10)
    resp.raise_for_status()
    return resp.json()


def refunded_at_channels(rt, sandbox, card_no: str) -> int:
    """Everything the channels refunded on this card's top-up payments."""
    total = 0
    with rt.db.session() as session:
        attempts = session.execute(select(PaymentAttempt.channel, PaymentAttempt.out_trade_no).join(
            Order, Order.id == PaymentAttempt.order_id).where(Order.card_no == card_no, Order.type == "topup",
                                                              PaymentAttempt.status == "paid")).all()
    for channel, out_trade_no in attempts:
        total += trade_view(sandbox, channel, out_trade_no)["refunded_fen"]
    return total


@contextmanager
def sandbox_faults(sandbox, **faults):
    """Global sandbox faults for the block, cleared whatever happens."""
    try:
        requests.post(f"{sandbox.url}/sandbox/faults", json=faults, timeout=10).raise_for_status()
        yield
    finally:
        requests.delete(f"{sandbox.url}/sandbox/faults", timeout=10).raise_for_status()


def set_faults(sandbox, **faults) -> None:
    requests.post(f"{sandbox.url}/sandbox/faults", json=faults, timeout=10).raise_for_status()


# --- the platform's records --------------------------------------------------------------------

def refund_request(rt, refund_request_no: str) -> RefundRequest:
    """The request with its parts loaded."""
    with rt.db.session() as session:
        return session.scalar(select(RefundRequest).where(RefundRequest.refund_request_no == refund_request_no)
                              .options(selectinload(RefundRequest.parts)))


def request_writes(rt, refund_request_no: str) -> list[HisOutbox]:
    with rt.db.session() as session:
        request_id = session.scalar(select(RefundRequest.id).where(
            RefundRequest.refund_request_no == refund_request_no))
        return list(session.scalars(select(HisOutbox).where(HisOutbox.refund_request_id == request_id)
                                    .order_by(HisOutbox.id)))


def wait_settled(rt, refund_request_no: str, timeout: float = 60.0) -> dict:
    """The request as the API describes it, once no part is on its way any more."""
    return wait_until(lambda: (view := describe(rt, refund_request_no))["status"] != "processing" and view,
                      timeout=timeout, what=f"refund request {refund_request_no} to settle")


def topup_attempts(rt, order_nos: list[str]) -> list[PaymentAttempt]:
    with rt.db.session() as session:
        return [session.scalar(select(PaymentAttempt).join(Order, Order.paid_attempt_id == PaymentAttempt.id)
                               .where(Order.order_no == order_no)) for order_no in order_nos]


# --- controlling when the platform's background work happens -----------------------------------

@contextmanager
def cron_stopped(platform, rt):
    """No dispatcher for the block: nothing due is handed to the workers unless the test dispatches it."""
    try:
        platform.cron.stop()
        # A dispatch the cron enqueued just before it stopped still runs: let it finish first.
        wait_until(lambda: not _dispatch_queued_or_running(rt), timeout=30, what="the last dispatch to finish")
        yield
    finally:
        if platform.cron.proc is None or platform.cron.proc.poll() is not None:
            platform.cron.start()


def _dispatch_queued_or_running(rt) -> bool:
    queue = rt.queue("default")
    job_ids = queue.get_job_ids() + queue.started_job_registry.get_job_ids()
    return any(job is not None and job.func_name == "workers.jobs.dispatch_due_work"
               for job in Job.fetch_many(job_ids, connection=rt.redis))


def dispatch_only(rt, source_name: str) -> int:
    """One pass of the dispatcher over a single source (e.g. "inbox"); the running workers do the jobs."""
    return dispatch_one(rt, lease_spec(source_name))


@contextmanager
def card_orders_locked(rt, card_no: str):
    """Hold the row locks a card refund takes on the card's top-up orders, so a request waits there.

    Yields a function counting the sessions of this database waiting for these locks."""
    with rt.db.session() as session:
        session.execute(select(Order.id).where(Order.card_no == card_no, Order.type == "topup")
                        .with_for_update()).all()
        holder = session.scalar(text("SELECT pg_backend_pid()"))

        def waiting() -> int:
            # A second waiter for a row queues behind the first waiter, so follow the chain back to the holder.
            with rt.db.session() as probe:
                blocked_by = dict(probe.execute(text(
                    "SELECT pid, pg_blocking_pids(pid) FROM pg_stat_activity WHERE datname = current_database()"
                    " AND cardinality(pg_blocking_pids(pid)) > 0")).all())
            behind = {holder}
            while True:
                grown = {pid for pid, blockers in blocked_by.items() if behind & set(blockers)} - behind
                if not grown:
                    return len(behind) - 1
                behind |= grown

        yield waiting


def wechat_merchant(sandbox) -> dict:
    return next(m for m in sandbox.merchants()["wechat"] if m["clinic_code"] == "demo")


def wechat_refund_notification(merchant: dict, trade: dict, refund: dict, key: str | None = None) -> bytes:
    """WeChat's refund-result notification for one refund of a sandbox trade view (PROTOCOLS.md): the result in
    `req_info`, AES-256-ECB encrypted with the md5 of the merchant's API key (or of `key`, to forge one)."""
    plain = "<root>" + "".join(f"<{name}><![CDATA[{value}]]></{name}>" for name, value in {
        "transaction_id": trade["transaction_id"], "out_trade_no": trade["out_trade_no"],
        "refund_id": refund["refund_id"], "out_refund_no": refund["out_refund_no"],
        "total_fee": trade["total_fee"], "refund_fee": refund["refund_fee"],
        "settlement_total_fee": trade["total_fee"], "settlement_refund_fee": refund["refund_fee"],
        "refund_status": refund["refund_status"], "success_time": refund["success_time"],
        "refund_recv_accout": "支付用户零钱", "refund_account": "REFUND_SOURCE_UNSETTLED_FUNDS",
        "refund_request_source": "API"}.items()) + "</root>"
    aes_key = hashlib.md5((key or merchant["api_key"]).encode()).hexdigest().encode()
    padder = padding.PKCS7(128).padder()
    encryptor = Cipher(algorithms.AES(aes_key), modes.ECB()).encryptor()
    sealed = encryptor.update(padder.update(plain.encode()) + padder.finalize()) + encryptor.finalize()
    return (f"<xml><return_code>SUCCESS</return_code><appid><![CDATA[{merchant['appid']}]]></appid>"
            f"<mch_id><![CDATA[{merchant['mch_id']}]]></mch_id><nonce_str>{secrets.token_hex(16)}</nonce_str>"
            f"<req_info><![CDATA[{base64.b64encode(sealed).decode()}]]></req_info></xml>").encode()
