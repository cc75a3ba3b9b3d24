"""Binding cards as the mini-program does: HIS cards with their holders, and the SMS code step."""
from __future__ import annotations

import re
import secrets
import time
import uuid

import requests

MP = "/api/mp/v1"


def unique_phone() -> str:
    """A mobile number no other test uses, so the per-phone SMS limits of one test never touch another's."""
    return f"15{secrets.randbelow(10**9):09d}"


def his_card(sandbox, name: str | None = None, phone: str | None = None, id_number: str | None = None,
             balance_fen: int = 0) -> dict:
    """A new HIS patient with a card (the sandbox's control API): the card plus `name`, `phone` of its holder."""
    name = name or f"卡主{uuid.uuid4().hex[:6]}"
    phone = phone or unique_phone()
    body = {"name": name, "phone": phone, "balance_fen": balance_fen, **({"id_number": id_number} if id_number else {})}
    resp = requests.post(f"{sandbox.url}/sandbox/his/cards", json=body, timeout=5)
    assert resp.status_code == 201, resp.text
    return {**resp.json(), "name": name, "phone": phone}


def texts(sandbox, phone: str) -> list[dict]:
    """What the sandbox SMS provider delivered to this phone, oldest first."""
    resp = requests.get(f"{sandbox.url}/sandbox/sms", params={"phone": phone}, timeout=5)
    assert resp.status_code == 200, resp.text
    return resp.json()


def code_in(message: dict) -> str:
    """The 6-digit code in a text, read as the patient reads it."""
    return re.search(r"(?<![0-9])[0-9]{6}(?![0-9])", message["text"]).group()


def ask_code(client, headers: dict, patient_id: int, card_no: str):
    return client.post(f"{MP}/patients/{patient_id}/cards", json={"card_no": card_no}, headers=headers)


def send_code(client, headers: dict, patient_id: int, card_no: str, code: str):
    return client.post(f"{MP}/patients/{patient_id}/cards", json={"card_no": card_no, "sms_code": code},
                       headers=headers)


def bind(client, sandbox, headers: dict, patient_id: int, card_no: str, phone: str):
    """Ask for the code, read it from the phone's texts, send it back: the response of the last step.

    The sandbox's demo cards are bound by many tests; a code texted to the same phone a moment ago is
    waited out (the test settings allow one a second), as a patient waits for the resend button."""
    before = len(texts(sandbox, phone))
    asked = ask_code(client, headers, patient_id, card_no)
    if asked.status_code == 429 and int(asked.headers["Retry-After"]) <= 5:
        time.sleep(int(asked.headers["Retry-After"]))
        asked = ask_code(client, headers, patient_id, card_no)
    assert asked.status_code == 202, asked.get_json()
    fresh = texts(sandbox, phone)[before:]
    assert fresh, f"no text reached {phone}"
    return send_code(client, headers, patient_id, card_no, code_in(fresh[-1]))
