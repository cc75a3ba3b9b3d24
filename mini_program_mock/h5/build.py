"""Building the H5 pages (mini_program_mock/h5/web) without importing the platform.

    python -m mini_program_mock.h5.build [--if-stale]   # npm ci (when the lockfile changed), vue-tsc, vite build

`make run` (app/cli/devstack.py), `make h5` and the browser tests' session call `build(if_stale=True)`: it runs
`npm ci` when node_modules is older than package-lock.json, and `vite build` when dist/ is missing or older than
any source, one build at a time per checkout (a file lock), so a test session and `make run` never build over each
other.
"""
from __future__ import annotations

import fcntl
import shutil
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path

WEB_ROOT = Path(__file__).resolve().parent / "web"
DIST = WEB_ROOT / "dist"
# What the build is made from: a change to any of these makes the build stale.
SOURCES = ("src", "public", "index.html", "package.json", "package-lock.json", "vite.config.ts", "tsconfig.json")


class BuildUnavailable(RuntimeError):
    """npm is not installed: the sandbox still runs, and /h5/ says how to build the pages."""


def _newest_source_mtime(root: Path) -> float:
    newest = 0.0
    for name in SOURCES:
        path = root / name
        files = path.rglob("*") if path.is_dir() else [path]
        newest = max([newest, *(f.stat().st_mtime for f in files if f.is_file())])
    return newest


def build_is_stale(root: Path = WEB_ROOT) -> bool:
    index = root / "dist" / "index.html"
    return not index.is_file() or index.stat().st_mtime < _newest_source_mtime(root)


def dependencies_are_stale(root: Path = WEB_ROOT) -> bool:
    installed = root / "node_modules" / ".package-lock.json"
    return not installed.is_file() or installed.stat().st_mtime < (root / "package-lock.json").stat().st_mtime


@contextmanager
def _build_lock(root: Path):
    with open(root / ".build.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _npm(root: Path, *args: str) -> None:
    if shutil.which("npm") is None:
        raise BuildUnavailable("npm is missing (apt-get install nodejs npm, then make h5)")
    subprocess.run(["npm", *args], cwd=root, check=True)


def ensure_node_modules(root: Path = WEB_ROOT) -> None:
    if dependencies_are_stale(root):
        print("h5: npm ci (from package-lock.json)", flush=True)
        _npm(root, "ci", "--no-audit", "--no-fund", "--loglevel=error")


def build(root: Path = WEB_ROOT, if_stale: bool = False) -> bool:
    """Build the pages (type check, then vite build) into dist/; True when it built."""
    with _build_lock(root):
        if if_stale and not build_is_stale(root):
            return False
        ensure_node_modules(root)
        print("h5: vue-tsc --noEmit && vite build", flush=True)
        _npm(root, "run", "--silent", "build")
        return True


def main(argv: list[str]) -> int:
    if argv and argv[0] not in ("--if-stale",):
        print(__doc__, file=sys.stderr)
        return 2
    try:
        built = build(if_stale="--if-stale" in argv)
    except BuildUnavailable as exc:
        print(f"h5: not built: {exc}", file=sys.stderr)
        return 1
    print(f"h5: {'built' if built else 'up to date'} in {DIST}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
