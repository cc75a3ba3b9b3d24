"""The SMS provider stand-in: the provider's HTTP API under /sms/, and the phones' inboxes under /sandbox/sms.

    POST /sms/v1/send
    X-Sms-App-Key, X-Sms-Timestamp (unix seconds, within 300 s), X-Sms-Nonce (8 to 64 characters, once),
    X-Sms-Signature: hex HMAC-SHA256(secret, app_key + "\\n" + timestamp + "\\n" + nonce + "\\n" + raw_body)
    {"phone", "sign_name", "template_code", "params": {"code"}, "out_id"?}
    -> 200 {"code": "OK", "request_id"}; out_id is the sender's reference, kept with the text (not a key).
    -> 401 APP_KEY_UNKNOWN | SIGNATURE_INVALID | TIMESTAMP_EXPIRED | NONCE_REUSED
    -> 400 BODY_INVALID | PHONE_INVALID | SIGN_NAME_UNKNOWN | TEMPLATE_UNKNOWN | PARAMS_INVALID
    -> 429 PHONE_THROTTLED {retry_after_s} while `POST /sandbox/sms/throttle` says so. (A real provider
       throttles a phone after a text a minute or ten a day; the platform's own limits come first, so the
       stand-in throttles only when told to, as when another sender used up the phone's quota.)

Accounts (app_key, secret, sign_name, template_code) are listed under `sms` in GET /sandbox/merchants;
the first is a fixed demo account, which the platform uses by default outside production.

Control: `GET /sandbox/sms?phone=` the texts sent to that phone (newest last; every phone without it);
`POST /sandbox/sms/throttle {phone, seconds}` the provider refuses texts to that phone for that long
(as when another sender used up the phone's quota); `DELETE /sandbox/sms/throttle` lifts every one.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
import time
from datetime import datetime

from flask import Blueprint, Flask, current_app, jsonify, request

from .world import SHANGHAI, current_world

DEMO_ACCOUNT = {"app_key": "sandbox-sms-demo", "secret": "sandbox-sms-demo-secret-not-for-production",
                "sign_name": "诊所支付", "template_code": "SMS_CARD_BIND"}
TEMPLATE_TEXT = "【{sign_name}】您的验证码为{code}，用于绑定就诊卡，5分钟内有效。如非本人操作，请忽略本短信。"
TIMESTAMP_WINDOW_S = 300
_PHONE = re.compile(r"1[3-9][0-9]{9}")
_CODE = re.compile(r"[0-9]{4,8}")

SCHEMA = """
CREATE TABLE IF NOT EXISTS sms_messages (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    request_id TEXT NOT NULL UNIQUE,
    app_key TEXT NOT NULL,
    out_id TEXT,
    phone TEXT NOT NULL,
    sign_name TEXT NOT NULL,
    template_code TEXT NOT NULL,
    params TEXT NOT NULL,
    text TEXT NOT NULL,
    sent_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS ix_sms_messages_phone ON sms_messages(phone, id);
CREATE TABLE IF NOT EXISTS sms_nonces (
    app_key TEXT NOT NULL,
    nonce TEXT NOT NULL,
    seen_at REAL NOT NULL,
    PRIMARY KEY (app_key, nonce)
);
CREATE TABLE IF NOT EXISTS sms_throttles (
    phone TEXT PRIMARY KEY,
    until REAL NOT NULL
);
"""

api = Blueprint("sandbox_sms", __name__, url_prefix="/sms")
control = Blueprint("sandbox_sms_control", __name__, url_prefix="/sandbox/sms")


def new_sms_account() -> dict:
    return {"app_key": f"sms-{secrets.token_hex(4)}", "secret": secrets.token_hex(24),
            "sign_name": DEMO_ACCOUNT["sign_name"], "template_code": DEMO_ACCOUNT["template_code"]}


def sign(secret: str, app_key: str, timestamp: str, nonce: str, body: bytes) -> str:
    return hmac.new(secret.encode(), f"{app_key}\n{timestamp}\n{nonce}\n".encode() + body, hashlib.sha256).hexdigest()


def _mask(phone: str) -> str:
    return f"{phone[:3]}****{phone[-4:]}" if len(phone) >= 7 else "*" * len(phone)


def _error(status: int, code: str, message: str, **extra):
    current_world().log("sms", status=status, code=code, **extra)
    return jsonify(code=code, message=message, **extra), status


def _authenticated_account(body: bytes) -> tuple[dict | None, tuple | None]:
    """The account that signed this request, or the refusal to answer."""
    app_key = request.headers.get("X-Sms-App-Key", "")
    timestamp = request.headers.get("X-Sms-Timestamp", "")
    nonce = request.headers.get("X-Sms-Nonce", "")
    signature = request.headers.get("X-Sms-Signature", "")
    account = current_app.extensions["sandbox_merchants"].get("sms", app_key) if app_key else None
    if account is None:
        return None, _error(401, "APP_KEY_UNKNOWN", "X-Sms-App-Key names no account")
    expected = sign(account["secret"], app_key, timestamp, nonce, body)
    if not hmac.compare_digest(expected.encode(), signature.encode("utf-8", "replace")):
        return None, _error(401, "SIGNATURE_INVALID", "X-Sms-Signature does not match the request")
    if not timestamp.isdigit() or abs(time.time() - int(timestamp)) > TIMESTAMP_WINDOW_S:
        return None, _error(401, "TIMESTAMP_EXPIRED", f"X-Sms-Timestamp must be within {TIMESTAMP_WINDOW_S} s of now")
    if not 8 <= len(nonce) <= 64:
        return None, _error(401, "NONCE_REUSED", "X-Sms-Nonce must be 8 to 64 characters, used once")
    with current_world().tx() as conn:
        conn.execute("DELETE FROM sms_nonces WHERE seen_at < ?", (time.time() - 2 * TIMESTAMP_WINDOW_S,))
        fresh = conn.execute("INSERT OR IGNORE INTO sms_nonces(app_key, nonce, seen_at) VALUES (?, ?, ?)",
                             (app_key, nonce, time.time())).rowcount == 1
    if not fresh:
        return None, _error(401, "NONCE_REUSED", "this X-Sms-Nonce was used already")
    return account, None


def _valid_send(account: dict, body: bytes) -> tuple[dict | None, tuple | None]:
    try:
        data = json.loads(body)
    except ValueError:
        data = None
    if not isinstance(data, dict):
        return None, _error(400, "BODY_INVALID", "a JSON object is required")
    phone, params, out_id = data.get("phone"), data.get("params"), data.get("out_id")
    if not isinstance(phone, str) or not _PHONE.fullmatch(phone):
        return None, _error(400, "PHONE_INVALID", "phone must be a mainland mobile number")
    if data.get("sign_name") != account["sign_name"]:
        return None, _error(400, "SIGN_NAME_UNKNOWN", "sign_name is not approved for this account")
    if data.get("template_code") != account["template_code"]:
        return None, _error(400, "TEMPLATE_UNKNOWN", "template_code is not approved for this account")
    if not isinstance(params, dict) or set(params) != {"code"} or not isinstance(params["code"], str) \
            or not _CODE.fullmatch(params["code"]):
        return None, _error(400, "PARAMS_INVALID", "params must be {\"code\": \"<4 to 8 digits>\"}")
    if out_id is not None and (not isinstance(out_id, str) or not 1 <= len(out_id) <= 64):
        return None, _error(400, "BODY_INVALID", "out_id must be 1 to 64 characters")
    return data, None


@api.post("/v1/send")
def send():
    body = request.get_data()
    account, refusal = _authenticated_account(body)
    if refusal:
        return refusal
    data, refusal = _valid_send(account, body)
    if refusal:
        return refusal
    world = current_world()
    phone, out_id = data["phone"], data.get("out_id")
    with world.tx() as conn:
        sent, retry_after = _record(conn, account, data)
    if retry_after:
        world.log("sms", status=429, code="PHONE_THROTTLED", phone=_mask(phone))
        return jsonify(code="PHONE_THROTTLED", message="too many texts to this phone", retry_after_s=retry_after), 429
    world.log("sms", status=200, code="OK", phone=_mask(phone), request_id=sent, out_id=out_id)
    return jsonify(code="OK", request_id=sent)


def _record(conn, account: dict, data: dict) -> tuple[str | None, int | None]:
    """(request_id, None) for a text sent, (None, seconds to wait) when the phone is throttled."""
    phone, out_id = data["phone"], data.get("out_id")
    now = time.time()
    throttled = conn.execute("SELECT until FROM sms_throttles WHERE phone = ? AND until > ?", (phone, now)).fetchone()
    if throttled:
        return None, max(1, int(throttled["until"] - now + 0.999))
    request_id = f"SMS{secrets.token_hex(10).upper()}"
    text = TEMPLATE_TEXT.format(sign_name=data["sign_name"], code=data["params"]["code"])
    conn.execute("INSERT INTO sms_messages(request_id, app_key, out_id, phone, sign_name, template_code, params,"
                 " text, sent_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                 (request_id, account["app_key"], out_id, phone, data["sign_name"], data["template_code"],
                  json.dumps(data["params"]), text, now))
    return request_id, None


@control.get("")
def inbox():
    phone = request.args.get("phone")
    where, args = ("WHERE phone = ?", (phone,)) if phone else ("", ())
    rows = current_world().query(
        f"SELECT * FROM (SELECT * FROM sms_messages {where} ORDER BY id DESC LIMIT 200) ORDER BY id", args)
    return jsonify([{"request_id": r["request_id"], "phone": r["phone"], "sign_name": r["sign_name"],
                     "template_code": r["template_code"], "params": json.loads(r["params"]), "text": r["text"],
                     "out_id": r["out_id"],
                     "sent_at": datetime.fromtimestamp(r["sent_at"], SHANGHAI).isoformat()} for r in rows])


@control.post("/throttle")
def throttle():
    body = request.get_json(silent=True) or {}
    phone, seconds = body.get("phone"), body.get("seconds", 3600)
    if not isinstance(phone, str) or not _PHONE.fullmatch(phone):
        return jsonify(message="phone must be a mainland mobile number"), 422
    if not isinstance(seconds, (int, float)) or isinstance(seconds, bool) or not 0 < seconds <= 86400:
        return jsonify(message="seconds must be a number from 1 to 86400"), 422
    with current_world().tx() as conn:
        conn.execute("INSERT INTO sms_throttles(phone, until) VALUES (?, ?) "
                     "ON CONFLICT(phone) DO UPDATE SET until = excluded.until", (phone, time.time() + seconds))
    return jsonify(phone=phone, seconds=seconds)


@control.delete("/throttle")
def lift_throttles():
    with current_world().tx() as conn:
        conn.execute("DELETE FROM sms_throttles")
    return jsonify(status="ok")


def register(app: Flask) -> None:
    world = app.extensions["sandbox_world"]
    world.execute_script(SCHEMA)
    merchants = app.extensions["sandbox_merchants"]
    if merchants.get("sms", DEMO_ACCOUNT["app_key"]) is None:
        merchants.add("sms", dict(DEMO_ACCOUNT))
    app.register_blueprint(api)
    app.register_blueprint(control)
