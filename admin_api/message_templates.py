"""The message templates of a channel app: which template of the channel's console serves each purpose, which of
our facts each of its keywords shows, and the page a message opens.

Admins of the app's clinic set them until the operator role exists (operator onboarding); then the operator."""
from __future__ import annotations

from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate

from admin_api.schemas import documented_errors, text
from admin_api.security import ADMIN, ADMIN_PREFIX, clinic_scope, current_staff, staff_required
from app.domain.messaging import DEFAULT_PAGE, SOURCES, Purpose
from app.extensions import runtime
from app.services.messaging import templates

blp = Blueprint("admin_message_templates", __name__, url_prefix=ADMIN_PREFIX,
                description="Message templates of a channel app")

_SOURCES_DOC = "; ".join(f"{purpose}: {', '.join(names)}" for purpose, names in SOURCES.items())


class MessageTemplateInSchema(Schema):
    template_id = text(1, templates.TEMPLATE_ID_MAX_LEN, required=True,
                       metadata={"description": "the template's id in the channel's console"})
    purpose = fields.String(required=True, validate=validate.OneOf([str(p) for p in Purpose]))
    fields_ = fields.Dict(data_key="fields", attribute="fields", required=True,
                          keys=fields.String(validate=validate.Length(min=1, max=40)),
                          values=fields.String(validate=validate.Length(min=1, max=40)),
                          metadata={"description": "template keyword -> the fact it shows (" + _SOURCES_DOC + "), "
                                                   "e.g. {\"thing1\": \"title\", \"amount2\": \"amount\", "
                                                   "\"time3\": \"time\", \"thing4\": \"clinic\"}"})
    page = text(1, 128, load_default=DEFAULT_PAGE,
                metadata={"description": "the page a message opens (its card is added as ?card_no=)"})


class MessageTemplateSchema(MessageTemplateInSchema):
    updated_at = fields.AwareDateTime(required=True)
    updated_by = fields.String(allow_none=True)


@blp.route("/channel-apps/<int:app_id>/message-templates", methods=["GET"])
@staff_required(ADMIN)
@blp.response(200, MessageTemplateSchema(many=True))
@documented_errors(blp, 404)
def get_message_templates(app_id):
    """The app's message templates (a purpose without one is never pushed)."""
    return templates.get_templates(runtime(), clinic_scope(), app_id)


MESSAGE_TEMPLATE_IN_EXAMPLE = [
    {
        "purpose": "bill_created",
        "template_id": "tmpl-bill-created",
        "fields": {"thing1": "title", "amount2": "amount", "time3": "time", "thing4": "clinic"},
        "page": "pages/bills/index",
    },
]


@blp.route("/channel-apps/<int:app_id>/message-templates", methods=["PUT"])
@staff_required(ADMIN)
@blp.arguments(MessageTemplateInSchema(many=True), example=MESSAGE_TEMPLATE_IN_EXAMPLE)
@blp.response(200, MessageTemplateSchema(many=True))
@documented_errors(blp, 404, 422)
def put_message_templates(entries, app_id):
    """Replace the app's message templates (one per purpose; an empty list turns pushing off for the app)."""
    return templates.put_templates(runtime(), current_staff(), app_id, entries)
