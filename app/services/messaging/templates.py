"""The message templates of a channel app, as the operator configures them from the channel's console:
for each purpose the channel's template id, which of our facts each keyword shows, and the page opened."""
from __future__ import annotations

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from app.db.models import Clinic, MerchantAccount, MessageTemplate
from app.db.types import utcnow
from app.domain.errors import InvalidInput, NotFound
from app.domain.messaging import (
    DEFAULT_ORDER,
    DEFAULT_PAGE,
    SOURCES,
    Purpose,
    default_fields,
    fields_problem,
    page_problem,
)
from app.runtime import Runtime
from app.services.common.audit import record_staff_event
from app.services.common.principals import StaffPrincipal

MAX_ROW_ID = 2**31 - 1
TEMPLATE_ID_MAX_LEN = 128


def template_view(row: MessageTemplate) -> dict:
    return {"template_id": row.template_id, "purpose": row.purpose, "fields": dict(row.fields), "page": row.page,
            "updated_at": row.updated_at, "updated_by": row.updated_by}


def app_templates(session: Session, merchant_account_id: int) -> list[MessageTemplate]:
    return list(session.scalars(select(MessageTemplate).where(MessageTemplate.merchant_account_id
                                                              == merchant_account_id).order_by(MessageTemplate.id)))


def template_for(session: Session, merchant_account_id: int, purpose: str) -> MessageTemplate | None:
    return session.scalar(select(MessageTemplate).where(MessageTemplate.merchant_account_id == merchant_account_id,
                                                        MessageTemplate.purpose == str(purpose)))


def _scoped_app(session: Session, scope: tuple[int, ...] | None, app_row_id: int) -> MerchantAccount:
    """The app, if the caller may see it: `scope` is the caller's clinics, or None for an operator, who sees every
    clinic's apps and the platform's own (an admin never sees the platform's: they belong to no clinic)."""
    account = None
    if 0 < app_row_id <= MAX_ROW_ID:
        query = select(MerchantAccount).where(MerchantAccount.id == app_row_id)
        if scope is not None:
            query = query.where(MerchantAccount.clinic_id.in_(scope))
        account = session.scalar(query)
    if account is None:
        raise NotFound(f"no channel app {app_row_id}" + ("" if scope is None else " in your clinics"),
                       "channel_app_not_found")
    return account


def get_templates(rt: Runtime, scope: tuple[int, ...] | None, app_row_id: int) -> list[dict]:
    with rt.db.session() as session:
        return [template_view(row) for row in app_templates(session, _scoped_app(session, scope, app_row_id).id)]


def template_options(rt: Runtime, scope: tuple[int, ...] | None, app_row_id: int) -> dict:
    """What a form for the app's templates offers: the app itself, and for each purpose the facts a keyword may
    show and those its template's keywords usually show, in order."""
    with rt.db.session() as session:
        account = _scoped_app(session, scope, app_row_id)
        clinic_code = session.scalar(select(Clinic.code).where(Clinic.id == account.clinic_id)) \
            if account.clinic_id is not None else None
        return {"app": {"id": account.id, "name": account.name, "channel": account.channel,
                        "app_id": account.app_id, "clinic_code": clinic_code},
                "purposes": [{"purpose": str(purpose), "sources": list(SOURCES[purpose]),
                              "usual_sources": list(DEFAULT_ORDER[purpose])} for purpose in Purpose],
                "default_page": DEFAULT_PAGE}


def _checked(entries: list[dict]) -> list[dict]:
    purposes = [entry["purpose"] for entry in entries]
    errors: dict[str, list[str]] = {}
    if len(set(purposes)) != len(purposes):
        errors["purpose"] = ["one template per purpose"]
    template_ids = [entry["template_id"] for entry in entries]
    if len(set(template_ids)) != len(template_ids):
        errors["template_id"] = ["a template serves one purpose"]
    for entry in entries:
        problem = fields_problem(entry["purpose"], entry["fields"]) or page_problem(entry.get("page") or DEFAULT_PAGE)
        if problem:
            errors.setdefault(entry["purpose"], []).append(problem)
    if errors:
        raise InvalidInput("The request is not valid; see `errors` for each field.", "validation_failed", errors)
    return entries


def put_templates(rt: Runtime, principal: StaffPrincipal, scope: tuple[int, ...] | None, app_row_id: int,
                  entries: list[dict]) -> list[dict]:
    """Replace the app's templates with these (a purpose left out has none, and is never pushed); `scope` as for
    `_scoped_app`."""
    entries = _checked(entries)
    with rt.db.session() as session:
        account = _scoped_app(session, scope, app_row_id)
        before = [template_view(row) for row in app_templates(session, account.id)]
        replace_templates(session, account.id, entries, principal.username)
        after = [template_view(row) for row in app_templates(session, account.id)]
        record_staff_event(session, principal, account.clinic_id, "message_templates_set", "merchant_account",
                           account.id, before={"templates": _audit(before)}, after={"templates": _audit(after)})
        return after


def replace_templates(session: Session, merchant_account_id: int, entries: list[dict], by: str) -> None:
    session.execute(delete(MessageTemplate).where(MessageTemplate.merchant_account_id == merchant_account_id))
    session.flush()
    now = utcnow()
    for entry in entries:
        session.add(MessageTemplate(merchant_account_id=merchant_account_id, purpose=str(entry["purpose"]),
                                    template_id=entry["template_id"], fields=dict(entry["fields"]),
                                    page=entry.get("page") or DEFAULT_PAGE, updated_at=now, updated_by=by[:100]))
    session.flush()


def seed_from_channel(session: Session, merchant_account_id: int, published: list[dict], by: str) -> int:
    """Configure an app's templates from the channel's list of them (`[{template_id, purpose, fields[]}]`, as the
    sandbox publishes them), each keyword mapped to the purpose's usual facts in order. Returns how many."""
    entries = [{"template_id": t["template_id"], "purpose": t["purpose"],
                "fields": default_fields(t["purpose"], list(t.get("fields") or []))}
               for t in published if t.get("purpose") in set(Purpose) and t.get("template_id")]
    replace_templates(session, merchant_account_id, _checked(entries), by)
    return len(entries)


def _audit(views: list[dict]) -> list[dict]:
    return [{k: v for k, v in view.items() if k != "updated_at"} for view in views]
