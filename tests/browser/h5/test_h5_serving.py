"""The sandbox serves the H5 build at /h5/ (mini_program_mock/h5): the single-page app's history fallback, a year's
cache for hashed assets and none for index.html, the page's config.json, and a clear 503 when there is no build.
The build itself loads nothing from a third party."""
from __future__ import annotations

import re

import pytest
from flask import Flask

from mini_program_mock.h5 import IMMUTABLE, register


@pytest.fixture()
def build(tmp_path):
    dist = tmp_path / "dist"
    (dist / "assets").mkdir(parents=True)
    (dist / "index.html").write_text('<!doctype html><div id="app"></div><script src="/h5/assets/index-abc123.js">'
                                     "</script>", encoding="utf-8")
    (dist / "assets" / "index-abc123.js").write_text("console.log('h5')", encoding="utf-8")
    (dist / "favicon.svg").write_text("<svg/>", encoding="utf-8")
    (tmp_path / "secret.txt").write_text("not for the web", encoding="utf-8")
    return dist


def _client(dist):
    app = Flask("h5-probe")
    register(app, dist)
    return app.test_client()


def test_the_app_and_its_routes_are_index_html_never_cached(build):
    client = _client(build)
    for path in ("/h5/", "/h5/cards/D0000001", "/h5/orders/T2026120500001", "/h5/?channel=alipay&clinic=demo"):
        resp = client.get(path)
        assert resp.status_code == 200, path
        assert '<div id="app">' in resp.get_data(as_text=True)
        assert resp.headers["Cache-Control"] == "no-cache"
        policy = resp.headers["Content-Security-Policy"]
        assert "script-src 'self'" in policy and "frame-ancestors 'none'" in policy


def test_hashed_assets_are_cached_for_a_year_and_other_files_revalidated(build):
    client = _client(build)
    asset = client.get("/h5/assets/index-abc123.js")
    assert asset.status_code == 200 and asset.get_data(as_text=True) == "console.log('h5')"
    assert asset.headers["Cache-Control"] == IMMUTABLE == "public, max-age=31536000, immutable"
    icon = client.get("/h5/favicon.svg")
    assert icon.status_code == 200 and icon.headers["Cache-Control"] == "no-cache"


def test_a_missing_asset_is_404_not_the_app(build):
    client = _client(build)
    for path in ("/h5/assets/index-gone.js", "/h5/assets/x.css", "/h5/old-chunk.js"):
        resp = client.get(path)
        assert resp.status_code == 404 and '<div id="app">' not in resp.get_data(as_text=True), path


def test_nothing_outside_the_build_is_served(build):
    client = _client(build)
    for path in ("/h5/../secret.txt", "/h5/%2e%2e/secret.txt", "/h5/assets/../../secret.txt"):
        assert "not for the web" not in client.get(path).get_data(as_text=True), path


def test_h5_without_the_slash_goes_to_the_app(build):
    resp = _client(build).get("/h5")
    assert resp.status_code == 308 and resp.headers["Location"].endswith("/h5/")


def test_without_a_build_the_page_says_how_to_make_one(tmp_path):
    resp = _client(tmp_path / "no-dist").get("/h5/cards/D0000001")
    assert resp.status_code == 503 and "make h5" in resp.get_data(as_text=True)
    assert resp.headers["Cache-Control"] == "no-store"


def test_config_names_this_sandbox_the_platform_and_the_demo_clinic(build, monkeypatch):
    monkeypatch.delenv("SANDBOX_PLATFORM_URL", raising=False)
    client = _client(build)
    config = client.get("/h5/config.json", base_url="http://127.0.0.1:8100")
    assert config.status_code == 200 and config.headers["Cache-Control"] == "no-store"
    assert config.get_json() == {"sandbox_url": "http://127.0.0.1:8100", "platform_url": "http://127.0.0.1:8000",
                                 "clinic": "demo", "channel": "wechat"}
    monkeypatch.setenv("SANDBOX_PLATFORM_URL", "http://192.168.1.20:8000")
    monkeypatch.setenv("SANDBOX_H5_CLINIC", "north")
    other = client.get("/h5/config.json", base_url="http://192.168.1.20:8100").get_json()
    assert other["platform_url"] == "http://192.168.1.20:8000" and other["clinic"] == "north"
    assert other["sandbox_url"] == "http://192.168.1.20:8100"  # the address the phone reached the sandbox at


def test_the_sandbox_world_serves_the_pages(sandbox, h5_build):
    import requests

    page = requests.get(f"{sandbox.url}/h5/orders/anything", timeout=10)
    assert page.status_code == 200 and '<div id="app">' in page.text
    scripts = re.findall(r'src="(/h5/assets/[^"]+\.js)"', page.text)
    assert scripts
    asset = requests.get(f"{sandbox.url}{scripts[0]}", timeout=10)
    assert asset.status_code == 200 and asset.headers["Cache-Control"] == IMMUTABLE


def test_the_build_loads_nothing_from_a_third_party(h5_build):
    """No CDN font, script or style: the sandbox runs offline and the page's policy allows only itself."""
    remote = re.compile(r"""(?:url\(\s*["']?|src=["']|href=["'])(?:https?:)?//""")
    files = [path for path in h5_build.rglob("*") if path.suffix in (".css", ".html", ".js")]
    offenders = [f"{path.name}: {match.group()}" for path in files
                 for match in remote.finditer(path.read_text(encoding="utf-8", errors="replace"))]
    assert not offenders, offenders
