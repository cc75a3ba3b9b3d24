"""Origins as browsers send them (`Origin` headers), for the CORS allow-list."""
from __future__ import annotations

from urllib.parse import urlsplit


def browser_origin(value: str, path_allowed: bool = False) -> str:
    """`https://h5.example.com` as a browser sends it in `Origin` (lower-case scheme and host, no default port)."""
    parsed = urlsplit(value.strip())
    if parsed.scheme not in ("http", "https") or not parsed.hostname or "*" in value:
        raise ValueError(f"{value.strip()!r} is not an origin such as https://h5.example.com (no wildcards)")
    if not path_allowed and (parsed.path not in ("", "/") or parsed.query or parsed.fragment):
        raise ValueError(f"{value.strip()!r} is not an origin: no path, query or fragment")
    if parsed.username or parsed.password:
        raise ValueError(f"{value.strip()!r} is not an origin: no user or password")
    host = parsed.hostname if ":" not in parsed.hostname else f"[{parsed.hostname}]"
    port = parsed.port
    default_port = {"http": 80, "https": 443}[parsed.scheme]
    return f"{parsed.scheme}://{host}" + (f":{port}" if port and port != default_port else "")
