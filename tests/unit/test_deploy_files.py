"""The deployment kit (config/deploy/, config/gunicorn.conf.py) holds together without a Docker engine.

`docker compose config` needs the compose plugin, which this machine's Docker client lacks, so the compose
file is interpolated here as compose would (the ${VAR:-default} and ${VAR:?message} forms, from the example
env file) and validated against the Compose Specification's JSON schema, which check-jsonschema ships
(vendor/compose-spec.json, vendored from compose-spec/compose-spec's schema/compose-spec.json). The
Dockerfile's COPY sources must exist and not be ignored, and every entry point the image and the compose
file run must be real.
"""
from __future__ import annotations

import fnmatch
import importlib.resources
import importlib.util
import json
import re
import runpy
import secrets
import shlex
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
import yaml
from cryptography.fernet import Fernet

from config.settings import ROOT, ConfigurationError, ProductionSettings

DEPLOY = ROOT / "config" / "deploy"
REQUIRED = ("HPAY_SECRET_KEY", "HPAY_DATA_KEYS", "HPAY_PUBLIC_BASE_URL", "POSTGRES_PASSWORD", "REDIS_PASSWORD")
PLATFORM_SERVICES = ("migrate", "web", "worker", "scheduler", "cron")


# --- compose, interpolated as compose does --------------------------------------------------------------------

class MissingVariable(Exception):
    pass


_VARIABLE = re.compile(r"\$(?:(?P<escaped>\$)|\{(?P<name>[A-Za-z_]\w*)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}"
                       r"|(?P<bare>[A-Za-z_]\w*))")


def interpolate(value, env: dict[str, str]):
    if isinstance(value, dict):
        return {key: interpolate(item, env) for key, item in value.items()}
    if isinstance(value, list):
        return [interpolate(item, env) for item in value]
    if not isinstance(value, str):
        return value

    def substitute(match: re.Match) -> str:
        if match["escaped"]:
            return "$"
        name, op = match["name"] or match["bare"], match["op"] or ""
        current = env.get(name)
        missing = current is None or (op.startswith(":") and current == "")
        if op.endswith("-"):
            return match["arg"] if missing else current
        if op.endswith("?"):
            if missing:
                raise MissingVariable(f"{name}: {match['arg']}")
            return current
        return current or ""

    return _VARIABLE.sub(substitute, value)


def env_file(path: Path) -> dict[str, str]:
    values = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            name, _, value = line.partition("=")
            values[name.strip()] = value.strip()
    return values


def filled_env() -> dict[str, str]:
    """The example env file with its placeholders replaced as the file tells the reader to."""
    env = env_file(DEPLOY / "hpay.env.example")
    env.update(HPAY_SECRET_KEY=secrets.token_urlsafe(48), HPAY_DATA_KEYS=Fernet.generate_key().decode(),
               POSTGRES_PASSWORD=secrets.token_hex(24), REDIS_PASSWORD=secrets.token_hex(24))
    return env


def compose(env: dict[str, str] | None = None) -> dict:
    return interpolate(yaml.safe_load((DEPLOY / "compose.yaml").read_text()), filled_env() if env is None else env)


def container_env(service: str, env: dict[str, str] | None = None) -> dict[str, str]:
    """What compose hands the container: the env_file, then `environment` over it."""
    env = filled_env() if env is None else env
    spec = compose(env)["services"][service]
    values = dict(env) if spec.get("env_file") == ".env" else {}
    values.update({key: str(value) for key, value in spec.get("environment", {}).items()})
    return values


def test_the_compose_file_is_valid_under_the_compose_specification():
    schema = json.loads((importlib.resources.files("check_jsonschema.builtin_schemas.vendor")
                         / "compose-spec.json").read_text())
    validator = jsonschema.validators.validator_for(schema)(schema)
    errors = [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(compose())]
    assert not errors


def test_a_missing_required_setting_stops_compose_with_its_name():
    for name in REQUIRED:
        env = filled_env()
        del env[name]
        with pytest.raises(MissingVariable, match=f"^{name}: set {name}"):
            compose(env)


