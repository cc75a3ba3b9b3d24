"""The attachment store: files kept under the sha256 of their bytes, so the same file is stored once and a name
can never point at other content."""
from __future__ import annotations

import hashlib
import re
from abc import ABC, abstractmethod
from collections.abc import Iterator

SHA256_PATTERN = re.compile(r"[0-9a-f]{64}")
CHUNK_BYTES = 64 * 1024


class StoredFileMissing(LookupError):
    """No file under this hash (the store lost it, or it was never written)."""


class StoreUnavailable(RuntimeError):
    """The store did not answer; the request may be retried."""


def content_key(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def require_key(sha256: str) -> str:
    if not SHA256_PATTERN.fullmatch(sha256):
        raise ValueError(f"{sha256!r} is not a sha256 in hex")
    return sha256


class AttachmentStore(ABC):
    @abstractmethod
    def put(self, data: bytes, mime: str) -> str:
        """Store the bytes (once: storing them again changes nothing); returns their sha256."""

    @abstractmethod
    def stream(self, sha256: str) -> Iterator[bytes]:
        """The stored bytes in chunks; StoredFileMissing when there is no such file."""

    @abstractmethod
    def exists(self, sha256: str) -> bool:
        ...
