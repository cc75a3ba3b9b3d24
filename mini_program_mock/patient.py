"""The scripted patient: a whole mini-program flow against the running platform and sandbox.

    python -m mini_program_mock.patient --channel wechat|alipay --flow booking|topup|bills

It does what the mini-program and the patient would do: log in (the sandbox
issues the wx.login / my.getAuthCode code), keep a patient and card, place an
order, pay it (the sandbox stands in for the payment sheet), wait for the
platform to finish, and print the HIS's view of the result. It speaks HTTP only.
"""
from __future__ import annotations

import argparse
import json
import re
import sys
import time
import uuid
from datetime import datetime, timedelta, timezone

import requests

SHANGHAI = timezone(timedelta(hours=8))


class FlowError(RuntimeError):
    pass


class MiniProgramClient:
    def __init__(self, platform_url: str, sandbox_url: str, channel: str, clinic_code: str = "demo",
                 say=print) -> None:
        self.platform = platform_url.rstrip("/")
        self.sandbox = sandbox_url.rstrip("/")
        self.channel = channel
        self.clinic_code = clinic_code
        self.say = say
        self.http = requests.Session()
        self.token: str | None = None

    # --- plumbing ---------------------------------------------------------------------------
    def call(self, method: str, path: str, expect: tuple[int, ...] = (200, 201), **kwargs) -> dict | list:
        headers = kwargs.pop("headers", {})
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        resp = self.http.request(method, f"{self.platform}/api/mp/v1{path}", headers=headers, timeout=30, **kwargs)
        body = resp.json() if resp.content else {}
        if resp.status_code not in expect:
            raise FlowError(f"{method} {path} -> {resp.status_code}: {body}")
        return body

    def sandbox_call(self, method: str, path: str, **kwargs):
        resp = self.http.request(method, f"{self.sandbox}{path}", timeout=30, **kwargs)
        if resp.status_code >= 400:
            raise FlowError(f"sandbox {method} {path} -> {resp.status_code}: {resp.text[:300]}")
        return resp.json()

    def merchant(self) -> dict:
        merchants = self.sandbox_call("GET", "/sandbox/merchants")[self.channel]
        return next(m for m in merchants if m.get("clinic_code") == self.clinic_code)

    # --- steps ------------------------------------------------------------------------------
    def login(self, user_label: str | None = None) -> dict:
        merchant = self.merchant()
        if self.channel == "wechat":
            who = {"openid": user_label} if user_label else {}
            issued = self.sandbox_call("POST", "/sandbox/wechat/codes", json={"appid": merchant["appid"], **who})
        else:
            who = {"user_id": user_label} if user_label else {}
            issued = self.sandbox_call("POST", "/sandbox/alipay/codes", json={"app_id": merchant["app_id"], **who})
        session = self.call("POST", "/auth/login", json={"clinic_code": self.clinic_code, "channel": self.channel,
                                                         "code": issued["code"]})
        self.token = session["token"]
        return session

    def patient_with_card(self, card_no: str) -> tuple[dict, str]:
        """A patient of this user holding the HIS card (named as the HIS knows its holder)."""
        his_card = self.sandbox_call("GET", f"/sandbox/cards/{card_no}")
        for patient in self.call("GET", "/patients"):
            if any(c["card_no"] == card_no for c in patient["cards"]):
                return patient, card_no
        holder = his_card["patient"]
        patient = self.call("POST", "/patients", json={"name": holder["name"], "phone": holder["phone"],
                                                       "relation": "self"})
        self.bind_card(patient["id"], card_no, holder["phone"])
        return patient, card_no

    def bind_card(self, patient_id: int, card_no: str, phone: str) -> dict:
        """Bind the card as a patient does: ask for the code, read it on the phone, send it back.

        A 429 (the phone had a code a moment ago) is waited out once, as the patient waits for the
        resend button's countdown."""
        path = f"/patients/{patient_id}/cards"
        seen = {m["request_id"] for m in self.texts(phone)}
        asked = self.call("POST", path, json={"card_no": card_no}, expect=(200, 202, 429))
        if asked.get("error") == "sms_rate_limited":
            wait_s = asked["errors"]["retry_after_s"]
            if wait_s > 120:
                raise FlowError(f"binding {card_no}: no code for {wait_s} s ({asked['message']})")
            self.say(f"a code was sent to this phone a moment ago; waiting {wait_s} s to ask again")
            time.sleep(wait_s)
            asked = self.call("POST", path, json={"card_no": card_no}, expect=(200, 202))
        if asked.get("verification") != "sms":
            return asked  # bound already
        self.say(f"binding {card_no}: a code was texted to {asked['sent_to']}")
        code = self.read_code(phone, seen)
        return self.call("POST", path, json={"card_no": card_no, "sms_code": code})

    def texts(self, phone: str) -> list[dict]:
        """The text messages on this phone (the sandbox SMS provider's outbox for it), oldest first."""
        return self.sandbox_call("GET", "/sandbox/sms", params={"phone": phone})

    def read_code(self, phone: str, seen: set[str], timeout: float = 10.0) -> str:
        """The code of the newest text on the phone that was not there before."""
        deadline = time.monotonic() + timeout
        while True:
            fresh = [m for m in self.texts(phone) if m["request_id"] not in seen]
            found = re.search(r"(?<![0-9])[0-9]{6}(?![0-9])", fresh[-1]["text"]) if fresh else None
            if found:
                return found.group()
            if time.monotonic() > deadline:
                raise FlowError(f"no text message reached {phone[:3]}****{phone[-4:]} within {timeout}s")
            time.sleep(0.2)

    def pay(self, order_no: str, outcome: str = "success") -> dict:
        pay = self.call("POST", f"/orders/{order_no}/pay")
        if self.channel == "wechat":
            prepay_id = pay["pay_params"]["package"].removeprefix("prepay_id=")
            self.sandbox_call("POST", "/sandbox/wechat/pay", json={"prepay_id": prepay_id, "outcome": outcome})
        else:
            self.sandbox_call("POST", "/sandbox/alipay/pay", json={"trade_no": pay["trade_no"], "outcome": outcome})
        return pay

    def wait_for(self, order_no: str, statuses: set[str], timeout: float = 60.0) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            order = self.call("GET", f"/orders/{order_no}")
            if order["status"] in statuses:
                return order
            if time.monotonic() > deadline:
                raise FlowError(f"order {order_no} is still {order['status']} after {timeout}s")
            time.sleep(0.3)

    def his_records(self, order_no: str) -> list[dict]:
        today = datetime.now(SHANGHAI).date()
        rows = []
        for day in (today - timedelta(days=1), today, today + timedelta(days=1)):
            rows += self.sandbox_call("GET", "/sandbox/his/records", params={"date": day.isoformat()})
        return [r for r in rows if r["order_no"] == order_no]

    # --- flows ------------------------------------------------------------------------------
    def booking(self) -> dict:
        patient = self.call("POST", "/patients", json={"name": "王小明", "phone": "13900001234", "relation": "self"})
        self.say(f"patient {patient['id']} {patient['name']} {patient['phone']}")
        item = self.call("GET", "/items")[0]
        tomorrow = (datetime.now(SHANGHAI) + timedelta(days=1)).date().isoformat()
        slot = next(s for s in self.call("GET", f"/items/{item['id']}/slots", params={"date": tomorrow})
                    if s["remaining"] > 0)
        self.say(f"booking {item['name']} at {slot['starts_at']} ({slot['remaining']} places left)")
        order = self.call("POST", "/orders", json={"type": "booking", "item_id": item["id"], "slot_id": slot["id"],
                                                   "patient_id": patient["id"], "channel": self.channel},
                          headers={"Idempotency-Key": uuid.uuid4().hex})
        return self._pay_and_finish(order, {"paid", "booked"})

    def topup(self, card_no: str = "D0000004", amount_fen: int = 10000) -> dict:
        _patient, card_no = self.patient_with_card(card_no)
        before = self.call("GET", f"/cards/{card_no}")["balance_fen"]
        self.say(f"card {card_no} balance {before / 100:.2f} yuan; topping up {amount_fen / 100:.2f}")
        order = self.call("POST", "/orders", json={"type": "topup", "card_no": card_no, "amount_fen": amount_fen,
                                                   "channel": self.channel})
        done = self._pay_and_finish(order, {"completed"})
        self.say(f"card {card_no} balance now {self.call('GET', f'/cards/{card_no}')['balance_fen'] / 100:.2f} yuan")
        return done

    def bills(self, card_no: str = "D0000005") -> dict:
        _patient, card_no = self.patient_with_card(card_no)
        bills = self.call("GET", f"/cards/{card_no}/bills")
        if not bills:
            self.sandbox_call("POST", "/sandbox/his/bills", json={"card_no": card_no, "kind": "lab",
                                                                 "title": "血常规 Blood count", "amount_fen": 3500})
            bills = self.call("GET", f"/cards/{card_no}/bills")
        for bill in bills:
            self.say(f"unpaid bill {bill['bill_id']} {bill['title']} {bill['amount_fen'] / 100:.2f}")
        order = self.call("POST", "/orders", json={"type": "visit_bill", "card_no": card_no, "channel": self.channel,
                                                   "bill_ids": [b["bill_id"] for b in bills]})
        done = self._pay_and_finish(order, {"completed"})
        self.say(f"unpaid bills left on {card_no}: {len(self.call('GET', f'/cards/{card_no}/bills'))}")
        return done

    def _pay_and_finish(self, order: dict, final: set[str]) -> dict:
        self.say(f"order {order['order_no']} {order['type']} {order['amount_fen'] / 100:.2f} yuan, {order['status']}")
        pay = self.pay(order["order_no"])
        self.say(f"paid through {self.channel} ({pay['out_trade_no']}); waiting for the platform")
        order = self.wait_for(order["order_no"], final)
        self.say(f"order {order['order_no']} is {order['status']}")
        return order


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="mini_program_mock.patient", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--channel", choices=["wechat", "alipay"], required=True)
    parser.add_argument("--flow", choices=["booking", "topup", "bills"], required=True)
    parser.add_argument("--platform", default="http://127.0.0.1:8000")
    parser.add_argument("--sandbox", default="http://127.0.0.1:8100")
    parser.add_argument("--clinic", default="demo")
    args = parser.parse_args(argv)
    client = MiniProgramClient(args.platform, args.sandbox, args.channel, args.clinic,
                               say=lambda line: print(f"[patient] {line}", flush=True))
    try:
        session = client.login()
        print(f"[patient] logged in through {args.channel} as user {session['user']['id']}", flush=True)
        order = getattr(client, args.flow)()
        deadline = time.monotonic() + 30
        records = client.his_records(order["order_no"])
        while not records and time.monotonic() < deadline:
            time.sleep(0.5)
            records = client.his_records(order["order_no"])
        print("[his] what the HIS recorded for this order:", flush=True)
        print(json.dumps(records, ensure_ascii=False, indent=2), flush=True)
    except FlowError as exc:
        print(f"[patient] failed: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
