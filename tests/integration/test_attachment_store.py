"""The attachment stores: a folder of this machine, and an S3-compatible store over HTTP (moto's S3 server, the
same boto3 calls a MinIO or AWS bucket answers); content-addressed, stored once, streamed back; a store that does
not answer is StoreUnavailable, never a lost file."""
from __future__ import annotations

import hashlib
import socket

import boto3
import pytest
from moto.server import ThreadedMotoServer

from app.runtime import production_storage
from app.storage import StoredFileMissing, StoreUnavailable
from app.storage.local import LocalStore
from app.storage.s3 import S3Store
from config.settings import TestSettings

KEYS = {"access_key": "test-access-key", "secret_key": "test-secret-key"}
BUCKET = "clinic-attachments"


@pytest.fixture(scope="module")
def s3_endpoint():
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id=KEYS["access_key"],
                 aws_secret_access_key=KEYS["secret_key"]).create_bucket(Bucket=BUCKET)
    yield endpoint
    server.stop()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(params=["local", "s3"])
def store(request, tmp_path):
    if request.param == "local":
        return LocalStore(tmp_path / "attachments")
    return S3Store(BUCKET, endpoint_url=request.getfixturevalue("s3_endpoint"), region="us-east-1",
                   prefix="xrays/", **KEYS)


def test_a_file_is_kept_under_its_hash_once_and_streamed_back(store):
    data = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 1000
    sha256 = hashlib.sha256(data).hexdigest()

    assert store.exists(sha256) is False
    assert store.put(data, "image/png") == sha256
    assert store.put(data, "image/png") == sha256

    assert store.exists(sha256) is True
    assert b"".join(store.stream(sha256)) == data
    with pytest.raises(StoredFileMissing):
        b"".join(store.stream("0" * 64))
    with pytest.raises(ValueError):
        store.exists("../../etc/passwd")


def test_the_s3_object_carries_its_type_under_the_prefix(s3_endpoint):
    store = S3Store(BUCKET, endpoint_url=s3_endpoint, region="us-east-1", prefix="clinic-a/", **KEYS)
    sha256 = store.put(b"\xff\xd8\xff" + b"jpeg-ish bytes", "image/jpeg")

    head = boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1",
                        aws_access_key_id=KEYS["access_key"], aws_secret_access_key=KEYS["secret_key"]).head_object(
        Bucket=BUCKET, Key=f"clinic-a/{sha256}")
    assert head["ContentType"] == "image/jpeg"


def test_a_store_that_does_not_answer_is_unavailable():
    store = S3Store(BUCKET, endpoint_url=f"http://127.0.0.1:{_free_port()}", region="us-east-1", timeout_s=1,
                    **KEYS)
    with pytest.raises(StoreUnavailable):
        store.put(b"anything", "image/png")
    with pytest.raises(StoreUnavailable):
        store.stream("a" * 64)


def test_the_runtime_builds_the_configured_store(s3_endpoint, tmp_path):
    local = production_storage(TestSettings(ATTACHMENTS_DIR=str(tmp_path)))
    s3 = production_storage(TestSettings(ATTACHMENTS_S3_BUCKET=BUCKET, ATTACHMENTS_S3_ENDPOINT=s3_endpoint,
                                         ATTACHMENTS_S3_ACCESS_KEY=KEYS["access_key"],
                                         ATTACHMENTS_S3_SECRET_KEY=KEYS["secret_key"]))

    assert isinstance(local, LocalStore) and local.root == tmp_path
    assert isinstance(s3, S3Store) and s3.bucket == BUCKET
    sha256 = s3.put(b"through the factory", "image/png")
    assert b"".join(s3.stream(sha256)) == b"through the factory"
