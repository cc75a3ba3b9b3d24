"""Channel notify endpoints: no auth, signatures only. Thin: the body goes to the notifications service.

When the database does not answer, the channel gets its FAIL form with a 503 and Retry-After: it sends the
notification again (WeChat Pay and Alipay retry anything but their success answer)."""
from __future__ import annotations

from flask import Response, request
from flask_smorest import Blueprint

from app.channels.base import NotificationKind
from app.errors import DATABASE_RETRY_AFTER_S
from app.extensions import runtime
from app.services.payments import notifications

blp = Blueprint("notify", __name__, url_prefix="/notify", description="Channel notifications (signed)")

_RETRY_AFTER = {"Retry-After": {"description": "seconds to wait", "schema": {"type": "integer"}}}
_XML_BODY = {"requestBody": {"required": True, "content": {"text/xml": {"schema": {"type": "string"}}}},
             "responses": {"200": {"description": "SUCCESS or FAIL, as the channel expects",
                                   "content": {"text/xml": {"schema": {"type": "string"}}}},
                           "503": {"description": "`database_unavailable`: FAIL, the channel sends it again",
                                   "headers": _RETRY_AFTER, "content": {"text/xml": {"schema": {"type": "string"}}}}}}
_FORM_BODY = {"requestBody": {"required": True, "content": {
    "application/x-www-form-urlencoded": {"schema": {"type": "object", "additionalProperties": {"type": "string"}}}}},
    "responses": {"200": {"description": "`success`, or `fail` to be sent again",
                          "content": {"text/plain": {"schema": {"type": "string"}}}},
                  "503": {"description": "`database_unavailable`: `fail`, Alipay sends it again",
                          "headers": _RETRY_AFTER, "content": {"text/plain": {"schema": {"type": "string"}}}}}}

MAX_BODY = 64 * 1024


def _answer(channel: str, clinic_code: str, kind: NotificationKind | None) -> Response:
    body = request.get_data(cache=False)[:MAX_BODY]
    result = notifications.ingest(runtime(), channel, clinic_code, body, request.content_type, kind)
    response = Response(result.reply, status=result.status, content_type=result.content_type)
    if result.status == 503:
        response.headers["Retry-After"] = str(DATABASE_RETRY_AFTER_S)
    return response


@blp.route("/wechat/<string:clinic_code>/pay", methods=["POST"])
@blp.doc(**_XML_BODY)
def wechat_pay(clinic_code):
    """WeChat Pay v2 payment notification."""
    return _answer("wechat", clinic_code, NotificationKind.PAYMENT)


@blp.route("/wechat/<string:clinic_code>/refund", methods=["POST"])
@blp.doc(**_XML_BODY)
def wechat_refund(clinic_code):
    """WeChat Pay v2 refund notification (encrypted req_info)."""
    return _answer("wechat", clinic_code, NotificationKind.REFUND)


@blp.route("/alipay/<string:clinic_code>", methods=["POST"])
@blp.doc(**_FORM_BODY)
def alipay(clinic_code):
    """Alipay asynchronous notification (payments and refunds)."""
    return _answer("alipay", clinic_code, None)