def test_the_stack_starts_in_order_with_health_checks():
    services = compose()["services"]
    assert set(services) == {"postgres", "redis", "migrate", "web", "worker", "scheduler", "cron", "backup",
                             "proxy"}
    assert services["migrate"]["command"] == ["flask", "--app", "wsgi", "db-upgrade"]
    assert services["migrate"]["restart"] == "no"
    assert services["migrate"]["depends_on"] == {"postgres": {"condition": "service_healthy"},
                                                 "redis": {"condition": "service_healthy"}}
    for name in ("web", "worker", "scheduler", "cron"):
        assert services[name]["depends_on"]["migrate"] == {"condition": "service_completed_successfully"}
        assert services[name]["depends_on"]["redis"] == {"condition": "service_healthy"}
    assert "pg_isready" in services["postgres"]["healthcheck"]["test"][1]
    assert services["redis"]["healthcheck"]["test"] == ["CMD", "redis-cli", "ping"]
    assert "/readyz" in " ".join(services["web"]["healthcheck"]["test"])
    assert services["web"]["ports"] == ["127.0.0.1:8000:8000"]
    assert services["worker"]["command"] == ["python", "-m", "workers", "--no-scheduler"]
    assert services["scheduler"]["command"] == ["python", "-m", "workers"]
    assert services["cron"]["command"] == ["python", "-m", "workers.cron"]
    assert services["proxy"]["profiles"] == ["tls"]
    declared = set(compose()["volumes"])
    named = {volume.split(":")[0] for spec in services.values() for volume in spec.get("volumes", [])
             if not volume.startswith(("./", "/"))}
    assert named == declared == {"pgdata", "redisdata", "backups", "metrics"}
    # Every platform process counts into one volume, so /metrics adds up the workers' counts too.
    for name in ("web", "worker", "scheduler", "cron"):
        assert "metrics:/var/lib/hpay-metrics" in services[name]["volumes"]
    for spec in services.values():
        for volume in spec.get("volumes", []):
            if volume.startswith("./"):
                assert (DEPLOY / volume.split(":")[0]).exists() or volume.startswith("./tls:"), volume


def test_every_platform_container_gets_a_valid_production_configuration():
    for service in PLATFORM_SERVICES:
        environ = container_env(service)
        settings = ProductionSettings.from_env(environ)  # raises ConfigurationError on anything production refuses
        assert settings.ENV == "production" and environ["HPAY_ENV"] == "production"
        assert settings.DATABASE_URL.startswith("postgresql+psycopg://hpay:")
        assert "@postgres:5432/hpay" in settings.DATABASE_URL
        assert settings.REDIS_URL.startswith("redis://:") and settings.REDIS_URL.endswith("@redis:6379/0")
        assert settings.PUBLIC_BASE_URL.startswith("https://") and settings.PROXY_COUNT == 1
        assert settings.SANDBOX_URL == "" and settings.DEMO_PASSWORD == ""


def test_the_example_env_file_holds_placeholders_that_production_refuses():
    env = env_file(DEPLOY / "hpay.env.example")
    for name in ("HPAY_SECRET_KEY", "HPAY_DATA_KEYS", "POSTGRES_PASSWORD", "REDIS_PASSWORD"):
        assert env[name] == "CHANGE-ME"
    with pytest.raises(ConfigurationError, match="HPAY_SECRET_KEY"):
        ProductionSettings.from_env(container_env("web", env))
    from app.db.encrypted import parse_data_keys

    with pytest.raises(ConfigurationError):
        parse_data_keys(env["HPAY_DATA_KEYS"])


# --- the Dockerfile -------------------------------------------------------------------------------------------

def dockerfile() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    text = re.sub(r"\\\n", " ", (DEPLOY / "Dockerfile").read_text())
    found = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            instruction, _, rest = line.partition(" ")
            found.append((instruction.upper(), rest.strip()))
    return found


