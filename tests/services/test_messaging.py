"""Bills pushed to patients, on the use cases with the fake HIS and the fake channels: who gets a message, who
gets a push, what a push costs (one subscription), and what happens when the channel refuses or is away."""
from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select, update

from app.channels.messaging import MessageRefused, MessengerUnavailable
from app.db.models import AuditEvent, Card, MessagePush, MessageSubscription, MpMessage
from app.domain.errors import InvalidInput, Unavailable
from app.domain.messaging import MessageKind
from app.his import HisUnavailable
from app.services import messaging
from app.services.messaging import subscriptions, templates
from app.services.messaging.poller import poll_clinic
from tests.services.helpers import OwnClinic, events, new_clinic, new_holder

WECHAT_FIELDS = {"thing1": "title", "amount2": "amount", "time3": "time", "thing4": "clinic"}
ALIPAY_FIELDS = {"keyword1": "title", "keyword2": "amount", "keyword3": "time", "keyword4": "clinic"}


def _with_templates(rt, clinic: OwnClinic) -> dict[str, str]:
    """Each app of the clinic gets a bill template; {channel: template id}."""
    ids = {"wechat": f"tpl-wx-{clinic.code}", "alipay": f"tpl-ali-{clinic.code}"}
    with rt.db.session() as session:
        for channel, fields in (("wechat", WECHAT_FIELDS), ("alipay", ALIPAY_FIELDS)):
            templates.replace_templates(session, clinic.accounts[channel], [
                {"template_id": ids[channel], "purpose": "bill_created", "fields": fields}], "test")
    return ids


def _pushes(rt, user_id: int) -> list[MessagePush]:
    with rt.db.session() as session:
        return list(session.scalars(select(MessagePush).where(MessagePush.user_id == user_id)
                                    .order_by(MessagePush.id)))


def _messages(rt, user_id: int) -> list[MpMessage]:
    with rt.db.session() as session:
        return list(session.scalars(select(MpMessage).where(MpMessage.user_id == user_id).order_by(MpMessage.id)))


def _allowance(rt, user_id: int, template_id: str) -> int:
    with rt.db.session() as session:
        return session.scalar(select(MessageSubscription.allowance).where(
            MessageSubscription.user_id == user_id, MessageSubscription.template_id == template_id)) or 0


@pytest.fixture()
def clinic(rt) -> OwnClinic:
    return new_clinic(rt)


@pytest.mark.parametrize("channel", ["wechat", "alipay"])
def test_a_new_bill_reaches_a_subscribed_holder_once_and_spends_one_subscription(rt, world, clinic, channel):
    ids = _with_templates(rt, clinic)
    holder = new_holder(rt, world, clinic, channel)
    subscriptions.record_answers(rt, holder.principal, [ids[channel]])
    bill_id = world.his.add_bill(holder.card_no, 4500, "血常规")

    announced = messaging.receive(rt, clinic.id, MessageKind.BILL_CREATED, holder.card_no, bill_id)
    assert (announced.messages, announced.pushes) == (1, 1)
    [push] = _pushes(rt, holder.principal.user_id)
    assert push.status == "pending" and push.template_id == ids[channel]
    assert messaging.send(rt, push.id) == "sent"

    [delivered] = world.messages.delivered
    keys = list(WECHAT_FIELDS if channel == "wechat" else ALIPAY_FIELDS)
    assert delivered.template_id == ids[channel] and delivered.page == f"pages/bills/index?card_no={holder.card_no}"
    assert [delivered.data[k]["value"] for k in keys[:2]] == ["血常规", "45.00" if channel == "wechat" else "45.00元"]
    assert _allowance(rt, holder.principal.user_id, ids[channel]) == 0
    assert events(rt, "message push", push.id) == [("pending", "sent")]
    # The message is in the inbox, marked pushed; a second send of the same push changes nothing.
    [message] = _messages(rt, holder.principal.user_id)
    assert message.kind == "bill_created" and message.data["amount_fen"] == 4500
    assert messaging.send(rt, push.id) == "sent" and len(world.messages.delivered) == 1


