"""`flask --app wsgi reconcile --date D --source wechat|alipay|his`: reconcile one day by hand.

Every active merchant account of the channel (or the one named with --account) of every clinic (or the one
named with --clinic) is reconciled in turn, with a progress bar over each bill on a terminal. Running a
day again replaces its result. The exit status is 1 when any run failed; the reason is printed.
"""
from __future__ import annotations

import getpass
import sys
from datetime import timedelta

import click
from flask.cli import with_appcontext
from tqdm import tqdm

from app.db.types import utcnow
from app.domain.errors import DomainError
from app.extensions import runtime
from app.services.reconciliation import SOURCES, reconcile, targets
from app.services.reconciliation.findings import shanghai_today


class BarProgress:
    """A tqdm bar over the bytes of the bill; silent when stderr is not a terminal."""

    def __init__(self) -> None:
        self._bar: tqdm | None = None

    def begin(self, label: str, total_bytes: int) -> None:
        self._bar = tqdm(total=total_bytes, desc=label, unit="B", unit_scale=True, unit_divisor=1024,
                         file=sys.stderr, disable=None, leave=False)

    def advance(self, read_bytes: int) -> None:
        if self._bar is not None:
            self._bar.update(read_bytes)

    def end(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None


def _summary(run: dict) -> str:
    counts, totals = run["counts"], run["totals"]
    where = run["app_id"] or run["clinic_code"]
    line = (f"{run['date']} {run['source']} {where}: {run['status']}, matched {counts['matched']}, "
            f"discrepancies {counts['discrepancies']}, repaired {counts['repaired']}, held {counts['held']}")
    if "bill_rows" in totals:
        line += (f"; bill rows {totals['bill_rows']}, fees {totals['bill_fee_fen'] / 100:.2f} yuan"
                 if totals.get("bill_exists") else "; no bill for the day")
    return line + (" (provisional: the day has not ended)" if run["provisional"] else "")


@click.command("reconcile")
@with_appcontext
@click.option("--date", "day", type=click.DateTime(formats=["%Y-%m-%d"]), default=None,
              help="the Asia/Shanghai business day, YYYY-MM-DD (default: yesterday)")
@click.option("--source", type=click.Choice(SOURCES), required=True, help="a channel's bill, or the HIS's export")
@click.option("--clinic", "clinic_code", default=None, help="one clinic's code (default: every clinic)")
@click.option("--account", "app_id", default=None, help="one merchant account's app id (default: every active one)")
def reconcile_command(day, source: str, clinic_code: str | None, app_id: str | None) -> None:
    """Reconcile a day of a channel's bill or of the HIS's export against the platform's records."""
    rt = runtime()
    business_date = day.date() if day else shanghai_today(utcnow()) - timedelta(days=1)
    try:
        chosen = targets(rt, source, clinic_code, app_id)
    except DomainError as exc:
        raise click.ClickException(exc.message) from None
    if not chosen:
        raise click.ClickException(f"nothing to reconcile: no active {source} merchant account")
    failed = 0
    for clinic_id, account_id in chosen:
        try:
            run = reconcile(rt, business_date, source, clinic_id, account_id, started_by=f"cli:{getpass.getuser()}",
                            progress=BarProgress())
        except Exception as exc:  # every target is tried; the failure is reported and counted
            failed += 1
            click.echo(f"{business_date} {source}: FAILED: {exc.__class__.__name__}: {exc}", err=True)
            continue
        click.echo(_summary(run))
    if failed:
        raise click.ClickException(f"{failed} of {len(chosen)} reconciliation runs failed")
