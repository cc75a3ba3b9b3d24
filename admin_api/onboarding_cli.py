"""Setting a clinic up from the command line, for automation: the same use cases as the operator's API routes.

    flask --app wsgi clinic create CODE NAME
    flask --app wsgi clinic his-set CODE --base-url URL --key-id ID --secret-file FILE   (- reads stdin)
    flask --app wsgi clinic his-check CODE
    flask --app wsgi channel-app add --file app.json [--clinic CODE | --platform]
    flask --app wsgi channel-app check ID
    flask --app wsgi user create NAME --role ROLE [--clinic CODE ...] [--password-file FILE]

Secrets come from files or stdin, never from the command line (argv is visible to every user of the host). The
channel app's JSON is the body of POST /clinics/{code}/channel-apps. Results are printed as JSON; a refusal
exits with status 1 and says why. Changes are audited as `cli:<the OS user>`.

It lives with the admin API because it speaks the operator routes' schemas; app.factory hands the commands to
app.cli, which registers them (only the factory imports admin_api).
"""
from __future__ import annotations

import getpass
import json
import sys

import click
from flask.cli import with_appcontext
from marshmallow import ValidationError

from admin_api.onboarding_schemas import ChannelAppCreateSchema, ChannelAppSchema, CheckResultSchema, ClinicSchema
from app.domain.errors import DomainError
from app.extensions import runtime
from app.services.clinics import app_checks, channel_apps, onboarding
from app.services.common.principals import StaffPrincipal
from app.services.people.staff_auth import OPERATOR, PASSWORD_MAX_LEN, ROLES, create_user


def _actor() -> StaffPrincipal:
    return StaffPrincipal(0, f"cli:{getpass.getuser()}"[:100], OPERATOR, (), actor_type="cli")


def _echo(document: dict) -> None:
    click.echo(json.dumps(document, ensure_ascii=False, indent=2, default=str))


def _refused(exc: DomainError) -> click.ClickException:
    details = "; ".join(f"{field}: {', '.join(map(str, why)) if isinstance(why, list) else why}"
                        for field, why in (exc.details or {}).items())
    return click.ClickException(f"{exc.code}: {exc.message}" + (f" ({details})" if details else ""))


def _read_secret(path: str, what: str) -> str:
    """A secret from a file, or from stdin when the path is `-` (trailing newline dropped)."""
    try:
        text = sys.stdin.read() if path == "-" else open(path, encoding="utf-8").read()
    except OSError as exc:
        raise click.ClickException(f"cannot read the {what}: {exc.strerror}") from None
    return text.rstrip("\r\n")


@click.group("clinic")
def clinic_group() -> None:
    """Clinics and their HIS connection."""


@clinic_group.command("create")
@with_appcontext
@click.argument("code")
@click.argument("name")
def clinic_create(code: str, name: str) -> None:
    """A new active clinic CODE called NAME (no HIS or channel apps yet)."""
    try:
        _echo(ClinicSchema().dump(onboarding.create_clinic(runtime(), _actor(), code, name)))
    except DomainError as exc:
        raise _refused(exc) from None


@clinic_group.command("his-set")
@with_appcontext
@click.argument("code")
@click.option("--base-url", required=True, help="the HIS API root")
@click.option("--key-id", required=True, help="the key id both directions sign with")
@click.option("--secret-file", required=True, help="a file holding the HMAC secret, or - for stdin")
def clinic_his_set(code: str, base_url: str, key_id: str, secret_file: str) -> None:
    """Connect clinic CODE's HIS (then check it with his-check)."""
    secret = _read_secret(secret_file, "HIS secret")
    try:
        _echo(ClinicSchema().dump(onboarding.set_his(runtime(), _actor(), code, base_url, key_id, secret)))
    except DomainError as exc:
        raise _refused(exc) from None


@clinic_group.command("his-check")
@with_appcontext
@click.argument("code")
def clinic_his_check(code: str) -> None:
    """A signed call to clinic CODE's HIS; exits 1 when it is not ok."""
    try:
        result = onboarding.check_his(runtime(), _actor(), code)
    except DomainError as exc:
        raise _refused(exc) from None
    _echo(CheckResultSchema().dump(result))
    if not result["ok"]:
        sys.exit(1)


@click.group("channel-app")
def channel_app_group() -> None:
    """Channel apps of a clinic or of the platform."""


@channel_app_group.command("add")
@with_appcontext
@click.option("--file", "path", required=True, help="the app as JSON (the API's body), or - for stdin")
@click.option("--clinic", "clinic_code", default=None, help="the clinic whose app it is")
@click.option("--platform", is_flag=True, help="an app of the platform itself")
def channel_app_add(path: str, clinic_code: str | None, platform: bool) -> None:
    """Add a channel app from a JSON file; prints it (secrets as fingerprints)."""
    if platform == (clinic_code is not None):
        raise click.ClickException("name the app's clinic with --clinic CODE, or --platform for the platform's")
    try:
        body = ChannelAppCreateSchema().load(json.loads(_read_secret(path, "app file")))
    except ValueError as exc:  # json.JSONDecodeError and marshmallow's ValidationError are ValueErrors
        messages = exc.messages if isinstance(exc, ValidationError) else str(exc)
        raise click.ClickException(f"the app file is not valid: {messages}") from None
    try:
        _echo(ChannelAppSchema().dump(channel_apps.create_app(runtime(), _actor(), clinic_code, body)))
    except DomainError as exc:
        raise _refused(exc) from None


@channel_app_group.command("check")
@with_appcontext
@click.argument("app_id", type=int)
def channel_app_check(app_id: int) -> None:
    """A signed call to the channel with app APP_ID's keys; exits 1 when it is not ok."""
    try:
        result = app_checks.check_app(runtime(), _actor(), app_id)
    except DomainError as exc:
        raise _refused(exc) from None
    _echo(CheckResultSchema().dump(result))
    if not result["ok"]:
        sys.exit(1)


@click.group("user")
def user_group() -> None:
    """Staff users (operators are made here only)."""


@user_group.command("create")
@with_appcontext
@click.argument("username")
@click.option("--role", type=click.Choice(ROLES), required=True)
@click.option("--clinic", "clinics", multiple=True, help="a clinic code (repeat for several; none for an operator)")
@click.option("--password-file", default=None, help="a file holding the password, or - for stdin; else prompted")
def user_create(username: str, role: str, clinics: tuple[str, ...], password_file: str | None) -> None:
    """Create USERNAME with a role and clinics; the password is read from a file, stdin or a prompt."""
    if password_file is not None:
        password = _read_secret(password_file, "password")
    else:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=sys.stdin.isatty())
    if len(password) > PASSWORD_MAX_LEN:
        raise click.ClickException(f"the password is longer than {PASSWORD_MAX_LEN} characters")
    try:
        with runtime().db.session() as session:
            user = create_user(session, username, password, role, list(clinics), actor=_actor())
            document = {"id": user.id, "username": user.username, "role": role, "clinic_codes": sorted(clinics)}
    except DomainError as exc:
        raise _refused(exc) from None
    _echo(document)


COMMANDS = (clinic_group, channel_app_group, user_group)
