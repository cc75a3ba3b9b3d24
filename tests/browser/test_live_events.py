"""The front desk's console pops up when a patient books and pays, while the page is open: the booking's pop-up,
the waiting count and the list, without a refresh; staff of another clinic, whose page is open too, see only their
own clinic's booking. The patients book and pay through the mini-program API and the sandbox's payment, in
clinics of the test's own (their own sandbox merchants and HIS keys)."""
from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta

import pytest

from app.db.models import Item, ItemInventory, Slot
from mini_program_mock.patient import MiniProgramClient
from tests.api.mp_helpers import channel_user_id
from tests.browser.helpers import row, screenshot
from tests.integration.reconciliation_support import OwnClinic, own_clinic

POP_UP = ".el-notification.live-booking-paid"
# Records each sound the page plays (its source's scheme) and whether the browser played it.
LISTEN_FOR_SOUNDS = """
window.__sounds = [];
const play = HTMLMediaElement.prototype.play;
HTMLMediaElement.prototype.play = function () {
  const sound = { src: this.src.slice(0, 22), outcome: 'pending' };
  window.__sounds.push(sound);
  const playing = play.call(this);
  playing.then(() => { sound.outcome = 'played'; }, (error) => { sound.outcome = error.name; });
  return playing;
};
"""


@pytest.fixture()
def clinics(rt, sandbox) -> tuple[OwnClinic, OwnClinic]:
    return own_clinic(rt, sandbox.url), own_clinic(rt, sandbox.url)


def _book_and_pay(platform, sandbox, rt, clinic: OwnClinic, channel: str) -> str:
    """A patient books the clinic's item in the mini-program and pays; the paid order's number."""
    with rt.db.session() as session:
        item = Item(clinic_id=clinic.id, code=f"LV{secrets.token_hex(3)}", name="美白套餐", price_fen=3000)
        session.add(item)
        session.flush()
        session.add(ItemInventory(item_id=item.id, channel=channel, quantity=10, reserved=0))
        starts = (datetime.now(UTC) + timedelta(days=3)).replace(second=0, microsecond=0)
        slot = Slot(item_id=item.id, starts_at=starts, ends_at=starts + timedelta(hours=1), capacity=2, reserved=0)
        session.add(slot)
        session.flush()
        item_id, slot_id = item.id, slot.id
    mp = MiniProgramClient(platform.url, sandbox.url, channel, clinic_code=clinic.code, say=lambda _line: None)
    mp.login(channel_user_id(channel, f"live-{secrets.token_hex(4)}"))
    patient = mp.call("POST", "/patients", json={"name": "陈晨", "phone": "13911112222", "relation": "self"})
    order = mp.call("POST", "/orders", json={"type": "booking", "item_id": item_id, "slot_id": slot_id,
                                             "patient_id": patient["id"], "channel": channel})
    mp.pay(order["order_no"])
    return order["order_no"]


def test_the_desk_pops_up_for_a_paid_booking_of_its_clinic_and_not_for_another_clinics(
        console, platform, sandbox, rt, make_user, clinics):
    ours, theirs = clinics
    desk = console.sign_in(*make_user("staff", (ours.code,)), "bookings/pending")
    elsewhere = console.sign_in(*make_user("staff", (theirs.code,)), "bookings/pending")
    desk.add_init_script(LISTEN_FOR_SOUNDS)
    desk.reload()  # (the session stays: it is the tab's)
    for page in (desk, elsewhere):
        page.get_by_text("没有等待确认的预约").wait_for()
        page.get_by_test_id("waiting-count").wait_for()

    order_no = _book_and_pay(platform, sandbox, rt, ours, "wechat")
    pop_up = desk.locator(POP_UP, has_text=order_no)
    pop_up.wait_for(timeout=30_000)
    shown = pop_up.inner_text()
    assert "新预约已付款" in shown and "美白套餐" in shown and "¥30.00" in shown
    # A function, not a bare expression: Playwright evals the string in the page, which the console's CSP (no
    # 'unsafe-eval') allows only on the first check; a function is evaluated once and then called on each poll.
    desk.wait_for_function("() => window.__sounds.length === 1 && window.__sounds[0].outcome !== 'pending'")
    [sound] = desk.evaluate("window.__sounds")
    # The chime is made in the page: nothing is fetched, and the page's CSP lets it play (a refusal for want of a
    # click on this page would be the browser's autoplay rule, which a real desk meets by signing in).
    assert sound["src"] == "data:audio/wav;base64," and sound["outcome"] in ("played", "NotAllowedError")
    row(desk, "bookings-table", order_no).wait_for()  # the list took it in by itself
    assert desk.get_by_test_id("pending-count").inner_text() == "1"
    assert "1" in desk.get_by_test_id("waiting-count").inner_text()
    screenshot(desk, "staff-live-booking-paid")

    # The other clinic's desk hears of its own booking (paid after ours), and never of ours.
    their_order = _book_and_pay(platform, sandbox, rt, theirs, "alipay")
    elsewhere.locator(POP_UP, has_text=their_order).wait_for(timeout=30_000)
    assert elsewhere.locator(POP_UP, has_text=order_no).count() == 0
    assert desk.locator(POP_UP, has_text=their_order).count() == 0
    # The pop-up shows at the event; the list (and its count) follows after its own fetch, as on our desk above.
    row(elsewhere, "bookings-table", their_order).wait_for()
    assert elsewhere.get_by_test_id("pending-count").inner_text() == "1"
