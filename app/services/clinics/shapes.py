"""What the onboarding use cases share: how a write-only secret is shown (and audited), the last check of a
connection, and base URLs an operator may give."""
from __future__ import annotations

from datetime import datetime
from urllib.parse import urlsplit

from app.domain.errors import InvalidInput
from app.domain.secrets import fingerprint
from app.runtime import Runtime
from config.settings import looks_like_sandbox

CHECK_DETAIL_MAX = 500


def secret_state(value: str | None) -> dict:
    """`{configured, fingerprint}`: never the secret itself, in any response, log or audit event."""
    return {"configured": bool(value), "fingerprint": fingerprint(value) if value else None}


def last_check(at: datetime | None, ok: bool | None, detail: str | None) -> dict | None:
    return None if at is None else {"at": at, "ok": bool(ok), "detail": detail}


def audited_check(at: datetime | None, ok: bool | None, detail: str | None) -> dict | None:
    """The last check as an audit event holds it (JSON)."""
    return None if at is None else {"at": at.isoformat(), "ok": bool(ok), "detail": detail}


def require_base_url(rt: Runtime, field: str, value: str) -> str:
    """An http(s) URL with a host; in production, not loopback nor the sandbox (the Runtime would refuse to
    use it anyway: better to say so when it is stored)."""
    parts = urlsplit(value.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.query or parts.fragment:
        raise InvalidInput(f"{field} must be an http(s) URL without query", "invalid_url",
                           {field: ["an http(s) URL such as https://his.example.com/api"]})
    if rt.in_production and (looks_like_sandbox(value) or parts.scheme != "https"):
        raise InvalidInput(f"{field} must be an https address of the real system in production", "invalid_url",
                           {field: ["https, not loopback or the sandbox"]})
    return value.strip()
