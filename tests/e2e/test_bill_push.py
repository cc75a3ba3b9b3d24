"""Visit bills pushed to patients, end to end on real processes (gunicorn, two rq workers and cron) against the
sandbox: the doctor opens a bill at the sandbox HIS, which announces it to the platform (`POST /api/his/v1/events`,
signed); the platform reads it back, gives every holder of the card a message and pushes it to those who
subscribed, as a WeChat subscribe message (wechatpy, its access token shared in Redis) or an Alipay template
message; a push the channel cannot take is retried, and an access token WeChat no longer accepts is replaced once."""
from __future__ import annotations

import json
import secrets
import time

import pytest
import requests
from sqlalchemy import select, update

from app.db.models import Clinic, MerchantAccount, MessagePush, MpMessage
from app.services.messaging.templates import seed_from_channel
from mini_program_mock.patient import MiniProgramClient
from tests.api.mp_helpers import channel_user_id
from tests.e2e.helpers import wait_until
from tests.his_auth import his_headers
from tests.integration.reconciliation_support import OwnClinic, own_clinic
from tests.sandbox.message_helpers import log_entries, tokens_issued

CHANNELS = ["wechat", "alipay"]
PUSHED_WITHIN_S = 10


class Holder:
    """A patient in the mini-program with a card the HIS opened for them, and its user id at the channel."""

    def __init__(self, platform, sandbox, channel: str, clinic_code: str = "demo") -> None:
        self.channel = channel
        self.sandbox = sandbox
        self.client = MiniProgramClient(platform.url, sandbox.url, channel, clinic_code=clinic_code,
                                        say=lambda _line: None)
        self.user_id = channel_user_id(channel, f"push-{secrets.token_hex(5)}")
        self.client.login(self.user_id)
        patient = self.client.call("POST", "/patients", json={"name": "孙悦", "phone": "13733334444",
                                                              "relation": "self"})
        self.card_no = self.client.call("POST", f"/patients/{patient['id']}/cards", json={"create": True})["card_no"]
        self.app = self.client.merchant()

    @property
    def app_id(self) -> str:
        return self.app["appid"] if self.channel == "wechat" else self.app["app_id"]

    def bill_template(self) -> str:
        listed = self.client.call("GET", "/subscriptions")
        return next(s["template_id"] for s in listed if s["purpose"] == "bill_created")

    def subscribe(self, times: int = 1) -> None:
        """The patient accepts the bill template in the channel's dialog `times` times, and the page tells the
        platform each time."""
        tid = self.bill_template()
        who = {"appid": self.app_id, "openid": self.user_id} if self.channel == "wechat" else {
            "app_id": self.app_id, "user_id": self.user_id}
        for _ in range(times):
            self.client.sandbox_call("POST", f"/sandbox/{self.channel}/subscriptions",
                                     json={**who, "template_ids": [tid], "result": "accept"})
            self.client.call("POST", "/subscriptions", json={"template_ids": [tid]})

    def open_bill(self, title: str, amount_fen: int) -> str:
        """The doctor opens a bill at the HIS (which announces it)."""
        return self.client.sandbox_call("POST", "/sandbox/his/bills", json={
            "card_no": self.card_no, "kind": "lab", "title": title, "amount_fen": amount_fen})["bill_id"]

    def delivered(self) -> list[dict]:
        """What the channel delivered to this patient (the sandbox's record)."""
        return self.client.sandbox_call("GET", "/sandbox/messages", params={"channel": self.channel,
                                                                            "user": self.user_id})

    def wait_delivered(self, count: int, timeout: float = 30.0) -> list[dict]:
        def enough() -> list[dict] | None:
            found = self.delivered()
            return found if len(found) >= count else None

        return wait_until(enough, timeout=timeout, what=f"{count} message(s) delivered to {self.user_id}")

    def inbox(self) -> list[dict]:
        return self.client.call("GET", "/messages")["items"]


def clinic_of_its_own(rt, sandbox) -> tuple[OwnClinic, dict]:
    """A clinic with new sandbox apps (their templates configured as seed-demo does) and its own HIS key."""
    clinic = own_clinic(rt, sandbox.url)
    with rt.db.session() as session:
        seed_from_channel(session, clinic.account("wechat"), clinic.merchants["wechat"]["message_templates"], "test")
        key_id = session.get(Clinic, clinic.id).his_key_id
    key = next(h for h in requests.get(f"{sandbox.url}/sandbox/merchants", timeout=10).json()["his"]
               if h["key_id"] == key_id)
    return clinic, key


def announce(platform, key: dict, card_no: str, bill_id: str) -> None:
    """The clinic's HIS announces the bill (the sandbox HIS announces with the demo clinic's key only)."""
    body = json.dumps({"type": "bill_created", "card_no": card_no, "bill_id": bill_id}).encode()
    resp = requests.post(f"{platform.url}/api/his/v1/events", data=body, timeout=10, headers={
        "Content-Type": "application/json",
        **his_headers(key["key_id"], key["secret"], "POST", "/api/his/v1/events", body)})
    assert resp.status_code == 202, resp.text


def _pushes(rt, bill_id: str) -> list[MessagePush]:
    with rt.db.session() as session:
        return list(session.scalars(select(MessagePush).join(MpMessage, MpMessage.id == MessagePush.message_id)
                                    .where(MpMessage.bill_id == bill_id)))


