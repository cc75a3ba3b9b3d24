"""Importing the metrics makes no file: a process (`flask db-upgrade` as `make run` starts it) may import the app
before its metrics directory exists, and every metric's value is made when first counted (app/metrics.py)."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_importing_the_app_touches_no_metrics_file(tmp_path):
    missing = tmp_path / "not-made-yet"
    made = tmp_path / "made"
    made.mkdir()
    for directory in (missing, made):
        env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(directory)}
        result = subprocess.run([sys.executable, "-c", "import app.services, app.metrics, app.api.mp.sold_out_edge"],
                                cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, result.stderr[-2000:]
    assert not missing.exists()
    assert list(made.iterdir()) == []
