"""The admin console (a Vite build of admin_api/web) served at /admin/, on the API's own origin.

Hashed assets (`/admin/assets/…`) are cached for a year; index.html is revalidated on every load,
so a new build reaches the browser at once. Any other path under /admin/ that is not a file is the
single-page app's own route: index.html answers it (history fallback). Without a build, /admin/
answers 503 with a page saying how to make one.
"""
from __future__ import annotations

from pathlib import Path

from flask import Flask, Response, abort, redirect, send_from_directory

CONSOLE_ROOT = Path(__file__).resolve().parent.parent / "admin_api" / "web"
CONSOLE_DIST = CONSOLE_ROOT / "dist"
HASHED_ASSETS = "assets/"
IMMUTABLE = "public, max-age=31536000, immutable"
# Element Plus sets style attributes, ECharts draws on canvas, a new paid booking's chime is a WAV made in the page
# (a data: URI); no script but the build's own files runs.
CONTENT_SECURITY_POLICY = ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
                           "img-src 'self' data: blob:; font-src 'self' data:; media-src 'self' data:; "
                           "connect-src 'self'; "
                           "frame-ancestors 'none'; base-uri 'self'; form-action 'self'")

_NOT_BUILT = """<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8"><title>管理后台尚未构建 Console not built</title></head>
<body style="font-family: sans-serif; max-width: 40rem; margin: 4rem auto; line-height: 1.6">
<h1>管理后台尚未构建</h1>
<p>The admin console has not been built on this server. Build it once with</p>
<pre>make console</pre>
<p>(<code>npm ci</code> and <code>vite build</code> in <code>admin_api/web</code>; <code>make run</code> does it
when the build is missing or older than its sources). The API itself works: see <a href="/docs">/docs</a>.</p>
</body></html>
"""


def register_console(app: Flask, dist: Path | None = None) -> None:
    root = Path(dist or CONSOLE_DIST)

    @app.get("/admin")
    def console_redirect():
        return redirect("/admin/", code=308)

    @app.get("/admin/", defaults={"path": ""})
    @app.get("/admin/<path:path>")
    def console(path: str):
        if not (root / "index.html").is_file():
            return Response(_NOT_BUILT, status=503, mimetype="text/html", headers={"Retry-After": "60",
                                                                                  "Cache-Control": "no-store"})
        if path and (root / path).is_file() and not path.endswith("index.html"):
            response = send_from_directory(root, path, max_age=0)
            response.headers["Cache-Control"] = IMMUTABLE if path.startswith(HASHED_ASSETS) else "no-cache"
        elif path.startswith(HASHED_ASSETS):
            abort(404)  # a missing script or style is not a page of the app: never answer it with HTML
        else:
            response = send_from_directory(root, "index.html", max_age=0)
            response.headers["Cache-Control"] = "no-cache"
            response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
        response.headers["X-Content-Type-Options"] = "nosniff"
        return response
