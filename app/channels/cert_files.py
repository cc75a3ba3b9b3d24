"""WeChat's merchant certificate and key as files: wechatpy (through requests) takes file paths only.

The PEM text lives encrypted in the database; when an adapter needs it, it is written once per process into
a private directory (0700, files 0600) under a name made of its fingerprint, so the same certificate is
written once and a rotated one gets a new file. The directory is removed when the process exits.
"""
from __future__ import annotations

import atexit
import hashlib
import os
import shutil
import tempfile
import threading
from pathlib import Path

_lock = threading.Lock()
_directory: Path | None = None


def _private_directory() -> Path:
    global _directory
    if _directory is None or not _directory.is_dir():
        _directory = Path(tempfile.mkdtemp(prefix="hpay-certs-"))  # mkdtemp makes it 0700
        atexit.register(shutil.rmtree, _directory, True)
    return _directory


def _write_once(directory: Path, text: str, suffix: str) -> Path:
    path = directory / f"{hashlib.sha256(text.encode('utf-8')).hexdigest()[:24]}{suffix}"
    if not path.exists():
        temporary = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}")
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(temporary, path)
    return path


def pem_paths(cert_pem: str, key_pem: str) -> tuple[str, str]:
    """(certificate path, key path) of files holding exactly this PEM text, readable by this process only."""
    with _lock:
        directory = _private_directory()
        return str(_write_once(directory, cert_pem, ".crt")), str(_write_once(directory, key_pem, ".key"))
