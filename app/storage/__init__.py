"""Where order attachments' bytes live: a content-addressed store behind one interface (base.AttachmentStore),
a folder on this machine (local.py, the default) or any S3-compatible store (s3.py, boto3). The Runtime builds
the configured one (`rt.attachment_store()`); the use cases never pick.
"""
from app.storage.base import AttachmentStore, StoredFileMissing, StoreUnavailable

__all__ = ["AttachmentStore", "StoreUnavailable", "StoredFileMissing"]
