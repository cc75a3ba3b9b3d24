"""The framework's ceiling: the notify URL on a bare Flask app that reads the body and answers
SUCCESS, storing and checking nothing. Served by the same gunicorn settings as the other variants."""
from __future__ import annotations

from flask import Flask, Response, request

SUCCESS = b"<xml><return_code><![CDATA[SUCCESS]]></return_code><return_msg><![CDATA[OK]]></return_msg></xml>"

app = Flask(__name__)


@app.post("/notify/wechat/<string:clinic_code>/pay")
def wechat_pay(clinic_code: str) -> Response:
    request.get_data()
    return Response(SUCCESS, content_type="text/xml; charset=utf-8")
