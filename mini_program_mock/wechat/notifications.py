"""WeChat Pay's outbound notifications: payment results and (encrypted) refund results.

Both go through the shared durable notifier with WeChat's retry schedule. Refund
notifications are handed over by the settler thread once a refund has settled.
"""
from __future__ import annotations

import logging
import threading

from ..merchants import Merchants
from ..notifier import WECHAT_RETRY_SCHEDULE, Notifier
from ..world import World
from . import ledger, refunds, wire

log = logging.getLogger(__name__)

REFUND_RECV_ACCOUNT = "支付用户零钱"


def payment_notification(merchant: dict, trade: dict) -> str:
    sign_type = merchant["sign_type"]
    fields = {
        "appid": trade["appid"],
        "attach": trade["attach"] or None,
        "bank_type": trade["bank_type"],
        "cash_fee": trade["cash_fee"],
        "fee_type": trade["fee_type"],
        "is_subscribe": "N",
        "mch_id": trade["mch_id"],
        "nonce_str": wire.nonce(),
        "openid": trade["openid"],
        "out_trade_no": trade["out_trade_no"],
        "result_code": "SUCCESS",
        "return_code": "SUCCESS",
        # Named only when it is not the default, as WeChat does; it is then signed too.
        "sign_type": sign_type if sign_type != "MD5" else None,
        "time_end": trade["time_end"],
        "total_fee": trade["total_fee"],
        "trade_type": trade["trade_type"],
        "transaction_id": trade["transaction_id"],
    }
    return wire.signed_xml(fields, merchant["api_key"], sign_type)


def refund_notification(merchant: dict, trade: dict, refund: dict) -> str:
    plain = wire.to_xml({
        "out_refund_no": refund["out_refund_no"],
        "out_trade_no": trade["out_trade_no"],
        "refund_account": "REFUND_SOURCE_UNSETTLED_FUNDS",
        "refund_fee": refund["refund_fee"],
        "refund_id": refund["refund_id"],
        "refund_recv_accout": REFUND_RECV_ACCOUNT,
        "refund_request_source": "API",
        "refund_status": refund["status"],
        "settlement_refund_fee": refund["refund_fee"],
        "settlement_total_fee": trade["total_fee"],
        "success_time": wire.dashed_time(refund["success_at"]),
        "total_fee": trade["total_fee"],
        "transaction_id": trade["transaction_id"],
    }, root="root")
    return wire.to_xml({
        "return_code": "SUCCESS",
        "appid": trade["appid"],
        "mch_id": trade["mch_id"],
        "nonce_str": wire.nonce(),
        "req_info": wire.encrypt_req_info(plain, merchant["api_key"]),
    })


def send_payment_notification(world: World, notifier: Notifier, merchant: dict, trade: dict) -> None:
    notifier.enqueue(channel="wechat", kind="pay", ref=trade["out_trade_no"], url=trade["notify_url"],
                     body=payment_notification(merchant, trade), content_type="text/xml",
                     schedule=WECHAT_RETRY_SCHEDULE)
    world.log("wechat_notify_enqueued", notification="pay", appid=trade["appid"], mch_id=trade["mch_id"],
              out_trade_no=trade["out_trade_no"], transaction_id=trade["transaction_id"], url=trade["notify_url"])


class RefundSettler:
    """Settles due refunds and hands their notifications to the notifier, also after a restart."""

    MAX_WAIT_S = 1.0
    MIN_WAIT_S = 0.01

    def __init__(self, world: World, merchants: Merchants, notifier: Notifier):
        self.world = world
        self.merchants = merchants
        self.notifier = notifier
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="sandbox-wechat-refunds", daemon=True)
            self._thread.start()

    def wake(self) -> None:
        self._wake.set()

    def _run(self) -> None:
        while True:
            try:
                self.run_once()
                wait = self._wait_s()
            except Exception:  # the settler must outlive any single bad row
                log.exception("sandbox wechat refund settler failed")
                wait = self.MAX_WAIT_S
            self._wake.wait(wait)
            self._wake.clear()

    def _wait_s(self) -> float:
        due = refunds.next_due_at(self.world)
        if due is None:
            return self.MAX_WAIT_S
        return min(self.MAX_WAIT_S, max(self.MIN_WAIT_S, due - self.world.now().timestamp()))

    def run_once(self) -> None:
        refunds.settle_due(self.world)
        for refund in refunds.unnotified(self.world):
            trade = ledger.trade_by_id(self.world, refund["trade_id"])
            merchant = self.merchants.get("wechat", trade["appid"])
            self.notifier.enqueue(channel="wechat", kind="refund", ref=refund["out_refund_no"],
                                  url=refund["notify_url"], body=refund_notification(merchant, trade, refund),
                                  content_type="text/xml", schedule=WECHAT_RETRY_SCHEDULE)
            refunds.mark_notified(self.world, refund["id"])
            self.world.log("wechat_notify_enqueued", notification="refund", appid=trade["appid"],
                           mch_id=trade["mch_id"], out_trade_no=trade["out_trade_no"],
                           out_refund_no=refund["out_refund_no"], refund_id=refund["refund_id"],
                           url=refund["notify_url"])