def ignored(path: str) -> bool:
    patterns = [p.strip() for p in (DEPLOY / "Dockerfile.dockerignore").read_text().splitlines()
                if p.strip() and not p.startswith("#")]
    parts = Path(path.rstrip("/")).parts
    prefixes = ["/".join(parts[:n]) for n in range(1, len(parts) + 1)]
    return any(fnmatch.fnmatch(prefix, pattern.removeprefix("**/")) or fnmatch.fnmatch(prefix, pattern)
               or fnmatch.fnmatch(Path(prefix).name, pattern.removeprefix("**/"))
               for pattern in patterns for prefix in prefixes)


def copy_sources() -> list[str]:
    sources = []
    for instruction, rest in dockerfile():
        if instruction == "COPY" and not rest.startswith("--from"):
            sources += shlex.split(rest)[:-1]
    return sources


def test_every_copy_source_exists_and_is_in_the_build_context():
    sources = copy_sources()
    assert sources
    for source in sources:
        matches = list(ROOT.glob(source.rstrip("/")))
        assert matches, f"COPY {source}: nothing in the repository matches"
        assert not ignored(source), f"COPY {source}: Dockerfile.dockerignore leaves it out of the context"
    assert "config/requirements/base.txt" in sources


def test_the_image_holds_every_module_the_platform_runs():
    sources = copy_sources()
    runtime_code = [p for p in ROOT.glob("*.py")] + [p for top in ("app", "workers", "admin_api", "config")
                                                      for p in (ROOT / top).rglob("*.py")
                                                      if "node_modules" not in p.parts and "web" not in p.parts]
    for path in runtime_code:
        relative = path.relative_to(ROOT).as_posix()
        if relative in ("conftest.py",):
            continue
        covered = any(fnmatch.fnmatch(relative, source) or relative.startswith(source.rstrip("/") + "/")
                      for source in sources if source.endswith(("/", ".py")))
        assert covered, f"{relative} is not copied into the image"
    assert not any(Path(ROOT / "admin_api").glob("*/__init__.py")), "admin_api grew a subpackage: COPY it"


def test_the_image_installs_the_hashed_lock_and_runs_as_an_unprivileged_user():
    steps = dockerfile()
    runs = " ".join(rest for instruction, rest in steps if instruction == "RUN")
    assert "pip install --require-hashes -r /tmp/requirements/base.txt" in runs
    assert "npm ci" in runs and "npm run build" in runs
    assert "build" in json.loads((ROOT / "admin_api" / "web" / "package.json").read_text())["scripts"]
    images = [rest.split()[0] for instruction, rest in steps if instruction == "FROM"]
    lock_python = re.search(r"with Python (\d+\.\d+)", (ROOT / "config/requirements/base.txt").read_text())[1]
    assert [image for image in images if image.startswith("python:")] == [f"python:{lock_python}-slim-bookworm"] * 2
    final_stage = steps[max(i for i, (instruction, _) in enumerate(steps) if instruction == "FROM"):]
    users = [rest for instruction, rest in final_stage if instruction == "USER"]
    assert users == ["hpay"]
    assert ("ENV" in dict(final_stage)) and "HPAY_ENV=production" in dict(final_stage)["ENV"]


def _entry_points() -> list[list[str]]:
    cmd = [json.loads(rest) for instruction, rest in dockerfile() if instruction == "CMD"]
    commands = [spec["command"] for name, spec in compose()["services"].items() if name in PLATFORM_SERVICES]
    return cmd + commands


def test_every_entry_point_the_image_and_compose_run_is_real():
    from app.cli import create_cli_app
    from config.settings import TestSettings

    app = create_cli_app(TestSettings(DATABASE_URL="sqlite:///:memory:", REDIS_URL="redis://127.0.0.1:1/0"))
    try:
        flask_commands = set(app.cli.commands)
    finally:
        app.extensions["hpay_runtime"].close()
    checked = 0
    for argv in _entry_points():
        if argv[0] == "gunicorn":
            config, target = argv[argv.index("-c") + 1], argv[-1]
            assert (ROOT / config).is_file()
            module, attribute = target.split(":")
            assert importlib.util.find_spec(module) is not None
            assert re.search(rf"^{attribute} = ", (ROOT / f"{module}.py").read_text(), re.M)
        elif argv[:2] == ["python", "-m"]:
            spec = importlib.util.find_spec(argv[2])
            assert spec is not None, argv
            if spec.submodule_search_locations:  # a package runs its __main__
                assert importlib.util.find_spec(f"{argv[2]}.__main__") is not None
            if len(argv) > 3:
                shown = subprocess.run([sys.executable, "-m", argv[2], "--help"], cwd=ROOT, capture_output=True,
                                       text=True, timeout=60)
                assert shown.returncode == 0 and all(option in shown.stdout for option in argv[3:]), shown.stderr
        elif argv[0] == "flask":
            assert argv[1:3] == ["--app", "wsgi"] and argv[3] in flask_commands
        else:
            raise AssertionError(f"unknown entry point {argv}")
        checked += 1
    assert checked == 6


