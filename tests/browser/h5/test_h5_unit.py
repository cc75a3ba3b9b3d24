"""The H5 pages' own logic under vitest (the payment bridge's choice and the sandbox stand-in, money and time
formatting, configuration, the live bill feed, feature detection), run from pytest so that `make test` covers it."""
from __future__ import annotations

import shutil
import subprocess

import pytest

from mini_program_mock.h5 import build


def test_vitest_passes():
    if shutil.which("npx") is None:
        pytest.fail("npx is missing: `make test` installs nodejs and npm (services-deps)")
    build.ensure_node_modules()
    result = subprocess.run(["npx", "--no-install", "vitest", "run", "--reporter=dot"], cwd=build.WEB_ROOT,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    assert " passed" in result.stdout and "failed" not in result.stdout
