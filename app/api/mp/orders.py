"""Mini-program orders: place, list, read, pay, cancel, "I paid but it does not show" and the receipt."""
from __future__ import annotations

from flask import Response, request
from flask_smorest import Blueprint

from app.api.mp.order_schemas import (
    CancelOrderSchema,
    CreateOrderSchema,
    InquiredOrderSchema,
    ListOrdersQuerySchema,
    OrderSchema,
    PayResultSchema,
)
from app.api.mp.security import current_principal, current_session, login_required, signed_in
from app.api.schemas import ApiErrorSchema
from app.extensions import runtime
from app.idempotent import HEADER as IDEMPOTENCY_HEADER
from app.idempotent import answer_once
from app.identifiers import use_identifier_converters
from app.services.booking import orders
from app.services.payments import attempts
from app.services.people import confirm_session
from app.services.support import patient_inquiry, patient_receipt

blp = Blueprint("mp_orders", __name__, url_prefix="/api/mp/v1", description="Mini-program orders")
use_identifier_converters(blp)
_AUTH = [{"bearer": []}]
UNAUTHORIZED = "Missing or invalid bearer token"
# One instance for every answer: a schema is costly to build and holds no state between dumps.
_ORDER = OrderSchema()
NO_SUCH_ORDER = "`order_not_found`: no such order of this user (or not an order number at all)"


CREATE_ORDER_EXAMPLES = {
    "booking": {
        "summary": "book a slot of a clinic item",
        "value": {"type": "booking", "item_id": 1, "slot_id": 42, "patient_id": 7, "channel": "wechat"},
    },
    "topup": {
        "summary": "top up a patient card",
        "value": {"type": "topup", "card_no": "D0000001", "amount_fen": 10000, "channel": "alipay"},
    },
    "visit_bill": {
        "summary": "pay unpaid visit bills",
        "value": {"type": "visit_bill", "card_no": "D0000001", "bill_ids": ["B10001", "B10002"], "channel": "wechat"},
    },
}


@blp.route("/orders", methods=["POST"])
@signed_in
@blp.doc(security=_AUTH, parameters=[{"in": "header", "name": "Idempotency-Key", "required": False,
                                      "schema": {"type": "string", "maxLength": 200}}])
@blp.arguments(CreateOrderSchema(), examples=CREATE_ORDER_EXAMPLES)  # built once: a crowd posts here
@blp.response(201, OrderSchema)
@blp.alt_response(401, schema=ApiErrorSchema, description=UNAUTHORIZED)
@blp.alt_response(404, schema=ApiErrorSchema, description="No such item, slot, patient or card of this user")
@blp.alt_response(409, schema=ApiErrorSchema, description="Sold out, bill not payable, or key reused")
@blp.alt_response(422, schema=ApiErrorSchema, description="Invalid order")
@blp.alt_response(503, schema=ApiErrorSchema,
                  description="`his_unavailable`: a visit-bill order reads the bills live from the HIS, which did "
                              "not answer after a few tries; `order_number_unavailable`: three new order numbers in "
                              "a row were taken (not seen in practice); try again after Retry-After")
def create_order(body):
    """Place a booking, card top-up or visit-bill order (a booking holds its place until it expires)."""
    mp_session = current_session()
    if request.headers.get(IDEMPOTENCY_HEADER) is not None:
        # A keyed request's answer is stored: never store one for a session that was logged out.
        confirm_session(runtime(), mp_session)
    return answer_once(f"mp:{mp_session.principal.user_id}:POST /orders", body,
                       lambda: (201, _ORDER.dump(orders.create_order(runtime(), mp_session, body))))


@blp.route("/orders", methods=["GET"])
@login_required
@blp.doc(security=_AUTH)
@blp.arguments(ListOrdersQuerySchema, location="query")
@blp.response(200, OrderSchema(many=True))
@blp.alt_response(401, schema=ApiErrorSchema, description=UNAUTHORIZED)
def list_orders(query):
    """This user's orders, newest first."""
    return orders.list_orders(runtime(), current_principal(), query["limit"], query["offset"])


