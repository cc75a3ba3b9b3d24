"""The message templates and pages of a sandbox mini-program, and the rules their data must follow.

Every sandbox WeChat and Alipay app gets one template per purpose (`bill_created`, `payment_succeeded`,
`refund_succeeded`), listed with the app in `GET /sandbox/merchants` as
`message_templates: [{template_id, title, purpose, fields: [key], labels: {key: label}}]`, and the pages a
message may open (`pages`). Template ids are random per app, like the real ones.

WeChat checks each value by its key's prefix (subscribeMessage.send's keyword rules); a key the template
does not have is refused, and so is a missing one. Alipay keys are keyword1..N, matched one to one.
"""
from __future__ import annotations

import base64
import re
import secrets

PURPOSES = ("bill_created", "payment_succeeded", "refund_succeeded")

DEFAULT_PAGES = ["pages/index/index", "pages/bills/index", "pages/orders/index", "pages/orders/detail",
                 "pages/refunds/detail"]
MAX_PAGE_LEN = 128

_WECHAT_TEMPLATES = [
    ("bill_created", "待缴费提醒",
     [("thing1", "缴费项目"), ("amount2", "待缴金额"), ("time3", "开单时间"), ("thing4", "就诊医院")]),
    ("payment_succeeded", "缴费成功通知",
     [("character_string1", "订单编号"), ("amount2", "支付金额"), ("time3", "支付时间"), ("thing4", "缴费项目")]),
    ("refund_succeeded", "退款成功通知",
     [("character_string1", "订单编号"), ("amount2", "退款金额"), ("time3", "退款时间"), ("phrase4", "退款状态")]),
]

_ALIPAY_TEMPLATES = [
    ("bill_created", "待缴费提醒",
     [("keyword1", "缴费项目"), ("keyword2", "待缴金额"), ("keyword3", "开单时间"), ("keyword4", "就诊医院")]),
    ("payment_succeeded", "缴费成功通知",
     [("keyword1", "订单编号"), ("keyword2", "支付金额"), ("keyword3", "支付时间"), ("keyword4", "缴费项目")]),
    ("refund_succeeded", "退款成功通知",
     [("keyword1", "订单编号"), ("keyword2", "退款金额"), ("keyword3", "退款时间"), ("keyword4", "退款状态")]),
]


def _template(template_id: str, purpose: str, title: str, fields: list[tuple[str, str]]) -> dict:
    return {"template_id": template_id, "title": title, "purpose": purpose, "fields": [k for k, _ in fields],
            "labels": dict(fields)}


def new_wechat_templates() -> list[dict]:
    # A WeChat template id is 43 URL-safe base64 characters.
    return [_template(secrets.token_urlsafe(32), *spec) for spec in _WECHAT_TEMPLATES]


def new_alipay_templates() -> list[dict]:
    # An Alipay user_template_id is base64 of 32 hex digits, as in Alipay's own examples.
    return [_template(base64.b64encode(secrets.token_hex(16).encode()).decode(), *spec) for spec in _ALIPAY_TEMPLATES]


def template_of(app: dict, template_id: object) -> dict | None:
    if not isinstance(template_id, str):
        return None
    return next((t for t in app.get("message_templates", []) if t["template_id"] == template_id), None)


def page_allowed(app: dict, page: str) -> bool:
    """A page is one of the app's pages, optionally followed by a query (`pages/bills/index?card_no=…`)."""
    return len(page) <= MAX_PAGE_LEN and page.split("?", 1)[0] in app.get("pages", DEFAULT_PAGES)


_PAGE_PATH = re.compile(r"[A-Za-z0-9_\-]+(/[A-Za-z0-9_\-]+)*")


def valid_pages(value: object) -> list[str] | None:
    """A page list as configured for an app: 1-50 distinct relative paths without a query; else None."""
    if not isinstance(value, list) or not 0 < len(value) <= 50:
        return None
    if not all(isinstance(p, str) and len(p) <= MAX_PAGE_LEN and _PAGE_PATH.fullmatch(p) for p in value):
        return None
    return list(value) if len(set(value)) == len(value) else None


