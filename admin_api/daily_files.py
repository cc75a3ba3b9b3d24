"""Daily files finance hands to others (finance): the platform's bill for the HIS of a day, and the card top-ups
one channel app took on a day."""
from __future__ import annotations

from flask import Response
from flask_smorest import Blueprint
from marshmallow import Schema, ValidationError, fields, validate

from admin_api.schemas import ClinicQuerySchema, documented_errors, text
from admin_api.security import ADMIN_PREFIX, FINANCE, current_staff, staff_required
from app.extensions import runtime
from app.services.common.table_export import FORMATS
from app.services.reconciliation import daily_files

blp = Blueprint("admin_daily_files", __name__, url_prefix=ADMIN_PREFIX,
                description="Daily files: the HIS's platform bill and the top-ups of a channel app (finance)")


def _business_day(value) -> None:
    if not 2000 <= value.year <= 2099:
        raise ValidationError("a date between the years 2000 and 2099")


class FileQuerySchema(Schema):
    date = fields.Date(required=True, validate=_business_day, metadata={"description": "the Asia/Shanghai day"})
    format = fields.String(required=True, validate=validate.OneOf(tuple(FORMATS)))


class LedgerQuerySchema(FileQuerySchema, ClinicQuerySchema):
    pass


class TopupsQuerySchema(FileQuerySchema):
    app_id = text(1, 64, required=True, metadata={"description": "the channel app (one of your clinics')"})


class TopupAppSchema(Schema):
    app_id = fields.String(required=True)
    channel = fields.String(required=True)
    name = fields.String(allow_none=True)
    active = fields.Boolean(required=True)
    clinic_code = fields.String(required=True)


def _file_doc(description: str) -> dict:
    return {"responses": {"200": {"description": description,
                                  "content": {mimetype: {"schema": {"type": "string", "format": "binary"}}
                                              for mimetype in FORMATS.values()}}}}


def _send(exported) -> Response:
    response = Response(exported.chunks, mimetype=exported.mimetype)
    response.headers.set("Content-Disposition", "attachment", filename=exported.filename)
    return response


@blp.route("/reports/his-ledger", methods=["GET"])
@staff_required(FINANCE)
@blp.arguments(LedgerQuerySchema, location="query")
@blp.doc(**_file_doc("the HIS writes the platform made that day, as GET /api/his/v1/reconciliation/{date} lists"))
@documented_errors(blp, 404, 422)
def his_ledger(query):
    """Download the day's platform bill for the HIS (what the HIS reads from /api/his/v1/reconciliation/{date})."""
    return _send(daily_files.his_ledger_file(runtime(), current_staff(), query["date"], query["format"],
                                             clinic_code=query.get("clinic_code")))


@blp.route("/reports/topups", methods=["GET"])
@staff_required(FINANCE)
@blp.arguments(TopupsQuerySchema, location="query")
@blp.doc(**_file_doc("every top-up paid through the app that day: out_trade_no, channel trade number, amount, card, "
                     "time, refunds"))
@documented_errors(blp, 404, 422)
def topups(query):
    """Download the card top-ups one channel app took on a day: what a third-party app operator reconciles
    against."""
    return _send(daily_files.topups_file(runtime(), current_staff(), query["date"], query["app_id"], query["format"]))


@blp.route("/reports/channel-apps", methods=["GET"])
@staff_required(FINANCE)
@blp.response(200, TopupAppSchema(many=True))
@documented_errors(blp)
def channel_apps():
    """Your clinics' own channel apps: the apps a top-up file is made for."""
    return daily_files.channel_apps(runtime(), current_staff())