def test_a_holder_who_did_not_subscribe_gets_the_message_but_no_push(rt, world, clinic):
    _with_templates(rt, clinic)
    subscribed, silent = new_holder(rt, world, clinic), new_holder(rt, world, clinic)
    subscriptions.record_answers(rt, subscribed.principal, [f"tpl-wx-{clinic.code}"])
    bill_id = world.his.add_bill(silent.card_no, 1200)

    announced = messaging.receive(rt, clinic.id, MessageKind.BILL_CREATED, silent.card_no, bill_id)
    assert (announced.messages, announced.pushes) == (1, 0)
    assert len(_messages(rt, silent.principal.user_id)) == 1 and _pushes(rt, silent.principal.user_id) == []
    assert world.messages.attempts == 0


def test_a_rejected_or_banned_subscription_allows_nothing(rt, world, clinic):
    ids = _with_templates(rt, clinic)
    holder = new_holder(rt, world, clinic)
    subscriptions.record_answers(rt, holder.principal, [ids["wechat"]], "reject")
    assert _allowance(rt, holder.principal.user_id, ids["wechat"]) == 0
    subscriptions.record_answers(rt, holder.principal, [ids["wechat"]])
    subscriptions.record_answers(rt, holder.principal, [ids["wechat"]])
    assert _allowance(rt, holder.principal.user_id, ids["wechat"]) == 2
    subscriptions.record_answers(rt, holder.principal, [ids["wechat"]], "ban")
    bill_id = world.his.add_bill(holder.card_no, 800)
    assert messaging.receive(rt, clinic.id, MessageKind.BILL_CREATED, holder.card_no, bill_id).pushes == 0


def test_a_repeated_announcement_changes_nothing(rt, world, clinic):
    ids = _with_templates(rt, clinic)
    holder = new_holder(rt, world, clinic)
    subscriptions.record_answers(rt, holder.principal, [ids["wechat"]])
    bill_id = world.his.add_bill(holder.card_no, 3000)
    for _ in range(3):
        messaging.receive(rt, clinic.id, MessageKind.BILL_CREATED, holder.card_no, bill_id)
    assert len(_messages(rt, holder.principal.user_id)) == 1 and len(_pushes(rt, holder.principal.user_id)) == 1


def test_every_holder_of_the_card_gets_the_bill_and_a_cancellation_is_a_message_only(rt, world, clinic):
    ids = _with_templates(rt, clinic)
    first = new_holder(rt, world, clinic)
    second = new_holder(rt, world, clinic, "alipay")
    with rt.db.session() as session:  # the second user holds the same card (a family member bound it too)
        session.execute(update(Card).where(Card.patient_id == second.patient_id).values(card_no=first.card_no))
    subscriptions.record_answers(rt, second.principal, [ids["alipay"]])
    bill_id = world.his.add_bill(first.card_no, 990, "处方药")
    assert messaging.receive(rt, clinic.id, MessageKind.BILL_CREATED, first.card_no, bill_id).messages == 2
    assert _pushes(rt, first.principal.user_id) == [] and len(_pushes(rt, second.principal.user_id)) == 1

    world.his.cancel_bill(bill_id)
    cancelled = messaging.receive(rt, clinic.id, MessageKind.BILL_CANCELLED, first.card_no, bill_id)
    assert (cancelled.messages, cancelled.pushes) == (2, 0)
    assert [m.kind for m in _messages(rt, second.principal.user_id)] == ["bill_created", "bill_cancelled"]


@pytest.mark.parametrize("case", ["unknown card", "bill of another card", "bill paid already", "unknown bill",
                                  "cancellation of an unpaid bill", "card of another clinic"])
