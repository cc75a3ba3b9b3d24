"""What an uploaded image is, judged from its bytes, never from its name or the type the browser claims.

Accepted: JPEG and PNG whose structure holds from the first byte to the last, walked without decoding any
pixels (nothing here can be made to allocate a huge bitmap or run a codec on hostile input):
- PNG: the 8-byte signature, then chunks each with a correct CRC, IHDR first (13 bytes, non-zero size), at
  least one IDAT, and IEND ending the file.
- JPEG: SOI (FF D8 FF), then marker segments whose lengths add up, a frame header (SOFn) with a non-zero size
  before the scan (SOS), and EOI (FF D9) at the end (trailing zero padding, which some scanners add, allowed).
A text file or a PDF named .jpg, a truncated file and one with bytes appended are refused.
"""
from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass

from app.domain.errors import InvalidInput

JPEG, PNG = "image/jpeg", "image/png"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
JPEG_SOI = b"\xff\xd8\xff"
MAX_SIDE_PX = 30_000
# Frame headers: SOF0-3, 5-7, 9-11, 13-15 (C4 is DHT, C8 JPG, CC DAC).
_SOF_MARKERS = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
_STANDALONE = frozenset({0x01, *range(0xD0, 0xD8)})
_SOS, _EOI = 0xDA, 0xD9


@dataclass(frozen=True)
class ImageInfo:
    mime: str
    width: int
    height: int


def _refuse(why: str) -> InvalidInput:
    return InvalidInput(f"the file is not a JPEG or PNG image: {why}", "invalid_image")


def sniff(data: bytes) -> ImageInfo:
    """The image's type and size; InvalidInput `invalid_image` for anything else."""
    if data.startswith(PNG_SIGNATURE):
        return _png(data)
    if data.startswith(JPEG_SOI):
        return _jpeg(data)
    raise _refuse("its first bytes are neither a JPEG's nor a PNG's")


def _size(width: int, height: int, mime: str) -> ImageInfo:
    if not (0 < width <= MAX_SIDE_PX and 0 < height <= MAX_SIDE_PX):
        raise _refuse(f"{width}x{height} pixels is not a plausible image size")
    return ImageInfo(mime, width, height)


def _png(data: bytes) -> ImageInfo:
    at, first, size, saw_data = len(PNG_SIGNATURE), True, None, False
    while at < len(data):
        if at + 12 > len(data):
            raise _refuse("a PNG chunk is cut off")
        (length,) = struct.unpack(">I", data[at:at + 4])
        kind = data[at + 4:at + 8]
        end = at + 12 + length
        if end > len(data):
            raise _refuse("a PNG chunk runs past the end of the file")
        body = data[at + 8:at + 8 + length]
        (crc,) = struct.unpack(">I", data[at + 8 + length:end])
        if zlib.crc32(kind + body) & 0xFFFFFFFF != crc:
            raise _refuse(f"the PNG chunk {kind!r} is damaged (CRC)")
        if first:
            if kind != b"IHDR" or length != 13:
                raise _refuse("a PNG starts with its IHDR header")
            size = struct.unpack(">II", body[:8])
            first = False
        saw_data = saw_data or kind == b"IDAT"
        if kind == b"IEND":
            if end != len(data):
                raise _refuse("bytes follow the PNG's end")
            if not saw_data:
                raise _refuse("the PNG holds no image data")
            return _size(*size, PNG)
        at = end
    raise _refuse("the PNG has no end (IEND)")


def _jpeg(data: bytes) -> ImageInfo:
    at, size = 2, None
    while True:
        if at >= len(data) or data[at] != 0xFF:
            raise _refuse("a JPEG marker was expected")
        while at < len(data) and data[at] == 0xFF:  # fill bytes
            at += 1
        if at >= len(data):
            raise _refuse("the JPEG is cut off")
        marker, at = data[at], at + 1
        if marker in _STANDALONE:
            continue
        if marker == _EOI:
            raise _refuse("the JPEG ends before its image data")
        if at + 2 > len(data):
            raise _refuse("a JPEG segment is cut off")
        (length,) = struct.unpack(">H", data[at:at + 2])
        if length < 2 or at + length > len(data):
            raise _refuse("a JPEG segment's length does not fit the file")
        if marker in _SOF_MARKERS:
            if length < 8:
                raise _refuse("the JPEG frame header is too short")
            height, width = struct.unpack(">HH", data[at + 3:at + 7])
            size = (width, height)
        if marker == _SOS:
            if size is None:
                raise _refuse("the JPEG's image data comes before its frame header")
            if not data.rstrip(b"\x00").endswith(b"\xff\xd9"):
                raise _refuse("the JPEG has no end (EOI)")
            return _size(*size, JPEG)
        at += length
