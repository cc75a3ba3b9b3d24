"""The console's own logic (money formatting, the API client's error handling, role-based menus) under vitest,
run from pytest so that `make test` covers it."""
from __future__ import annotations

import shutil
import subprocess

import pytest

from app.cli import console_build


def test_vitest_passes():
    if shutil.which("npx") is None:
        pytest.fail("npx is missing: `make test` installs nodejs and npm (services-deps)")
    console_build.ensure_node_modules()
    result = subprocess.run(["npx", "--no-install", "vitest", "run", "--reporter=dot"],
                            cwd=console_build.CONSOLE_ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    assert " passed" in result.stdout and "failed" not in result.stdout