def test_an_announcement_the_his_does_not_bear_out_changes_nothing(rt, world, clinic, case):
    ids = _with_templates(rt, clinic)
    holder, other = new_holder(rt, world, clinic), new_holder(rt, world, clinic)
    subscriptions.record_answers(rt, holder.principal, [ids["wechat"]])
    bill_id = world.his.add_bill(other.card_no if case == "bill of another card" else holder.card_no, 500)
    kind, card_no, clinic_id = MessageKind.BILL_CREATED, holder.card_no, clinic.id
    if case == "unknown card":
        card_no = "NOBODY01"
    elif case == "bill paid already":
        world.his.pay_at_window(bill_id)
    elif case == "unknown bill":
        bill_id = "BILL-NOT-THERE"
    elif case == "cancellation of an unpaid bill":
        kind = MessageKind.BILL_CANCELLED
    elif case == "card of another clinic":
        clinic_id = new_clinic(rt).id
    assert messaging.receive(rt, clinic_id, kind, card_no, bill_id) == messaging.Announced(0, 0)
    assert _messages(rt, holder.principal.user_id) == [] and _messages(rt, other.principal.user_id) == []


def test_a_his_that_does_not_answer_is_asked_to_announce_again(rt, world, clinic):
    holder = new_holder(rt, world, clinic)
    bill_id = world.his.add_bill(holder.card_no, 500)
    world.his.fail_next("get_bill", HisUnavailable("timeout"))
    with pytest.raises(Unavailable) as refused:
        messaging.receive(rt, clinic.id, MessageKind.BILL_CREATED, holder.card_no, bill_id)
    assert refused.value.code == "his_unavailable" and _messages(rt, holder.principal.user_id) == []
    assert messaging.receive(rt, clinic.id, MessageKind.BILL_CREATED, holder.card_no, bill_id).messages == 1


def test_a_push_the_channel_could_not_take_is_retried_then_sent_once(rt, world, clinic):
    ids = _with_templates(rt, clinic)
    holder = new_holder(rt, world, clinic)
    subscriptions.record_answers(rt, holder.principal, [ids["wechat"]])
    messaging.receive(rt, clinic.id, MessageKind.BILL_CREATED, holder.card_no, world.his.add_bill(holder.card_no, 1))
    [push] = _pushes(rt, holder.principal.user_id)
    world.messages.fail_next(MessengerUnavailable("WeChat unreachable: connection refused"), times=2)

    assert messaging.send(rt, push.id) == "pending"
    [waiting] = _pushes(rt, holder.principal.user_id)
    assert waiting.attempts == 1 and "connection refused" in waiting.last_error
    assert waiting.next_attempt_at > push.next_attempt_at
    assert _allowance(rt, holder.principal.user_id, ids["wechat"]) == 1  # nothing spent on a failure
    assert messaging.send(rt, push.id) == "pending"
    assert messaging.send(rt, push.id) == "sent"
    [sent] = _pushes(rt, holder.principal.user_id)
    assert sent.attempts == 3 and sent.last_error is None and len(world.messages.delivered) == 1
    assert _allowance(rt, holder.principal.user_id, ids["wechat"]) == 0


def test_a_push_the_channel_never_takes_is_failed_after_the_horizon_for_a_person(rt, world, clinic):
    ids = _with_templates(rt, clinic)
    holder = new_holder(rt, world, clinic)
    subscriptions.record_answers(rt, holder.principal, [ids["wechat"]])
    messaging.receive(rt, clinic.id, MessageKind.BILL_CREATED, holder.card_no, world.his.add_bill(holder.card_no, 1))
    [push] = _pushes(rt, holder.principal.user_id)
    world.messages.fail_next(MessengerUnavailable("HTTP 502"), times=2)
    assert messaging.send(rt, push.id) == "pending"
    with rt.db.session() as session:  # a day has passed (the horizon is 24 h, scaled by HPAY_RETRY_TIME_SCALE)
        session.execute(update(MessagePush).where(MessagePush.id == push.id)
                        .values(created_at=push.created_at - timedelta(days=1, seconds=1)))
    assert messaging.send(rt, push.id) == "failed"
    assert events(rt, "message push", push.id) == [("pending", "failed")]
    with rt.db.session() as session:
        assert session.scalar(select(AuditEvent.action).where(AuditEvent.target_type == "message_push",
                                                              AuditEvent.target_id == str(push.id))) \
            == "message_push_failed"
    assert world.messages.delivered == [] and _allowance(rt, holder.principal.user_id, ids["wechat"]) == 1


