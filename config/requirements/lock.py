"""`make lock`: compile pyproject.toml's pins into hashed lock files with pip-tools (pip-compile).

    base.txt   the dependencies: what the image (config/deploy/Dockerfile) installs
    dev.txt    + the `dev` extra (the embedded Redis of `make run`, pip-tools)
    test.txt   + `dev`, `test` and `lint` (when pyproject defines it): what `make install` installs

test.txt is compiled first; base.txt and dev.txt are then constrained by it, so a package has one version in
every file. pip-compile keeps the pins already in a lock file unless pyproject now asks for something else, so
re-locking after one changed pin changes only what that pin pulls in. Extra arguments go to every
pip-compile, e.g. `make lock LOCK_ARGS="--upgrade-package requests"`.
"""
from __future__ import annotations

import os
import shlex
import subprocess
import sys
import time
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
# (lock file, extras it adds to the dependencies); an extra pyproject does not define is left out.
LOCKS = (("test.txt", ("dev", "test", "lint")), ("dev.txt", ("dev",)), ("base.txt", ()))
COMPILE = ("--quiet", "--generate-hashes", "--allow-unsafe", "--strip-extras", "--no-emit-index-url",
           "--no-emit-find-links", "--no-emit-trusted-host")


def defined_extras() -> set[str]:
    with (ROOT / "pyproject.toml").open("rb") as handle:
        return set(tomllib.load(handle)["project"].get("optional-dependencies", {}))


def main(argv: list[str]) -> int:
    pip_compile = Path(sys.executable).parent / "pip-compile"
    extras_available = defined_extras()
    env = {**os.environ, "CUSTOM_COMPILE_COMMAND": "make lock"}
    for name, extras in LOCKS:
        output = HERE / name
        argv_compile = [str(pip_compile), *COMPILE, *argv, "-o", str(output.relative_to(ROOT))]
        argv_compile += [arg for extra in extras if extra in extras_available for arg in ("--extra", extra)]
        if name != "test.txt":
            argv_compile += ["-c", str((HERE / "test.txt").relative_to(ROOT))]
        argv_compile.append("pyproject.toml")
        started = time.monotonic()
        print(f"lock: {shlex.join(argv_compile[1:])}", flush=True)
        done = subprocess.run(argv_compile, cwd=ROOT, env=env)
        if done.returncode:
            return done.returncode
        print(f"lock: {name} done in {time.monotonic() - started:.0f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
