"""Online bookings at the front desk: list, read, confirm, no-show, reschedule, cancel, redeem."""
from __future__ import annotations

from flask_smorest import Blueprint

from admin_api.schemas import (
    AppointmentSchema,
    BookingListQuerySchema,
    BookingPageSchema,
    BookingSchema,
    CancelBookingSchema,
    ConfirmSchema,
    RedeemSchema,
    documented_errors,
)
from admin_api.security import ADMIN_PREFIX, STAFF, clinic_scope, current_staff, staff_required
from app.extensions import runtime
from app.idempotent import answer_once
from app.identifiers import use_identifier_converters
from app.services.booking import front_desk, redemption

blp = Blueprint("admin_bookings", __name__, url_prefix=ADMIN_PREFIX, description="Online bookings (staff)")
# `<order_no:...>` answers 404 to anything that is not an order number, before any query.
use_identifier_converters(blp)
_IDEMPOTENCY_HEADER = [{"in": "header", "name": "Idempotency-Key", "required": False,
                        "schema": {"type": "string", "maxLength": 200}}]


def _once(action: str, order_no: str, body: dict, work):
    """Run a write at most once per Idempotency-Key (when sent) and answer with the booking."""
    return answer_once(f"admin:{current_staff().user_id}:{action}:{order_no}", body,
                       lambda: (200, BookingSchema().dump(work())))


@blp.route("/bookings", methods=["GET"])
@staff_required(STAFF)
@blp.arguments(BookingListQuerySchema, location="query")
@blp.response(200, BookingPageSchema)
@documented_errors(blp, 404, 422)
def list_bookings(query):
    """Bookings of your clinics by appointment time: `status=paid` lists those waiting for confirmation."""
    return front_desk.list_bookings(runtime(), clinic_scope(), status=query.get("status"), day=query.get("date"),
                                        channel=query.get("channel"), clinic_code=query.get("clinic_code"),
                                        q=query.get("q"), limit=query["limit"], offset=query["offset"])


@blp.route("/bookings/<order_no:order_no>", methods=["GET"])
@staff_required(STAFF)
@blp.response(200, BookingSchema)
@documented_errors(blp, 404)
def get_booking(order_no):
    """One booking of your clinics."""
    return front_desk.get_booking(runtime(), clinic_scope(), order_no)


CONFIRM_EXAMPLES = {
    "existing_patient": {
        "summary": "a patient the clinic already has",
        "value": {"patient_id": 7, "appointment_at": "2026-12-08T09:30:00+08:00"},
    },
    "new_patient": {
        "summary": "a new patient",
        "value": {
            "new_patient": {"name": "李四", "phone": "13900139000", "relation": "child"},
            "appointment_at": "2026-12-08T09:30:00+08:00",
        },
    },
}


@blp.route("/bookings/<order_no:order_no>/confirm", methods=["POST"])
@staff_required(STAFF)
@blp.doc(parameters=_IDEMPOTENCY_HEADER)
@blp.arguments(ConfirmSchema, examples=CONFIRM_EXAMPLES)
@blp.response(200, BookingSchema)
@documented_errors(blp, 404, 409, 422)
def confirm(body, order_no):
    """Bind a paid booking to an existing patient (`patient_id`) or a new one (`new_patient`; a phone may be
    shared) at `appointment_at`; the HIS registration follows. A booked order may be confirmed again."""
    return _once("confirm", order_no, body, lambda: front_desk.confirm(
        runtime(), current_staff(), order_no, appointment_at=body["appointment_at"],
        patient_id=body.get("patient_id"), new_patient=body.get("new_patient")))


@blp.route("/bookings/<order_no:order_no>/no-show", methods=["POST"])
@staff_required(STAFF)
@blp.response(200, BookingSchema)
@documented_errors(blp, 404, 409)
def no_show(order_no):
    """Mark a booking whose appointment has begun as a no-show (done automatically once it has ended)."""
    return front_desk.mark_no_show(runtime(), current_staff(), order_no)


APPOINTMENT_EXAMPLE = {"appointment_at": "2026-12-09T14:00:00+08:00"}


@blp.route("/bookings/<order_no:order_no>/reschedule", methods=["POST"])
@staff_required(STAFF)
@blp.arguments(AppointmentSchema, example=APPOINTMENT_EXAMPLE)
@blp.response(200, BookingSchema)
@documented_errors(blp, 404, 409, 422)
def reschedule(body, order_no):
    """Move a no-show to today or a later time, so that it can be redeemed then."""
    return front_desk.reschedule(runtime(), current_staff(), order_no, body["appointment_at"])


CANCEL_BOOKING_EXAMPLE = {"reason": "the patient called to cancel"}


@blp.route("/bookings/<order_no:order_no>/cancel", methods=["POST"])
@staff_required(STAFF)
@blp.arguments(CancelBookingSchema, example=CANCEL_BOOKING_EXAMPLE)
@blp.response(200, BookingSchema)
@documented_errors(blp, 404, 409, 422)
def cancel(body, order_no):
    """Cancel a paid booking: its HIS registration is reverted first, then the full amount is refunded."""
    return front_desk.cancel(runtime(), current_staff(), order_no, body["reason"])


REDEEM_EXAMPLE = {"extra_charges": [{"name": "局部麻醉", "amount_fen": 3000}]}


@blp.route("/orders/<order_no:order_no>/redeem", methods=["POST"])
@staff_required(STAFF)
@blp.doc(parameters=_IDEMPOTENCY_HEADER)
@blp.arguments(RedeemSchema, example=REDEEM_EXAMPLE)
@blp.response(200, BookingSchema)
@documented_errors(blp, 404, 409, 422, 503)
def redeem(body, order_no):
    """Redeem (核销) a booking on its appointment day, once; `extra_charges` become unpaid HIS bills. An item that
    requires an attachment needs one on the order or a `no_attachment_reason` (422 `attachment_required`)."""
    return _once("redeem", order_no, body, lambda: redemption.redeem(runtime(), current_staff(), order_no,
                                                                     body["extra_charges"],
                                                                     body.get("no_attachment_reason")))
