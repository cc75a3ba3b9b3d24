"""Mini-program login: the channel vouches for the code, we issue our own session token.

Tokens carry the user's token version; logout increments it, so every token issued before is
refused (`token_revoked`). Checking it costs one primary-key read per request.
"""
from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app import metrics
from app.channels.base import ChannelRejected, ChannelUnavailable
from app.db.models import MpUser
from app.db.types import utcnow
from app.domain.errors import Unauthorized, Unavailable
from app.runtime import Runtime
from app.services.clinics import channel_for_account, get_clinic, login_account, require_active
from app.services.common.principals import MpPrincipal, MpSignedSession
from app.services.people.tokens import issue_token, read_token

MP_AUDIENCE = "mp"


@dataclass(frozen=True)
class MpSession:
    token: str
    expires_in: int
    user_id: int
    channel: str
    openid: str


def login(rt: Runtime, clinic_code: str, channel: str, code: str, app_id: str | None = None) -> MpSession:
    """Sign in through one app of the clinic (or the platform's app, named by `app_id`): the user is a user of
    that (clinic, app), and pays through that app."""
    with rt.db.session() as session:
        clinic = require_active(get_clinic(session, clinic_code))
        account = login_account(session, clinic, channel, app_id)
        adapter = channel_for_account(rt, session, account)
    # The channel call happens outside any transaction: it may take seconds.
    try:
        identity = adapter.login(code)
    except ChannelRejected as exc:
        metrics.LOGIN_FAILURES.labels("mini_program", "invalid_login_code").inc()
        raise Unauthorized(f"the {channel} login code was refused: {exc.message}", "invalid_login_code") from None
    except ChannelUnavailable:
        raise Unavailable(f"{channel} did not answer; try again", "channel_unavailable") from None

    try:
        user_id, version = _upsert_user(rt, clinic.id, account.id, channel, identity)
    except IntegrityError:
        # The same new user logged in twice at once; the other login created the row.
        user_id, version = _upsert_user(rt, clinic.id, account.id, channel, identity)
    return MpSession(_token(rt, user_id, clinic.id, channel, version), rt.settings.TOKEN_TTL_S, user_id, channel,
                     identity.openid)


def _token(rt: Runtime, user_id: int, clinic_id: int, channel: str, version: int) -> str:
    claims = {"uid": user_id, "cid": clinic_id, "ch": channel, "ver": version}
    return issue_token(rt.settings.SECRET_KEY, MP_AUDIENCE, claims)


def token_for(rt: Runtime, user_id: int) -> str:
    """A token of this user as a login would issue it now (for tools and benchmarks that skip the channel)."""
    with rt.db.session() as session:
        user = session.get(MpUser, user_id)
        return _token(rt, user.id, user.clinic_id, user.channel, user.token_version)


def logout(rt: Runtime, principal: MpPrincipal) -> None:
    """Revoke every token of this mini-program user (this one included)."""
    with rt.db.session() as session:
        session.execute(update(MpUser).where(MpUser.id == principal.user_id)
                        .values(token_version=MpUser.token_version + 1))


def _upsert_user(rt: Runtime, clinic_id: int, account_id: int, channel: str, identity) -> tuple[int, int]:
    with rt.db.session() as session:
        user = session.scalar(select(MpUser).where(MpUser.merchant_account_id == account_id,
                                                   MpUser.openid == identity.openid))
        if user is None:
            user = MpUser(clinic_id=clinic_id, merchant_account_id=account_id, channel=channel,
                          openid=identity.openid, unionid=identity.unionid)
            session.add(user)
        else:
            user.last_login_at = utcnow()
            user.unionid = identity.unionid or user.unionid
        session.flush()
        return user.id, user.token_version or 0


def authenticate(rt: Runtime, bearer_token: str) -> MpPrincipal:
    """The principal of a token whose signature, expiry and session (not logged out) all hold."""
    return confirm_session(rt, read_session(rt, bearer_token))


def read_session(rt: Runtime, bearer_token: str) -> MpSignedSession:
    """The token's signature, expiry and claims, without the database: its session is not confirmed yet."""
    claims = read_token(rt.settings.SECRET_KEY, MP_AUDIENCE, bearer_token, rt.settings.TOKEN_TTL_S)
    try:
        principal = MpPrincipal(int(claims["uid"]), int(claims["cid"]), str(claims["ch"]))
        return MpSignedSession(principal, int(claims["ver"]))
    except (KeyError, TypeError, ValueError):
        raise Unauthorized("the bearer token is not valid", "invalid_token") from None


def confirm_session(rt: Runtime, mp_session: MpSignedSession) -> MpPrincipal:
    """Check once that the token's session is still live (the user exists and did not log out since)."""
    if not mp_session.confirmed:
        with rt.db.session() as session:
            confirm_session_in(session, mp_session)
    return mp_session.principal


def confirm_session_in(session: Session, mp_session: MpSignedSession, lock_user: bool = False) -> MpPrincipal:
    """`confirm_session` as the first statement of the caller's transaction; with `lock_user`, the user's row
    stays locked until it ends (a use case counting what the user did, one request of theirs at a time)."""
    query = select(MpUser.token_version).where(MpUser.id == mp_session.principal.user_id)
    current = session.scalar(query.with_for_update() if lock_user else query)
    if current is None:
        raise Unauthorized("the bearer token is not valid", "invalid_token")
    if current != mp_session.token_version:
        raise Unauthorized("this session was ended (logout); log in again", "token_revoked")
    mp_session.confirmed = True
    return mp_session.principal


def signed_principal(rt: Runtime, bearer_token: str) -> MpPrincipal | None:
    """Whom a well-signed, unexpired token names, without reading the database (for rate-limit keys: a
    forged token cannot pass the signature; a revoked one still names its user). None otherwise."""
    try:
        claims = read_token(rt.settings.SECRET_KEY, MP_AUDIENCE, bearer_token, rt.settings.TOKEN_TTL_S)
        return MpPrincipal(int(claims["uid"]), int(claims["cid"]), str(claims["ch"]))
    except (Unauthorized, KeyError, TypeError, ValueError):
        return None
