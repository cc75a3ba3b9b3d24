"""Building the admin console (admin_api/web) and its typed API client.

    python -m app.cli.console_build build [--if-stale]   # npm ci (when the lockfile changed), vue-tsc, vite build
    python -m app.cli.console_build client               # openapi.json from the app, then src/api/schema.d.ts
    python -m app.cli.console_build spec FILE             # only the admin API's OpenAPI document

The console is typed against `openapi.json`, the admin part of the app's OpenAPI document, committed
beside it; tests/browser/test_console_client.py fails when the app would now publish another one, so a
changed API shows up as a failing build (run `make console-client`, then `vue-tsc` names every screen
the change breaks) rather than as a broken screen.
"""
from __future__ import annotations

import fcntl
import json
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path

from app.console import CONSOLE_DIST, CONSOLE_ROOT
from app.factory import create_app
from app.openapi import ADMIN_BEARER

ADMIN_PATHS = "/api/admin/v1/"
SPEC_FILE = CONSOLE_ROOT / "openapi.json"
SCHEMA_TYPES = CONSOLE_ROOT / "src" / "api" / "schema.d.ts"
# What the build is made from: a change to any of these makes the build stale.
SOURCES = ("src", "public", "index.html", "package.json", "package-lock.json", "vite.config.ts", "tsconfig.json")


# --- the OpenAPI document -----------------------------------------------------------------------------------

def _refs(node, found: set[str]) -> None:
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/components/"):
            found.add(ref)
        for value in node.values():
            _refs(value, found)
    elif isinstance(node, list):
        for value in node:
            _refs(value, found)


def admin_openapi(app) -> dict:
    """The admin API's paths and only the components they use (the mini-program and HIS APIs left out)."""
    spec = app.extensions["hpay_api"].spec.to_dict()
    paths = {path: item for path, item in spec["paths"].items() if path.startswith(ADMIN_PATHS)}
    components = spec.get("components", {})
    wanted: set[str] = set()
    _refs(paths, wanted)
    pending = list(wanted)
    while pending:
        _kind, section, name = pending.pop().split("/")[1:]
        node = components.get(section, {}).get(name)
        more: set[str] = set()
        _refs(node, more)
        pending += sorted(more - wanted)
        wanted |= more
    kept: dict[str, dict] = {"securitySchemes": {ADMIN_BEARER: components["securitySchemes"][ADMIN_BEARER]}}
    for ref in sorted(wanted):
        _kind, section, name = ref.split("/")[1:]
        kept.setdefault(section, {})[name] = components[section][name]
    tags = {op.get("tags", [None])[0] for item in paths.values() for op in item.values() if isinstance(op, dict)}
    return {"openapi": spec["openapi"], "info": spec["info"], "paths": paths, "components": kept,
            "tags": [tag for tag in spec.get("tags", []) if tag["name"] in tags]}


def spec_text(app) -> str:
    return json.dumps(admin_openapi(app), ensure_ascii=False, indent=2, sort_keys=True) + "\n"


def write_spec(path: Path = SPEC_FILE) -> None:
    app = create_app()
    try:
        Path(path).write_text(spec_text(app), encoding="utf-8")
    finally:
        app.extensions["hpay_runtime"].close()


# --- building ----------------------------------------------------------------------------------------------

def _newest_source_mtime(root: Path = CONSOLE_ROOT) -> float:
    newest = 0.0
    for name in SOURCES:
        path = root / name
        files = path.rglob("*") if path.is_dir() else [path]
        newest = max([newest, *(f.stat().st_mtime for f in files if f.is_file())])
    return newest


def build_is_stale(root: Path = CONSOLE_ROOT) -> bool:
    index = root / "dist" / "index.html"
    return not index.is_file() or index.stat().st_mtime < _newest_source_mtime(root)


def _dependencies_are_stale(root: Path) -> bool:
    installed = root / "node_modules" / ".package-lock.json"
    return not installed.is_file() or installed.stat().st_mtime < (root / "package-lock.json").stat().st_mtime


@contextmanager
def _build_lock(root: Path):
    """One build at a time per checkout (make run and a test session may both want one)."""
    with open(root / ".build.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _npm(root: Path, *args: str) -> None:
    subprocess.run(["npm", *args], cwd=root, check=True)


def ensure_node_modules(root: Path = CONSOLE_ROOT) -> None:
    if _dependencies_are_stale(root):
        print("console: npm ci (from package-lock.json)", flush=True)
        _npm(root, "ci", "--no-audit", "--no-fund", "--loglevel=error")


def build(root: Path = CONSOLE_ROOT, if_stale: bool = False) -> bool:
    """Build the console (type check, then vite build) into dist/; True when it built."""
    with _build_lock(root):
        if if_stale and not build_is_stale(root):
            return False
        ensure_node_modules(root)
        print("console: vue-tsc --noEmit && vite build", flush=True)
        _npm(root, "run", "--silent", "build")
        return True


def regenerate_client(root: Path = CONSOLE_ROOT) -> None:
    write_spec(root / "openapi.json")
    ensure_node_modules(root)
    subprocess.run(["npx", "--no-install", "openapi-typescript", "openapi.json", "-o", "src/api/schema.d.ts"],
                   cwd=root, check=True)


def main(argv: list[str]) -> int:
    command = argv[0] if argv else "build"
    if command == "build":
        built = build(if_stale="--if-stale" in argv)
        print(f"console: {'built' if built else 'up to date'} in {CONSOLE_DIST}", flush=True)
    elif command == "client":
        regenerate_client()
    elif command == "spec" and len(argv) == 2:
        write_spec(Path(argv[1]))
    else:
        print(__doc__, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
