"""The pages imitating the mini-program (`/h5/`): the Vite build of h5/web, served as files.

What a patient does in the clinic's WeChat or Alipay mini-program, in a browser: it signs in silently through the
sandbox's wx.login / my.getAuthCode stand-ins and pays through its wx.requestPayment / my.tradePay stand-ins, and
calls the platform's mini-program API across origins (the platform allows this origin: HPAY_CORS_ORIGINS).

- `/h5/config.json`: the page's defaults: this sandbox's address, the platform's (SANDBOX_PLATFORM_URL, default
  http://127.0.0.1:8000), the clinic (SANDBOX_H5_CLINIC, default demo) and channel. The page's query string
  (`?clinic=&channel=&platform=`) overrides them.
- `/h5/assets/…`: hashed files, cached for a year; anything else under /h5/ that is not a file is a route of the
  single-page app, answered with index.html (revalidated on every load).
- Without a build, /h5/ answers 503 with a page that says how to make one (`make h5`).

This blueprint only serves files: it never builds (mini_program_mock/h5/build.py does, called by `make run`,
`make h5` and the browser tests) and never imports the platform.
"""
from __future__ import annotations

import os
from pathlib import Path

from flask import Blueprint, Flask, Response, abort, jsonify, redirect, request, send_from_directory

from .build import DIST

DEFAULT_PLATFORM_URL = "http://127.0.0.1:8000"
HASHED_ASSETS = "assets/"
IMMUTABLE = "public, max-age=31536000, immutable"
# The page calls the platform, whose address is configurable (query string, SANDBOX_PLATFORM_URL): any http(s)
# origin may be connected to; scripts only from this build. Vant sets style attributes.
CONTENT_SECURITY_POLICY = ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
                           "img-src 'self' data: blob:; font-src 'self' data:; connect-src 'self' http: https:; "
                           "frame-ancestors 'none'; base-uri 'self'; form-action 'self'")

_NOT_BUILT = """<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>小程序演示页尚未构建 H5 pages not built</title></head>
<body style="font-family: sans-serif; max-width: 40rem; margin: 2rem auto; padding: 0 1rem; line-height: 1.6">
<h1>小程序演示页尚未构建</h1>
<p>The pages imitating the mini-program have not been built in this checkout. Build them once with</p>
<pre>make h5</pre>
<p>(<code>npm ci</code> and <code>vite build</code> in <code>mini_program_mock/h5/web</code>; <code>make run</code>
does it when the build is missing or older than its sources). Meanwhile a scripted patient runs the same flows:
<code>python -m mini_program_mock.patient --channel wechat --flow topup</code>.</p>
</body></html>
"""


def page_config() -> dict:
    """The page's defaults. The sandbox's address is the one the browser used to reach it."""
    return {
        "sandbox_url": request.host_url.rstrip("/"),
        "platform_url": os.environ.get("SANDBOX_PLATFORM_URL", "").strip() or DEFAULT_PLATFORM_URL,
        "clinic": os.environ.get("SANDBOX_H5_CLINIC", "").strip() or "demo",
        "channel": "wechat",
    }


def make_blueprint(dist: Path | None = None) -> Blueprint:
    root = Path(dist or DIST)
    bp = Blueprint("sandbox_h5", __name__)

    @bp.get("/h5")
    def h5_redirect():
        return redirect("/h5/", code=308)

    @bp.get("/h5/config.json")
    def config():
        response = jsonify(page_config())
        response.headers["Cache-Control"] = "no-store"
        return response

    @bp.get("/h5/", defaults={"path": ""})
    @bp.get("/h5/<path:path>")
    def page(path: str):
        if not (root / "index.html").is_file():
            return Response(_NOT_BUILT, status=503, mimetype="text/html",
                            headers={"Retry-After": "60", "Cache-Control": "no-store"})
        if path and (root / path).is_file() and not path.endswith("index.html"):
            response = send_from_directory(root, path, max_age=0)
            response.headers["Cache-Control"] = IMMUTABLE if path.startswith(HASHED_ASSETS) else "no-cache"
        elif path.startswith(HASHED_ASSETS) or path.rsplit("/", 1)[-1].endswith((".js", ".css", ".map")):
            abort(404)  # a missing script or style is not a page of the app: never answer it with HTML
        else:
            response = send_from_directory(root, "index.html", max_age=0)
            response.headers["Cache-Control"] = "no-cache"
            response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
        response.headers["X-Content-Type-Options"] = "nosniff"
        return response

    return bp


def register(app: Flask, dist: Path | None = None) -> None:
    app.register_blueprint(make_blueprint(dist))
