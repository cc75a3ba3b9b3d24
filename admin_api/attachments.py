"""Attachments of a booking (a panoramic X-ray before or at redemption): upload, list, download (staff)."""
from __future__ import annotations

from functools import wraps

from flask import Response, request
from flask_smorest import Blueprint
from flask_smorest.fields import Upload
from marshmallow import Schema, fields, validate

from admin_api.schemas import AttachmentSchema, documented_errors
from admin_api.security import ADMIN_PREFIX, STAFF, clinic_scope, current_staff, staff_required
from app.domain.errors import TooLarge
from app.extensions import runtime
from app.identifiers import use_identifier_converters
from app.services.booking.attachments import KINDS, list_attachments, open_attachment, upload

blp = Blueprint("admin_attachments", __name__, url_prefix=ADMIN_PREFIX,
                description="Attachments of a booking, e.g. a panoramic X-ray (staff)")
use_identifier_converters(blp)
# What a multipart body adds around the file (boundaries, headers, the kind field).
MULTIPART_OVERHEAD_BYTES = 64 * 1024


class AttachmentFormSchema(Schema):
    kind = fields.String(required=True, validate=validate.OneOf(KINDS),
                         metadata={"description": "panoramic_xray, xray, photo or other"})


class AttachmentFileSchema(Schema):
    file = Upload(required=True, metadata={"description": "a JPEG or PNG (judged from its bytes), at most "
                                                          "HPAY_ATTACHMENT_MAX_BYTES"})


def _larger_body_allowed(view):
    """This route alone takes bodies up to the attachment limit (the app's MAX_CONTENT_LENGTH stays 2 MiB): set
    before the form is parsed, so a larger body is refused (413) without being read."""
    @wraps(view)
    def wrapper(*args, **kwargs):
        limit = runtime().settings.ATTACHMENT_MAX_BYTES
        if request.content_length is not None and request.content_length > limit + MULTIPART_OVERHEAD_BYTES:
            raise TooLarge(f"an attachment may be at most {limit} bytes", "attachment_too_large",
                           details={"max_bytes": limit})
        request.max_content_length = limit + MULTIPART_OVERHEAD_BYTES
        return view(*args, **kwargs)

    return wrapper


@blp.route("/orders/<order_no:order_no>/attachments", methods=["POST"])
@staff_required(STAFF)
@_larger_body_allowed
@blp.arguments(AttachmentFormSchema, location="form")
@blp.arguments(AttachmentFileSchema, location="files",
               example={"file": "(the JPEG's bytes)", "kind": "panoramic_xray"})
@blp.response(201, AttachmentSchema)
@documented_errors(blp, 404, 409, 413, 422, 503)
def upload_attachment(form, files, order_no):
    """Attach a JPEG or PNG (multipart `file`, `kind`) to a booking before or at redemption. The type is judged from
    the file's bytes: anything else, however it is named, is 422 `invalid_image`; above the size limit 413
    `attachment_too_large`. The same file is stored once."""
    limit = runtime().settings.ATTACHMENT_MAX_BYTES
    data = files["file"].read(limit + 1)
    return upload(runtime(), current_staff(), order_no, form["kind"], data)


@blp.route("/orders/<order_no:order_no>/attachments", methods=["GET"])
@staff_required(STAFF)
@blp.response(200, AttachmentSchema(many=True))
@documented_errors(blp, 404)
def list_order_attachments(order_no):
    """A booking's attachments, oldest first."""
    return list_attachments(runtime(), clinic_scope(), order_no)


@blp.route("/orders/<order_no:order_no>/attachments/<int:attachment_id>", methods=["GET"])
@staff_required(STAFF)
@blp.doc(responses={"200": {"description": "the file, as its stored type",
                            "content": {"image/jpeg": {"schema": {"type": "string", "format": "binary"}},
                                        "image/png": {"schema": {"type": "string", "format": "binary"}}}}})
@documented_errors(blp, 404, 503)
def download(order_no, attachment_id):
    """The attachment's file, streamed with its stored type, as a download (never rendered as a page)."""
    found = open_attachment(runtime(), clinic_scope(), order_no, attachment_id)
    response = Response(found.chunks, mimetype=found.mime, direct_passthrough=True)
    response.headers.set("Content-Length", str(found.size_bytes))
    response.headers.set("Content-Disposition", "attachment", filename=found.filename)
    response.headers.set("X-Content-Type-Options", "nosniff")
    response.headers.set("Cache-Control", "private, no-store")
    return response