def test_no_subscription_left_at_the_channel_refuses_the_push_and_zeroes_the_allowance(rt, world, clinic):
    ids = _with_templates(rt, clinic)
    holder = new_holder(rt, world, clinic)
    for _ in range(3):
        subscriptions.record_answers(rt, holder.principal, [ids["wechat"]])
    messaging.receive(rt, clinic.id, MessageKind.BILL_CREATED, holder.card_no, world.his.add_bill(holder.card_no, 1))
    [push] = _pushes(rt, holder.principal.user_id)
    world.messages.fail_next(MessageRefused("43101", "user refuse to accept the msg", no_subscription=True))
    assert messaging.send(rt, push.id) == "refused"
    assert messaging.send(rt, push.id) == "refused" and world.messages.attempts == 1  # never retried
    assert _allowance(rt, holder.principal.user_id, ids["wechat"]) == 0
    [refused] = _pushes(rt, holder.principal.user_id)
    assert refused.last_error.startswith("43101")


def test_other_refusals_end_the_push_but_keep_the_subscription(rt, world, clinic):
    ids = _with_templates(rt, clinic)
    holder = new_holder(rt, world, clinic)
    subscriptions.record_answers(rt, holder.principal, [ids["wechat"]])
    messaging.receive(rt, clinic.id, MessageKind.BILL_CREATED, holder.card_no, world.his.add_bill(holder.card_no, 1))
    [push] = _pushes(rt, holder.principal.user_id)
    world.messages.fail_next(MessageRefused("41030", "invalid page"))
    assert messaging.send(rt, push.id) == "refused"
    assert _allowance(rt, holder.principal.user_id, ids["wechat"]) == 1


def test_one_subscription_pays_for_one_push_the_next_is_refused_without_calling(rt, world, clinic):
    ids = _with_templates(rt, clinic)
    holder = new_holder(rt, world, clinic)
    subscriptions.record_answers(rt, holder.principal, [ids["wechat"]])
    for amount in (100, 200):
        messaging.receive(rt, clinic.id, MessageKind.BILL_CREATED, holder.card_no,
                          world.his.add_bill(holder.card_no, amount))
    first, second = _pushes(rt, holder.principal.user_id)
    assert messaging.send(rt, first.id) == "sent"
    assert messaging.send(rt, second.id) == "refused"
    assert world.messages.attempts == 1
    assert "no_subscription_left" in _pushes(rt, holder.principal.user_id)[1].last_error


def test_the_poller_announces_each_new_bill_of_a_subscribed_card_once(rt, world, clinic):
    ids = _with_templates(rt, clinic)
    subscribed, silent = new_holder(rt, world, clinic), new_holder(rt, world, clinic)
    subscriptions.record_answers(rt, subscribed.principal, [ids["wechat"]])
    subscriptions.record_answers(rt, subscribed.principal, [ids["wechat"]])  # two bills, two messages allowed
    messaging.set_bill_push_mode(rt, clinic.code, "poll")
    first = world.his.add_bill(subscribed.card_no, 700, "检验费")
    world.his.add_bill(silent.card_no, 800)

    world.his.calls.clear()
    assert poll_clinic(rt, clinic.id) == 1
    assert world.his.calls == ["unpaid_bills"]  # the silent holder's card is not read
    assert poll_clinic(rt, clinic.id) == 0
    second = world.his.add_bill(subscribed.card_no, 900, "处方药")
    assert messaging.poll_bills(rt)[clinic.code] == 1
    assert [m.bill_id for m in _messages(rt, subscribed.principal.user_id)] == [first, second]
    assert len(_pushes(rt, subscribed.principal.user_id)) == 2 and _messages(rt, silent.principal.user_id) == []


def test_a_clinic_that_announces_is_not_polled(rt, world, clinic):
    holder = new_holder(rt, world, clinic)
    _with_templates(rt, clinic)
    subscriptions.record_answers(rt, holder.principal, [f"tpl-wx-{clinic.code}"])
    world.his.add_bill(holder.card_no, 700)
    assert clinic.code not in messaging.poll_bills(rt)
    with pytest.raises(InvalidInput) as refused:
        messaging.set_bill_push_mode(rt, clinic.code, "carrier-pigeon")
    assert refused.value.code == "validation_failed"
