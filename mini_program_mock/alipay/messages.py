"""`alipay.open.app.mini.templatemessage.send`: a mini-program template message to one user.

biz_content: `to_user_id` (2088…, 16 digits) or `to_open_id`, `user_template_id`, `page`, `data` (a JSON
*string* of `{"keyword1": {"value": "…"}, …}`), `form_id?`. Success is the signed
`{code: "10000", msg: "Success"}`. Business failures are signed `40004 Business Failed` with these
sub_codes (the sandbox's choice where Alipay's list is not public; the platform should treat any other
sub_code the same way):
- `INVALID_PARAMETER`: a field missing or malformed (neither to_user_id nor to_open_id, a bad user id,
  form_id over 64 characters), or a to_open_id this app has never seen;
- `USER_TEMPLATE_ILLEGAL`: user_template_id is not one of the app's templates;
- `PAGE_ILLEGAL`: page missing or not one of the app's pages;
- `DATA_ILLEGAL`: data not a JSON object string, or its keywords not one to one with the template's,
  or a value empty or over 50 characters;
- `REQUEST_IS_OUT_OF_SUBSCRIBE_LIMIT`: the user has no subscription left for the template (each accept
  through `POST /sandbox/alipay/subscriptions` allows one message).
A delivered message is listed by `GET /sandbox/messages?channel=alipay`.
"""
from __future__ import annotations

import json
import secrets

from ..messages import store
from ..messages.templates import alipay_data_problem, page_allowed, template_of
from .accounts import is_user_id
from .protocol import business_failure, success
from .state import GatewayCall

MAX_FORM_ID_LEN = 64
MAX_OPEN_ID_LEN = 128


def _recipient(call: GatewayCall) -> tuple[str, str | None]:
    """(user_id, open_id) of the addressee."""
    to_user_id, to_open_id = call.biz.get("to_user_id"), call.biz.get("to_open_id")
    if to_user_id not in (None, ""):
        if not is_user_id(to_user_id):
            raise business_failure("INVALID_PARAMETER", "to_user_id应为2088开头的16位数字")
        return to_user_id, None
    if to_open_id in (None, ""):
        raise business_failure("INVALID_PARAMETER", "to_user_id和to_open_id不能同时为空")
    if not isinstance(to_open_id, str) or len(to_open_id) > MAX_OPEN_ID_LEN:
        raise business_failure("INVALID_PARAMETER", "to_open_id格式错误")
    user_id = call.sandbox.accounts.user_of_open_id(call.app_id, to_open_id)
    if user_id is None:
        raise business_failure("INVALID_PARAMETER", "to_open_id无效")
    return user_id, to_open_id


def _data(template: dict, raw: object) -> dict:
    if not isinstance(raw, str):
        raise business_failure("DATA_ILLEGAL", "data应为JSON字符串")
    try:
        data = json.loads(raw)
    except ValueError:
        raise business_failure("DATA_ILLEGAL", "data不是合法的JSON") from None
    problem = alipay_data_problem(template, data)
    if problem:
        raise business_failure("DATA_ILLEGAL", problem)
    return data


def template_message_send(call: GatewayCall) -> dict:
    user_id, open_id = _recipient(call)
    form_id = call.biz.get("form_id")
    if form_id is not None and (not isinstance(form_id, str) or len(form_id) > MAX_FORM_ID_LEN):
        raise business_failure("INVALID_PARAMETER", f"form_id应为不超过{MAX_FORM_ID_LEN}个字符的字符串")
    template = template_of(call.merchant, call.biz.get("user_template_id"))
    if template is None:
        raise business_failure("USER_TEMPLATE_ILLEGAL", "模板不合法")
    page = call.biz.get("page")
    if not isinstance(page, str) or not page or not page_allowed(call.merchant, page):
        raise business_failure("PAGE_ILLEGAL", "page不合法")
    data = _data(template, call.biz.get("data"))
    try:
        store.deliver(call.sandbox.world, channel="alipay", app_id=call.app_id, user_id=user_id,
                      open_id=open_id or call.sandbox.accounts.ensure_user(call.app_id, user_id)["open_id"],
                      template=template, page=page, data=data, msgid=secrets.token_hex(16),
                      extra={"form_id": form_id} if form_id else None)
    except store.NoAllowance:
        raise business_failure("REQUEST_IS_OUT_OF_SUBSCRIBE_LIMIT", "用户未订阅该模板消息或订阅次数已用完") from None
    return success()
