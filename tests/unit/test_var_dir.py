"""HPAY_VAR_DIR moves everything a development process writes: the SQLite file, the generated secret key
and the generated data keys (config/settings.py, app/db/encrypted.py)."""
from __future__ import annotations

import json
import os
import subprocess
import sys

from config.settings import ROOT, var_dir

PROBE = """
import json
from config.settings import DEV_SECRET_KEY_FILE, DevelopmentSettings
from app.db.encrypted import DEV_KEY_FILE, load_keyring
settings = DevelopmentSettings.from_env()
load_keyring("", "development")
print(json.dumps({"secret_key_file": str(DEV_SECRET_KEY_FILE), "data_keys_file": str(DEV_KEY_FILE),
                  "database_url": settings.DATABASE_URL, "secret_key": settings.SECRET_KEY}))
"""


def _probe(environ: dict[str, str]) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HPAY_")} | environ
    done = subprocess.run([sys.executable, "-c", PROBE], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_var_dir_defaults_to_the_repository_var_and_resolves_relative_paths_from_the_root(tmp_path):
    assert var_dir({}) == ROOT / "var"
    assert var_dir({"HPAY_VAR_DIR": "  "}) == ROOT / "var"
    assert var_dir({"HPAY_VAR_DIR": "run/var"}) == ROOT / "run" / "var"
    assert var_dir({"HPAY_VAR_DIR": str(tmp_path)}) == tmp_path


def test_a_development_process_writes_its_database_and_keys_under_hpay_var_dir(tmp_path):
    target = tmp_path / "elsewhere"
    seen = _probe({"HPAY_VAR_DIR": str(target)})
    assert seen["secret_key_file"] == str(target / "secret_key")
    assert seen["data_keys_file"] == str(target / "data-keys")
    assert seen["database_url"] == f"sqlite:///{target / 'hpay.db'}"
    assert (target / "secret_key").read_text().strip() == seen["secret_key"]
    assert (target / "data-keys").stat().st_mode & 0o777 == 0o600
    # A second process under the same directory shares the generated key.
    assert _probe({"HPAY_VAR_DIR": str(target)})["secret_key"] == seen["secret_key"]
