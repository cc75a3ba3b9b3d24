"""Flask serves the console's build at /admin/ (app/console.py): the single-page app's history fallback, a year's
cache for hashed assets and none for index.html, and a clear 503 when there is no build."""
from __future__ import annotations

import pytest
from flask import Flask

from app.console import IMMUTABLE, register_console


@pytest.fixture()
def build(tmp_path):
    dist = tmp_path / "dist"
    (dist / "assets").mkdir(parents=True)
    (dist / "index.html").write_text('<!doctype html><div id="app"></div><script src="/admin/assets/index-abc123.js">'
                                     "</script>", encoding="utf-8")
    (dist / "assets" / "index-abc123.js").write_text("console.log('app')", encoding="utf-8")
    (dist / "favicon.svg").write_text("<svg/>", encoding="utf-8")
    (tmp_path / "secret.txt").write_text("not for the web", encoding="utf-8")
    return dist


def _client(dist):
    app = Flask("console-probe")
    register_console(app, dist)
    return app.test_client()


def test_the_app_and_its_routes_are_index_html_never_cached(build):
    client = _client(build)
    for path in ("/admin/", "/admin/bookings/pending", "/admin/finance/reconciliation/12", "/admin/login?x=1"):
        resp = client.get(path)
        assert resp.status_code == 200, path
        assert '<div id="app">' in resp.get_data(as_text=True)
        assert resp.headers["Cache-Control"] == "no-cache"
        assert "script-src 'self'" in resp.headers["Content-Security-Policy"]


def test_hashed_assets_are_cached_for_a_year_and_other_files_revalidated(build):
    client = _client(build)
    asset = client.get("/admin/assets/index-abc123.js")
    assert asset.status_code == 200 and asset.get_data(as_text=True) == "console.log('app')"
    assert asset.headers["Cache-Control"] == IMMUTABLE == "public, max-age=31536000, immutable"
    assert "javascript" in asset.headers["Content-Type"]
    icon = client.get("/admin/favicon.svg")
    assert icon.status_code == 200 and icon.headers["Cache-Control"] == "no-cache"


def test_a_missing_asset_is_404_not_the_app(build):
    resp = _client(build).get("/admin/assets/index-gone.js")
    assert resp.status_code == 404 and '<div id="app">' not in resp.get_data(as_text=True)


def test_nothing_outside_the_build_is_served(build):
    client = _client(build)
    for path in ("/admin/../secret.txt", "/admin/%2e%2e/secret.txt", "/admin/assets/../../secret.txt"):
        assert "not for the web" not in client.get(path).get_data(as_text=True), path


def test_admin_without_the_slash_goes_to_the_app(build):
    resp = _client(build).get("/admin")
    assert resp.status_code == 308 and resp.headers["Location"].endswith("/admin/")


def test_without_a_build_admin_says_how_to_make_one(tmp_path):
    resp = _client(tmp_path / "never-built").get("/admin/bookings/pending")
    assert resp.status_code == 503
    body = resp.get_data(as_text=True)
    assert "make console" in body and "管理后台尚未构建" in body
    assert resp.headers["Cache-Control"] == "no-store"


def test_the_platform_serves_the_console_on_the_apis_origin(app):
    """create_app registers it: /admin/ answers (the build or the 503 page), and the API is untouched."""
    client = app.test_client()
    assert client.get("/admin/").status_code in (200, 503)
    assert client.get("/api/admin/v1/auth/me").status_code == 401
    assert "/admin/" not in client.get("/openapi.json").get_data(as_text=True).replace("/api/admin/", "")
