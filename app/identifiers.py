"""Identifiers at the edge: an order number, refund request number or bill id that cannot be one is
refused before any database query or HIS call (a path that does not match is a 404 from the router,
a body field a 422 from its schema).

Order and refund request numbers are what app.domain.ids.new_business_no makes: a capital letter and
20 digits (`B20261122103000123456`). Bill ids are the HIS's: we take 1-64 ASCII letters, digits,
`_` and `-`, starting with a letter or digit. Other numbers the HIS sends us are printable ASCII.
"""
from __future__ import annotations

import re

from marshmallow import ValidationError, validate
from werkzeug.routing import BaseConverter

ORDER_NO_PATTERN = r"[A-Z][0-9]{20}"
REFUND_REQUEST_NO_PATTERN = r"R[0-9]{20}"
BILL_ID_PATTERN = r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}"
# A number the HIS chose (its window refund's request_no, a card number it sends): 1-64 printable ASCII
# characters, no space, no control character.
HIS_REFERENCE_PATTERN = r"[!-~]{1,64}"


class WholeText(validate.Regexp):
    """The whole value matches `pattern`: Python's `$` lets a trailing newline through, so the check is a full
    match. The OpenAPI document shows `^pattern$`, which means exactly that in its regexes (ECMA-262, where `$` is
    the end of the text; Python's `\\Z` is not one of them)."""

    def __init__(self, pattern: str, error: str) -> None:
        super().__init__(f"^{pattern}$", error=error)
        self.whole = re.compile(pattern)

    def __call__(self, value: str) -> str:
        if not isinstance(value, str) or self.whole.fullmatch(value) is None:
            raise ValidationError(self._format_error(value))
        return value


bill_id = WholeText(BILL_ID_PATTERN, error="a bill id is 1-64 letters, digits, _ or -")
his_reference = WholeText(HIS_REFERENCE_PATTERN, error="1-64 printable ASCII characters without spaces")


class OrderNoConverter(BaseConverter):
    regex = ORDER_NO_PATTERN
    part_isolating = True


class RefundRequestNoConverter(BaseConverter):
    regex = REFUND_REQUEST_NO_PATTERN
    part_isolating = True


CONVERTERS = {"order_no": OrderNoConverter, "refund_request_no": RefundRequestNoConverter}


def _param_schema(converter: BaseConverter) -> dict:
    return {"type": "string", "pattern": f"^{converter.regex}$"}


def use_identifier_converters(blp) -> None:
    """Make `<order_no:...>` and `<refund_request_no:...>` usable in this blueprint's routes, documented with
    their pattern. Call right after creating the blueprint, before its routes are declared."""
    def install(state) -> None:
        for name, converter in CONVERTERS.items():
            state.app.url_map.converters.setdefault(name, converter)
        api = state.app.extensions.get("flask-smorest", {}).get("blp_name_to_api", {}).get(state.name)
        if api is not None and api.spec is not None:
            for converter in CONVERTERS.values():
                if converter not in api.flask_plugin.converter_mapping:
                    api.register_converter(converter, _param_schema)

    blp.record_once(install)
