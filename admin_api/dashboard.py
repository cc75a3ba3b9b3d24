"""GET /api/admin/v1/dashboard: finance's money of today and this month, per day, and reconciliation's state."""
from __future__ import annotations

from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate

from admin_api.schemas import ClinicQuerySchema, documented_errors
from admin_api.security import ADMIN_PREFIX, FINANCE, clinic_scope, staff_required
from app.extensions import runtime
from app.services.reconciliation import dashboard

blp = Blueprint("admin_dashboard", __name__, url_prefix=ADMIN_PREFIX, description="Finance dashboard")


class DashboardQuerySchema(ClinicQuerySchema):
    days = fields.Integer(load_default=dashboard.DEFAULT_DAYS, validate=validate.Range(min=1, max=92),
                          metadata={"description": "how many days the daily series covers, ending today"})


class AmountCountSchema(Schema):
    key = fields.String(required=True, metadata={"description": "a channel, or an order type"})
    amount_fen = fields.Integer(required=True)
    count = fields.Integer(required=True)


class TotalsSchema(Schema):
    amount_fen = fields.Integer(required=True)
    count = fields.Integer(required=True)
    by_channel = fields.List(fields.Nested(AmountCountSchema), required=True)
    by_order_type = fields.List(fields.Nested(AmountCountSchema), required=True)


class PeriodTotalsSchema(Schema):
    today = fields.Nested(TotalsSchema, required=True)
    month = fields.Nested(TotalsSchema, required=True, metadata={"description": "from the 1st to today"})


class DailyAmountSchema(Schema):
    date = fields.String(required=True, metadata={"description": "Asia/Shanghai day, YYYY-MM-DD"})
    channel = fields.String(required=True)
    income_fen = fields.Integer(required=True)
    refund_fen = fields.Integer(required=True)


class LastRunSchema(Schema):
    id = fields.Integer(required=True)
    date = fields.String(required=True)
    status = fields.String(required=True, metadata={"description": "running, done or failed"})
    provisional = fields.Boolean(required=True)
    finished_at = fields.AwareDateTime(allow_none=True)
    matched = fields.Integer(required=True)
    discrepancies = fields.Integer(required=True)
    repaired = fields.Integer(required=True)
    held = fields.Integer(required=True)
    open = fields.Integer(required=True, metadata={"description": "discrepancies waiting for a person"})


class SourceStateSchema(Schema):
    clinic_code = fields.String(required=True)
    source = fields.String(required=True, metadata={"description": "wechat, alipay or his"})
    app_id = fields.String(allow_none=True, metadata={"description": "the channel app, for a channel source"})
    last_run = fields.Nested(LastRunSchema, allow_none=True, required=True,
                             metadata={"description": "the run of the latest business day; null if never run"})


class DashboardSchema(Schema):
    today = fields.String(required=True, metadata={"description": "the Asia/Shanghai date the figures end on"})
    month = fields.String(required=True)
    clinic_codes = fields.List(fields.String(), required=True)
    income = fields.Nested(PeriodTotalsSchema, required=True)
    refunds = fields.Nested(PeriodTotalsSchema, required=True)
    daily = fields.List(fields.Nested(DailyAmountSchema), required=True,
                        metadata={"description": "one row per day and channel, oldest first, zeros included"})
    reconciliation = fields.List(fields.Nested(SourceStateSchema), required=True)


@blp.route("/dashboard", methods=["GET"])
@staff_required(FINANCE)
@blp.arguments(DashboardQuerySchema, location="query")
@blp.response(200, DashboardSchema)
@documented_errors(blp, 404, 422)
def get_dashboard(query):
    """Money of your clinics (or the one named), by Asia/Shanghai day, in fen. Income counts payment attempts
    in status `paid` by the day of their `paid_at` (every payment the channel took, also one refunded later);
    refunds count refunds in status `succeeded` by the day of their `succeeded_at`; both by channel and by order
    type (booking, topup, visit_bill). Also the latest reconciliation run of each source (the HIS and each
    active channel app) with its open discrepancies."""
    return dashboard.dashboard(runtime(), clinic_scope(), query.get("clinic_code"), query["days"])
