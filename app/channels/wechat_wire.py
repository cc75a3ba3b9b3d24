"""WeChat Pay v2 on the wire, beyond what wechatpy does: the flat `<xml>` message, the merchant's API key as the
one rule allows it, and the bill download (streamed: wechatpy would buffer bills of hundreds of megabytes)."""
from __future__ import annotations

import itertools
from datetime import date
from pathlib import Path
from xml.parsers.expat import ExpatError

import requests
import xmltodict
from wechatpy.pay.utils import dict_to_xml
from wechatpy.utils import random_string

from app.domain.secrets import WeakSecret

from . import wechat_sign
from .base import ChannelRejected, ChannelUnavailable, InvalidResponse, MerchantConfig, MerchantMisconfigured
from .wire import http_error, stream_to_file

BILL_CHUNK = 1 << 16
RETRYABLE_ERR_CODES = {"SYSTEMERROR", "BIZERR_NEED_RETRY", "FREQUENCY_LIMITED"}


def xml_fields(body: str | bytes) -> dict[str, str | None]:
    """The flat fields of a v2 `<xml>` message; ValueError when it is not one."""
    try:
        document = xmltodict.parse(body)
    except ExpatError as exc:
        raise ValueError(f"not XML: {exc}") from exc
    root = document.get("xml") if isinstance(document, dict) else None
    if not isinstance(root, dict):
        raise ValueError("no <xml> root element")
    if any(value is not None and not isinstance(value, str) for value in root.values()):
        raise ValueError("nested or repeated elements")
    return dict(root)


def api_key_of(config: MerchantConfig) -> str:
    """The merchant's API key; MerchantMisconfigured when it is missing or short, before anything is signed."""
    try:
        return wechat_sign.require_api_key(config.api_key)
    except WeakSecret as exc:
        raise MerchantMisconfigured(f"WeChat merchant {config.mch_id}: {exc.message}") from None


def download_bill(config: MerchantConfig, timeout_s: float, bill_date: date, dest: Path) -> Path | None:
    """The ALL bill, streamed to `dest`; None when WeChat has none for the day. The signed request is sent here
    with wechatpy's signing rules."""
    fields = {"appid": config.app_id, "mch_id": config.mch_id, "nonce_str": random_string(32),
              "bill_date": bill_date.strftime("%Y%m%d"), "bill_type": "ALL"}
    if config.sign_type != wechat_sign.MD5:
        fields["sign_type"] = config.sign_type
    body = dict_to_xml(fields, wechat_sign.sign(fields, api_key_of(config), config.sign_type))
    try:
        with requests.post(f"{config.api_base_url}pay/downloadbill", data=body.encode("utf-8"),
                           headers={"Content-Type": "text/xml"}, stream=True, timeout=timeout_s) as res:
            if res.status_code >= 400:
                raise http_error(res.status_code, "downloadbill")
            chunks = res.iter_content(BILL_CHUNK)
            head = b""
            for chunk in chunks:
                head += chunk
                if len(head) >= 5:
                    break
            if head.lstrip().startswith(b"<xml"):
                return _bill_refusal(head + b"".join(chunks))
            return stream_to_file(itertools.chain([head], chunks), dest)
    except requests.RequestException as exc:
        raise ChannelUnavailable(f"downloadbill failed: {exc}") from exc


def _bill_refusal(body: bytes) -> None:
    try:
        fields = xml_fields(body)
    except ValueError as exc:
        raise InvalidResponse(f"downloadbill answered malformed XML: {exc}") from exc
    message = fields.get("return_msg") or ""
    if "No Bill Exist" in message:
        return None
    if "Bill Creating" in message or fields.get("err_code") in RETRYABLE_ERR_CODES:
        raise ChannelUnavailable(f"downloadbill: {message}")
    raise ChannelRejected(fields.get("err_code") or fields.get("return_code") or "FAIL", message)
