"""The message templates of a channel app: which template of the channel's console serves each purpose, which of
our facts each of its keywords shows, and the page a message opens.

The operator sets them for any app (every clinic's and the platform's own); an admin for the apps of their clinics
(another clinic's app, or a platform app, is not found)."""
from __future__ import annotations

from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate

from admin_api.schemas import documented_errors, text
from admin_api.security import ADMIN, ADMIN_PREFIX, OPERATOR, clinic_scope, current_staff, staff_required
from app.domain.messaging import DEFAULT_PAGE, SOURCES, Purpose
from app.extensions import runtime
from app.services.messaging import templates

blp = Blueprint("admin_message_templates", __name__, url_prefix=ADMIN_PREFIX,
                description="Message templates of a channel app")

_SOURCES_DOC = "; ".join(f"{purpose}: {', '.join(names)}" for purpose, names in SOURCES.items())
# Every fact any purpose may show, for the document's enum; which ones a purpose allows is checked by the service
# (its 422 names the purpose), and listed per purpose by the options route.
ALL_SOURCES = sorted({name for names in SOURCES.values() for name in names})
PURPOSES = [str(p) for p in Purpose]


def _app_scope() -> tuple[int, ...] | None:
    """None (every app) for an operator; an admin's clinics otherwise."""
    return None if current_staff().role == OPERATOR else clinic_scope()


class MessageTemplateInSchema(Schema):
    template_id = text(1, templates.TEMPLATE_ID_MAX_LEN, required=True,
                       metadata={"description": "the template's id in the channel's console"})
    purpose = fields.String(required=True, validate=validate.OneOf(PURPOSES))
    fields_ = fields.Dict(data_key="fields", attribute="fields", required=True,
                          keys=fields.String(validate=validate.Length(min=1, max=40)),
                          values=fields.String(validate=validate.Length(min=1, max=40),
                                               metadata={"enum": ALL_SOURCES}),
                          metadata={"description": "template keyword -> the fact it shows (" + _SOURCES_DOC + "), "
                                                   "e.g. {\"thing1\": \"title\", \"amount2\": \"amount\", "
                                                   "\"time3\": \"time\", \"thing4\": \"clinic\"}"})
    page = text(1, 128, load_default=DEFAULT_PAGE,
                metadata={"description": "the page a message opens (its card is added as ?card_no=)"})


class MessageTemplateSchema(MessageTemplateInSchema):
    updated_at = fields.AwareDateTime(required=True)
    updated_by = fields.String(allow_none=True)


class TemplateAppSchema(Schema):
    id = fields.Integer(required=True)
    name = fields.String(allow_none=True, required=True)
    channel = fields.String(required=True, validate=validate.OneOf(["wechat", "alipay"]))
    app_id = fields.String(required=True, metadata={"description": "the app's id at the channel"})
    clinic_code = fields.String(allow_none=True, required=True,
                                metadata={"description": "its clinic; null for the platform's own app"})


class PurposeOptionsSchema(Schema):
    purpose = fields.String(required=True, validate=validate.OneOf(PURPOSES))
    sources = fields.List(fields.String(validate=validate.OneOf(ALL_SOURCES)), required=True,
                          metadata={"description": "the facts a keyword of this purpose's template may show"})
    usual_sources = fields.List(fields.String(validate=validate.OneOf(ALL_SOURCES)), required=True,
                                metadata={"description": "the facts a template's keywords usually show, in order"})


class MessageTemplateOptionsSchema(Schema):
    app = fields.Nested(TemplateAppSchema, required=True)
    purposes = fields.List(fields.Nested(PurposeOptionsSchema), required=True)
    default_page = fields.String(required=True, metadata={"description": "the page a template without one opens"})


@blp.route("/channel-apps/<int:app_id>/message-templates/options", methods=["GET"])
@staff_required(ADMIN, OPERATOR)
@blp.response(200, MessageTemplateOptionsSchema)
@documented_errors(blp, 404)
def get_message_template_options(app_id):
    """What the app's templates may say: the app, and per purpose the facts its keywords may show."""
    return templates.template_options(runtime(), _app_scope(), app_id)


@blp.route("/channel-apps/<int:app_id>/message-templates", methods=["GET"])
@staff_required(ADMIN, OPERATOR)
@blp.response(200, MessageTemplateSchema(many=True))
@documented_errors(blp, 404)
def get_message_templates(app_id):
    """The app's message templates (a purpose without one is never pushed)."""
    return templates.get_templates(runtime(), _app_scope(), app_id)


MESSAGE_TEMPLATE_IN_EXAMPLE = [
    {
        "purpose": "bill_created",
        "template_id": "tmpl-bill-created",
        "fields": {"thing1": "title", "amount2": "amount", "time3": "time", "thing4": "clinic"},
        "page": "pages/bills/index",
    },
]


@blp.route("/channel-apps/<int:app_id>/message-templates", methods=["PUT"])
@staff_required(ADMIN, OPERATOR)
@blp.arguments(MessageTemplateInSchema(many=True), example=MESSAGE_TEMPLATE_IN_EXAMPLE)
@blp.response(200, MessageTemplateSchema(many=True))
@documented_errors(blp, 404, 422)
def put_message_templates(entries, app_id):
    """Replace the app's message templates (one per purpose; an empty list turns pushing off for the app)."""
    return templates.put_templates(runtime(), current_staff(), _app_scope(), app_id, entries)
