"""Uploaded images are judged by their bytes: real JPEGs and PNGs pass with their size; text, PDFs, truncated
and padded-with-junk files named like images are refused."""
from __future__ import annotations

import io

import pytest
from PIL import Image

from app.domain.errors import InvalidInput
from app.domain.images import JPEG, PNG, sniff


def _image(fmt: str, size=(64, 40)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, (200, 180, 160)).save(out, fmt)
    return out.getvalue()


@pytest.mark.parametrize(("fmt", "mime"), [("JPEG", JPEG), ("PNG", PNG)])
def test_real_images_are_recognised_with_their_size(fmt, mime):
    info = sniff(_image(fmt, (640, 320)))
    assert (info.mime, info.width, info.height) == (mime, 640, 320)


def test_a_progressive_jpeg_and_zero_padding_after_it_pass():
    out = io.BytesIO()
    Image.new("L", (33, 17), 90).save(out, "JPEG", progressive=True)
    assert sniff(out.getvalue() + b"\x00" * 16).width == 33


@pytest.mark.parametrize("fake", [
    b"this is not an X-ray, only text named xray.jpg\n",
    b"%PDF-1.7\n1 0 obj << /Type /Catalog >> endobj\n%%EOF\n",
    b"",
    b"\xff\xd8\xff" + b"text after a JPEG's first bytes",
    b"\x89PNG\r\n\x1a\n" + b"text after a PNG signature",
    b"GIF89a\x01\x00\x01\x00",
])
def test_what_is_not_a_jpeg_or_png_is_refused(fake):
    with pytest.raises(InvalidInput) as refused:
        sniff(fake)
    assert refused.value.code == "invalid_image"


@pytest.mark.parametrize("fmt", ["JPEG", "PNG"])
def test_a_truncated_image_or_one_with_bytes_appended_is_refused(fmt):
    data = _image(fmt)
    for broken in (data[: len(data) // 2], data[:-1], data + b"<script>alert(1)</script>"):
        with pytest.raises(InvalidInput):
            sniff(broken)


def test_a_png_with_a_damaged_chunk_is_refused():
    data = bytearray(_image("PNG"))
    data[40] ^= 0xFF  # inside the first IDAT
    with pytest.raises(InvalidInput) as refused:
        sniff(bytes(data))
    assert "CRC" in refused.value.message
