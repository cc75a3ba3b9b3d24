"""Attachments in a bucket of any S3-compatible store (AWS S3, MinIO, Ceph, a cloud's OSS S3 endpoint) through
boto3: `<prefix><sha256>`, written with its content type and a Content-MD5 the store checks."""
from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterator

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from app.storage.base import CHUNK_BYTES, AttachmentStore, StoredFileMissing, StoreUnavailable, content_key, require_key

_MISSING = {"404", "NoSuchKey", "NotFound"}


class S3Store(AttachmentStore):
    def __init__(self, bucket: str, *, endpoint_url: str | None, region: str, access_key: str, secret_key: str,
                 prefix: str = "", timeout_s: float = 10.0) -> None:
        self.bucket, self.prefix = bucket, prefix
        self._client = boto3.client(
            "s3", endpoint_url=endpoint_url or None, region_name=region,
            aws_access_key_id=access_key or None, aws_secret_access_key=secret_key or None,
            config=Config(connect_timeout=timeout_s, read_timeout=timeout_s, retries={"max_attempts": 3},
                          s3={"addressing_style": "path"}))

    def __repr__(self) -> str:
        return f"S3Store(bucket={self.bucket!r}, prefix={self.prefix!r})"

    def _key(self, sha256: str) -> str:
        return f"{self.prefix}{require_key(sha256)}"

    def put(self, data: bytes, mime: str) -> str:
        sha256 = content_key(data)
        if self.exists(sha256):
            return sha256
        md5 = base64.b64encode(hashlib.md5(data, usedforsecurity=False).digest()).decode()
        try:
            self._client.put_object(Bucket=self.bucket, Key=self._key(sha256), Body=data, ContentType=mime,
                                    ContentMD5=md5)
        except (BotoCoreError, ClientError) as exc:
            raise StoreUnavailable(f"the attachment store refused or did not answer: {exc}") from exc
        return sha256

    def exists(self, sha256: str) -> bool:
        try:
            self._client.head_object(Bucket=self.bucket, Key=self._key(sha256))
            return True
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in _MISSING:
                return False
            raise StoreUnavailable(f"the attachment store refused: {exc}") from exc
        except BotoCoreError as exc:
            raise StoreUnavailable(f"the attachment store did not answer: {exc}") from exc

    def stream(self, sha256: str) -> Iterator[bytes]:
        try:
            body = self._client.get_object(Bucket=self.bucket, Key=self._key(sha256))["Body"]
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in _MISSING:
                raise StoredFileMissing(sha256) from None
            raise StoreUnavailable(f"the attachment store refused: {exc}") from exc
        except BotoCoreError as exc:
            raise StoreUnavailable(f"the attachment store did not answer: {exc}") from exc
        return _chunks(body)


def _chunks(body) -> Iterator[bytes]:
    try:
        yield from body.iter_chunks(CHUNK_BYTES)
    finally:
        body.close()