# --- WeChat keyword rules ---------------------------------------------------------------------------------
_CJK = r"\u3400-\u4dbf\u4e00-\u9fff"
_DATE = r"([0-9]{4}年[0-9]{1,2}月[0-9]{1,2}日|[0-9]{4}-[0-9]{1,2}-[0-9]{1,2}|[0-9]{4}/[0-9]{1,2}/[0-9]{1,2})"
_CLOCK = r"[0-9]{1,2}:[0-9]{2}(:[0-9]{2})?"
_TIME_POINT = rf"({_DATE} )?{_CLOCK}"
_DATE_POINT = rf"{_DATE}( {_CLOCK})?"

# prefix -> (pattern, what WeChat asks for)
WECHAT_KEYWORD_RULES: dict[str, tuple[re.Pattern, str]] = {
    "thing": (re.compile(r".{1,20}", re.S), "at most 20 characters"),
    "number": (re.compile(r"(?=.{1,32}$)[0-9]+(\.[0-9]+)?"), "a number of at most 32 digits"),
    "letter": (re.compile(r"[A-Za-z]{1,32}"), "at most 32 letters"),
    "symbol": (re.compile(r"[^A-Za-z0-9\s" + _CJK + r"]{1,5}"), "at most 5 symbols"),
    "character_string": (re.compile(r"[\x21-\x7e]{1,32}"), "at most 32 ASCII letters, digits or symbols"),
    "time": (re.compile(rf"{_TIME_POINT}(\s*~\s*{_TIME_POINT})?"), "a 24-hour time, optionally with a date"),
    "date": (re.compile(rf"{_DATE_POINT}(\s*~\s*{_DATE_POINT})?"), "a date, optionally with a 24-hour time"),
    "amount": (re.compile(r"[¥￥$]?[0-9]{1,10}(\.[0-9]{1,2})?元?"),
               "a number of at most 10 digits and 2 decimals, optionally ending in 元"),
    "phone_number": (re.compile(r"[0-9+\-() ]{1,17}"), "a phone number of at most 17 digits or symbols"),
    "car_number": (re.compile(r".{1,8}", re.S), "at most 8 characters"),
    "name": (re.compile(rf"[{_CJK}·]{{1,10}}|[A-Za-z .·'-]{{1,20}}"),
             "at most 10 Chinese characters or 20 letters"),
    "phrase": (re.compile(rf"[{_CJK}]{{1,5}}"), "at most 5 Chinese characters"),
}
_KEY = re.compile(r"([a-z_]+?)(\d+)")


def wechat_data_problem(template: dict, data: object) -> str | None:
    """Why `data` does not fit the template (47003's errmsg), or None when it does."""
    if not isinstance(data, dict) or not data:
        return "argument invalid! data is empty"
    for key in data:
        if key not in template["fields"]:
            return f"argument invalid! data.{key} is not a keyword of the template"
    for key in template["fields"]:
        entry = data.get(key)
        if not isinstance(entry, dict) or "value" not in entry:
            return f"argument invalid! data.{key}.value is empty"
        value = entry["value"]
        if value is None or value == "":
            return f"argument invalid! data.{key}.value is empty"
        if not isinstance(value, str):
            return f"argument invalid! data.{key}.value must be a string"
        pattern, wanted = WECHAT_KEYWORD_RULES[_KEY.fullmatch(key).group(1)]
        if not pattern.fullmatch(value):
            return f"argument invalid! data.{key}.value invalid: {wanted}"
    return None


# --- Alipay keyword rules ---------------------------------------------------------------------------------
ALIPAY_MAX_VALUE_LEN = 50


def alipay_data_problem(template: dict, data: object) -> str | None:
    """Why `data` (the parsed JSON of biz_content.data) does not fit the template, or None."""
    if not isinstance(data, dict) or not data:
        return "data不能为空"
    extra = sorted(set(data) - set(template["fields"]))
    if extra:
        return f"data中的{','.join(extra)}不是模板的关键词"
    for key in template["fields"]:
        entry = data.get(key)
        value = entry.get("value") if isinstance(entry, dict) else None
        if not isinstance(value, str) or not value.strip():
            return f"data.{key}.value不能为空"
        if len(value) > ALIPAY_MAX_VALUE_LEN:
            return f"data.{key}.value超过{ALIPAY_MAX_VALUE_LEN}个字符"
    return None
