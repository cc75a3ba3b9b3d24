"""`flask --app wsgi bill-push-mode CODE push|poll`: how a clinic's new visit bills reach the platform."""
from __future__ import annotations

import click
from flask.cli import with_appcontext

from app.domain.errors import DomainError
from app.extensions import runtime
from app.services.messaging import BILL_PUSH_MODES, set_bill_push_mode


@click.command("bill-push-mode")
@with_appcontext
@click.argument("clinic_code")
@click.argument("mode", type=click.Choice(BILL_PUSH_MODES))
def bill_push_mode_command(clinic_code: str, mode: str) -> None:
    """push: the clinic's HIS announces bills (POST /api/his/v1/events); poll: the platform reads the unpaid bills
    of subscribed patients' cards every HPAY_BILL_POLL_INTERVAL_S (for a HIS that cannot announce)."""
    try:
        set_bill_push_mode(runtime(), clinic_code, mode)
    except DomainError as exc:
        raise click.ClickException(exc.message) from None
    click.echo(f"clinic {clinic_code}: new bills arrive by {mode}")
