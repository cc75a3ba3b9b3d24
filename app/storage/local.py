"""Attachments in a folder of this machine (default HPAY_VAR_DIR/attachments): `<aa>/<sha256>`, written to a
temporary file and renamed into place, so a reader never sees half a file and two writers of the same file
agree."""
from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from pathlib import Path

from app.storage.base import CHUNK_BYTES, AttachmentStore, StoredFileMissing, content_key, require_key


class LocalStore(AttachmentStore):
    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def __repr__(self) -> str:
        return f"LocalStore({str(self.root)!r})"

    def _path(self, sha256: str) -> Path:
        require_key(sha256)
        return self.root / sha256[:2] / sha256

    def put(self, data: bytes, mime: str) -> str:
        sha256 = content_key(data)
        path = self._path(sha256)
        if path.exists():
            return sha256
        path.parent.mkdir(parents=True, exist_ok=True)
        temp = path.with_name(f".{sha256}.{os.getpid()}.{secrets.token_hex(4)}")
        try:
            with open(temp, "wb") as out:
                out.write(data)
                out.flush()
                os.fsync(out.fileno())
            os.replace(temp, path)
        finally:
            temp.unlink(missing_ok=True)
        return sha256

    def exists(self, sha256: str) -> bool:
        return self._path(sha256).is_file()

    def stream(self, sha256: str) -> Iterator[bytes]:
        try:
            handle = open(self._path(sha256), "rb")  # noqa: SIM115  (closed by the generator below)
        except FileNotFoundError:
            raise StoredFileMissing(sha256) from None
        return _chunks(handle)


def _chunks(handle) -> Iterator[bytes]:
    with handle:
        while chunk := handle.read(CHUNK_BYTES):
            yield chunk
