"""The H5 pages (mini_program_mock/h5) in Debian's Chromium on a phone-sized page, against the session's sandbox
(which serves them at /h5/) and the platform on real processes (which allows the sandbox's origin: app/cors.py).

The session builds the pages once when the build is missing or older than its sources (npm ci from the lockfile,
vue-tsc, vite build). Each test's pages fail it on any console error or uncaught exception.
"""
from __future__ import annotations

import shutil

import pytest

from tests.browser.h5.helpers import Phone
from tests.browser.helpers import ConsoleErrors


@pytest.fixture(scope="session")
def h5_build():
    from mini_program_mock.h5 import build

    if shutil.which("npm") is None:
        pytest.fail("npm is missing: `make test` installs nodejs and npm (services-deps)")
    build.build(if_stale=True)
    assert (build.DIST / "index.html").is_file()
    return build.DIST


@pytest.fixture()
def phone(request, chromium, sandbox, platform, h5_build):
    errors = ConsoleErrors()
    opened = Phone(chromium, sandbox.url, platform.url, errors)
    yield opened
    if getattr(request.node, "browser_failed", False):
        opened.screenshot_all(f"failed-{request.node.name}")
    opened.close()
    wrong = errors.unexpected()
    assert not wrong, "console errors on the pages visited:\n" + "\n".join(wrong)
