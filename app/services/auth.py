"""Mini-program login: the channel vouches for the code, we issue our own session token."""
from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from app.channels.base import ChannelRejected, ChannelUnavailable
from app.db.models import MpUser
from app.db.types import utcnow
from app.domain.errors import Unauthorized, Unavailable
from app.runtime import Runtime
from app.services.merchants import channel_for_account, get_clinic, primary_account
from app.services.tokens import issue_token, read_token

MP_AUDIENCE = "mp"


@dataclass(frozen=True)
class MpSession:
    token: str
    expires_in: int
    user_id: int
    channel: str
    openid: str


@dataclass(frozen=True)
class MpPrincipal:
    user_id: int
    clinic_id: int
    channel: str


def login(rt: Runtime, clinic_code: str, channel: str, code: str) -> MpSession:
    with rt.db.session() as session:
        clinic = get_clinic(session, clinic_code)
        account = primary_account(session, clinic.id, channel)
        adapter = channel_for_account(session, account, rt.settings)
    # The channel call happens outside any transaction: it may take seconds.
    try:
        identity = adapter.login(code)
    except ChannelRejected as exc:
        raise Unauthorized(f"the {channel} login code was refused: {exc.message}", "invalid_login_code") from None
    except ChannelUnavailable:
        raise Unavailable(f"{channel} did not answer; try again", "channel_unavailable") from None

    try:
        user_id = _upsert_user(rt, clinic.id, account.id, channel, identity)
    except IntegrityError:
        # The same new user logged in twice at once; the other login created the row.
        user_id = _upsert_user(rt, clinic.id, account.id, channel, identity)
    claims = {"uid": user_id, "cid": clinic.id, "ch": channel}
    ttl = rt.settings.TOKEN_TTL_S
    return MpSession(issue_token(rt.settings.SECRET_KEY, MP_AUDIENCE, claims), ttl, user_id, channel,
                     identity.openid)


def _upsert_user(rt: Runtime, clinic_id: int, account_id: int, channel: str, identity) -> int:
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
        return user.id


def authenticate(rt: Runtime, bearer_token: str) -> MpPrincipal:
    claims = read_token(rt.settings.SECRET_KEY, MP_AUDIENCE, bearer_token, rt.settings.TOKEN_TTL_S)
    try:
        return MpPrincipal(int(claims["uid"]), int(claims["cid"]), str(claims["ch"]))
    except (KeyError, TypeError, ValueError):
        raise Unauthorized("the bearer token is not valid", "invalid_token") from None