@pytest.mark.parametrize("channel", CHANNELS)
def test_a_bill_opened_at_the_his_reaches_a_subscribed_patient_within_seconds(platform, sandbox, rt, channel):
    holder = Holder(platform, sandbox, channel)
    holder.subscribe()
    started = time.monotonic()
    bill_id = holder.open_bill("肝功能检查", 8800)

    [message] = holder.wait_delivered(1, timeout=PUSHED_WITHIN_S)
    took = time.monotonic() - started
    assert took < PUSHED_WITHIN_S
    title, amount = ("thing1", "amount2") if channel == "wechat" else ("keyword1", "keyword2")
    assert message["data"][title]["value"] == "肝功能检查"
    assert message["data"][amount]["value"] == ("88.00" if channel == "wechat" else "88.00元")
    assert message["purpose"] == "bill_created" and message["page"] == f"pages/bills/index?card_no={holder.card_no}"
    assert message["template_id"] == holder.bill_template()
    [push] = _pushes(rt, bill_id)
    assert push.status == "sent" and push.attempts == 1
    [inbox] = holder.inbox()
    assert (inbox["bill_id"], inbox["pushed"], inbox["amount_fen"]) == (bill_id, "sent", 8800)
    # The one subscription was spent by this message.
    assert [s["allowance"] for s in holder.client.call("GET", "/subscriptions") if s["purpose"] == "bill_created"] \
        == [0]
    print(f"{channel}: bill opened -> message delivered in {took:.2f} s")


def test_an_unsubscribed_patient_sees_the_bill_but_nothing_is_pushed(platform, sandbox, rt):
    silent, subscribed = Holder(platform, sandbox, "wechat"), Holder(platform, sandbox, "wechat")
    subscribed.subscribe()
    silent_bill = silent.open_bill("血脂四项", 6000)
    wait_until(lambda: silent.inbox(), what="the unsubscribed patient's message")
    # The subscribed patient's bill, opened after, is pushed: the dispatcher has been round since.
    subscribed.open_bill("血脂四项", 6000)
    subscribed.wait_delivered(1)
    [message] = silent.inbox()
    assert message["bill_id"] == silent_bill and message["pushed"] is None
    assert _pushes(rt, silent_bill) == [] and silent.delivered() == []


def test_a_push_the_channel_cannot_take_is_retried_until_it_goes_through(platform, sandbox, rt):
    """A clinic of the test's own whose WeChat app points at an address nothing answers (an outage of the channel);
    its HIS announces with its own key. Once the channel answers again, the waiting push goes, once."""
    clinic, key = clinic_of_its_own(rt, sandbox)
    holder = Holder(platform, sandbox, "wechat", clinic_code=clinic.code)
    holder.subscribe()
    with rt.db.session() as session:
        session.execute(update(MerchantAccount).where(MerchantAccount.id == clinic.account("wechat"))
                        .values(login_base_url="http://127.0.0.1:1/wxlogin/"))
    bill_id = holder.open_bill("心电图", 4500)
    announce(platform, key, holder.card_no, bill_id)

    failing = wait_until(lambda: (p := _pushes(rt, bill_id)) and p[0].attempts >= 2 and p[0],
                         what="the push to fail and be retried")
    assert failing.status == "pending" and "unreachable" in failing.last_error and holder.delivered() == []
    with rt.db.session() as session:  # the channel is back
        session.execute(update(MerchantAccount).where(MerchantAccount.id == clinic.account("wechat"))
                        .values(login_base_url=f"{sandbox.url}/wxlogin/"))
    [message] = holder.wait_delivered(1)
    sent = wait_until(lambda: (p := _pushes(rt, bill_id)[0]).status == "sent" and p, what="the push to be sent")
    assert sent.attempts > failing.attempts and sent.last_error is None
    assert len(holder.delivered()) == 1 and message["data"]["thing1"]["value"] == "心电图"


def test_an_expired_access_token_is_replaced_once_and_the_push_goes_through(platform, sandbox, rt):
    holder = Holder(platform, sandbox, "wechat")
    holder.subscribe(times=2)
    holder.open_bill("甲功三项", 12000)
    holder.wait_delivered(1)
    issued = tokens_issued(sandbox.url, holder.app_id)

    expired = requests.post(f"{sandbox.url}/sandbox/wechat/tokens/expire", json={"appid": holder.app_id}, timeout=10)
    assert expired.status_code == 200 and expired.json()["expired"] >= 1
    holder.open_bill("甲功三项复查", 12000)
    holder.wait_delivered(2)
    assert tokens_issued(sandbox.url, holder.app_id) == issued + 1
    answers = [e["errcode"] for e in log_entries(sandbox.url, "wechat_subscribe_send") if e["touser"] == holder.user_id]
    assert answers == [0, 40001, 0]


def test_many_pushes_from_two_worker_processes_share_one_access_token(platform, sandbox, rt):
    """A WeChat app no process has a token for yet; eight patients' bills are pushed by the platform's two
    workers: WeChat issues one token, fetched once and used by every process."""
    clinic, key = clinic_of_its_own(rt, sandbox)
    holders = [Holder(platform, sandbox, "wechat", clinic_code=clinic.code) for _ in range(8)]
    assert tokens_issued(sandbox.url, holders[0].app_id) == 0
    for holder in holders:
        holder.subscribe()
    for holder in holders:
        announce(platform, key, holder.card_no, holder.open_bill("血常规", 2500))
    for holder in holders:
        holder.wait_delivered(1)
    assert tokens_issued(sandbox.url, holders[0].app_id) == 1
