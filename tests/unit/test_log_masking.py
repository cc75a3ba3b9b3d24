"""Phone and ID numbers never reach a log line in clear."""
from __future__ import annotations

import json
import logging

from config.logging import JsonFormatter, mask_id_number, mask_phone, mask_text, request_id_var


def test_masking_helpers():
    assert mask_phone("13812345678") == "138****5678"
    assert mask_id_number("110101199003071234") == "110***********1234"
    assert mask_text("patient 13812345678 id 11010119900307123X") == "patient 138****5678 id 110***********123X"
    assert mask_text("order 202611221234567890") == "order 202611221234567890"


def test_json_log_line_is_masked_and_carries_the_request_id():
    token = request_id_var.set("req-abc12345")
    try:
        record = logging.LogRecord("t", logging.INFO, __file__, 1, "bound card for %s", ("13900001111",), None)
        line = json.loads(JsonFormatter().format(record))
    finally:
        request_id_var.reset(token)
    assert line["message"] == "bound card for 139****1111"
    assert line["request_id"] == "req-abc12345"
    assert line["level"] == "INFO"