@blp.route("/orders/<order_no:order_no>", methods=["GET"])
@login_required
@blp.doc(security=_AUTH)
@blp.response(200, OrderSchema)
@blp.alt_response(401, schema=ApiErrorSchema, description=UNAUTHORIZED)
@blp.alt_response(404, schema=ApiErrorSchema, description=NO_SUCH_ORDER)
def get_order(order_no):
    """One of this user's orders."""
    return orders.get_order(runtime(), current_principal(), order_no)


@blp.route("/orders/<order_no:order_no>/pay", methods=["POST"])
@login_required
@blp.doc(security=_AUTH)
@blp.response(200, PayResultSchema)
@blp.alt_response(401, schema=ApiErrorSchema, description=UNAUTHORIZED)
@blp.alt_response(404, schema=ApiErrorSchema, description=NO_SUCH_ORDER)
@blp.alt_response(409, schema=ApiErrorSchema, description="Not payable (paid, closed or expired)")
@blp.alt_response(503, schema=ApiErrorSchema, description="The channel did not answer")
def pay_order(order_no):
    """Start paying: WeChat pay_params for wx.requestPayment, or the Alipay trade_no for my.tradePay."""
    result = attempts.pay_order(runtime(), current_principal(), order_no, request.remote_addr or "127.0.0.1")
    body = {"channel": result.channel, "out_trade_no": result.out_trade_no}
    if result.pay_params:
        body["pay_params"] = result.pay_params
    if result.trade_no:
        body["trade_no"] = result.trade_no
    return body


CANCEL_ORDER_EXAMPLE = {"reason": "时间冲突，改天再约"}


@blp.route("/orders/<order_no:order_no>/cancel", methods=["POST"])
@login_required
@blp.doc(security=_AUTH)
@blp.arguments(CancelOrderSchema, example=CANCEL_ORDER_EXAMPLE)
@blp.response(200, OrderSchema)
@blp.alt_response(401, schema=ApiErrorSchema, description=UNAUTHORIZED)
@blp.alt_response(404, schema=ApiErrorSchema, description=NO_SUCH_ORDER)
@blp.alt_response(409, schema=ApiErrorSchema, description="The order cannot be cancelled")
@blp.alt_response(503, schema=ApiErrorSchema,
                  description="`channel_unavailable`: closing the unpaid trade needs the channel's answer, which "
                              "did not come; try again after Retry-After")
def cancel_order(body, order_no):
    """Cancel an order: an unpaid one at once; a paid booking (until the cancellation deadline) is refunded
    in full along its channel after its HIS registration is reverted."""
    return orders.cancel_order(runtime(), current_principal(), order_no, body.get("reason"))


@blp.route("/orders/<order_no:order_no>/inquiry", methods=["POST"])
@login_required
@blp.doc(security=_AUTH)
@blp.response(200, InquiredOrderSchema)
@blp.alt_response(401, schema=ApiErrorSchema, description=UNAUTHORIZED)
@blp.alt_response(404, schema=ApiErrorSchema, description=NO_SUCH_ORDER)
@blp.alt_response(503, schema=ApiErrorSchema,
                  description="`channel_unavailable`: the channel did not answer; try again after Retry-After")
def inquire(order_no):
    """"I paid but it does not show": the platform asks the channel now and answers with the order. If the channel
    has the money the order is paid at once (its HIS write follows); otherwise it is unchanged, and `inquiry`
    says what to tell the patient."""
    return patient_inquiry(runtime(), current_principal(), order_no)


@blp.route("/orders/<order_no:order_no>/receipt", methods=["GET"])
@login_required
@blp.doc(security=_AUTH, responses={"200": {"description": "the payment receipt",
                                            "content": {"application/pdf": {"schema": {"type": "string",
                                                                                       "format": "binary"}}}}})
@blp.alt_response(401, schema=ApiErrorSchema, description=UNAUTHORIZED)
@blp.alt_response(404, schema=ApiErrorSchema, description=NO_SUCH_ORDER)
@blp.alt_response(409, schema=ApiErrorSchema, description="`no_receipt`: the order has received no money")
def receipt(order_no):
    """The payment receipt of one of this user's paid orders, as a PDF (patient masked, refunds listed)."""
    return pdf_response(patient_receipt(runtime(), current_principal(), order_no))


def pdf_response(receipt) -> Response:
    response = Response(receipt.content, mimetype=receipt.mimetype)
    response.headers.set("Content-Disposition", "attachment", filename=receipt.filename)
    return response
