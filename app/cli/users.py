"""`flask --app wsgi create-user`: a staff, finance or admin user of one or more clinics, or an operator (of none).
Kept for existing scripts; `flask --app wsgi user create` (admin_api.onboarding_cli) also reads the password from
a file."""
from __future__ import annotations

import click
from flask.cli import with_appcontext

from app.domain.errors import InvalidInput
from app.extensions import runtime
from app.services.people.staff_auth import ROLES, create_user


@click.command("create-user")
@with_appcontext
@click.argument("username")
@click.option("--role", type=click.Choice(ROLES), required=True, help="what the user may do")
@click.option("--clinic", "clinics", multiple=True, help="a clinic code (repeat for several; none for an operator)")
@click.option("--password", prompt=True, hide_input=True, confirmation_prompt=True,
              help="prompted for when not given (and read from stdin when it is not a terminal)")
def create_user_command(username: str, role: str, clinics: tuple[str, ...], password: str) -> None:
    """Create USERNAME with a password (hashed with argon2), a role and the clinics whose data it may use."""
    try:
        with runtime().db.session() as session:
            user = create_user(session, username, password, role, list(clinics), created_by="cli")
            summary = f"user {user.username} (id {user.id}) created: {role} of {', '.join(sorted(clinics))}"
    except InvalidInput as exc:
        problems = "; ".join(f"{field}: {', '.join(msgs)}" for field, msgs in exc.details.items())
        raise click.ClickException(f"{exc.message} {problems}") from None
    click.echo(summary)