# --- gunicorn, nginx, backups -----------------------------------------------------------------------------------

def test_the_gunicorn_settings_come_from_the_environment_with_sane_defaults(monkeypatch):
    from gunicorn.config import Config

    for name in ("HPAY_WEB_BIND", "HPAY_WEB_WORKERS", "HPAY_WEB_THREADS", "HPAY_WEB_CONTROL_SOCKET"):
        monkeypatch.delenv(name, raising=False)
    defaults = runpy.run_path(str(ROOT / "config" / "gunicorn.conf.py"))
    assert defaults["bind"] == ["0.0.0.0:8000"] and defaults["worker_class"] == "gthread"
    assert defaults["threads"] == 8 and defaults["workers"] >= 2
    assert defaults["accesslog"] is None and defaults["timeout"] >= defaults["graceful_timeout"] > 0
    monkeypatch.setenv("HPAY_WEB_BIND", "127.0.0.1:9001")
    monkeypatch.setenv("HPAY_WEB_WORKERS", "3")
    monkeypatch.setenv("HPAY_WEB_THREADS", "4")
    chosen = runpy.run_path(str(ROOT / "config" / "gunicorn.conf.py"))
    config = Config()
    for name in ("bind", "workers", "threads", "worker_class", "timeout", "graceful_timeout", "keepalive",
                 "accesslog", "forwarded_allow_ips", "secure_scheme_headers", "control_socket_disable"):
        config.set(name, chosen[name])
    assert (config.bind, config.workers, config.threads) == (["127.0.0.1:9001"], 3, 4)
    # Only the app's ProxyFix (HPAY_PROXY_COUNT) believes forwarding headers; gunicorn trusts no peer.
    assert config.forwarded_allow_ips == [] and config.secure_scheme_headers == {}
    assert config.control_socket_disable is True


def test_nginx_forwards_what_the_apps_proxy_count_of_one_expects():
    conf = (DEPLOY / "nginx.conf").read_text()
    assert re.search(r"server web:8000;", conf)
    assert "proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;" in conf
    assert "proxy_set_header X-Forwarded-Proto $scheme;" in conf
    # /metrics is never served on the public address (the app also answers it only to loopback or a token).
    assert re.search(r"location = /metrics \{\s*return 404;\s*\}", conf)
    assert "return 301 https://$host$request_uri;" in conf
    mounted = compose()["services"]["proxy"]["volumes"]
    assert "./nginx.conf:/etc/nginx/conf.d/default.conf:ro" in mounted
    assert any(volume.endswith(":/etc/nginx/tls:ro") for volume in mounted)
    assert "/etc/nginx/tls/fullchain.pem" in conf and "/etc/nginx/tls/privkey.pem" in conf
    assert container_env("web")["HPAY_PROXY_COUNT"] == "1"


def test_the_backup_script_is_valid_bash_and_the_backup_service_runs_it_daily():
    assert subprocess.run(["bash", "-n", str(DEPLOY / "backup.sh")]).returncode == 0
    backup = compose()["services"]["backup"]
    assert backup["entrypoint"] == ["bash", "/usr/local/bin/hpay-backup", "--daily"]
    assert "./backup.sh:/usr/local/bin/hpay-backup:ro" in backup["volumes"]
    assert "pg_dump --format=custom" in (DEPLOY / "backup.sh").read_text()
