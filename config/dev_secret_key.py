"""The development secret key of this machine, generated once into the var directory (never in production)."""
from __future__ import annotations

import os
import secrets
from pathlib import Path


def dev_secret_key(path: Path) -> str:
    """This machine's development key: read from `path`, or generated there (mode 0600) on first use.

    Created under a temporary name and linked into place, so processes starting together agree on one key.
    """
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w") as out:
            out.write(secrets.token_urlsafe(48) + "\n")
        try:
            os.link(temp, path)
        except FileExistsError:
            pass  # another process won the race: use its key
    finally:
        temp.unlink(missing_ok=True)
    return path.read_text().strip()
