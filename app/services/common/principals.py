"""Who is calling a use case: a mini-program user or a staff user, as their token named them."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class MpPrincipal:
    user_id: int
    clinic_id: int
    channel: str


@dataclass
class MpSignedSession:
    """What a well-signed, unexpired mini-program token says, before the database confirmed that its session
    is still live (logout ends a session by moving the user's token version on). Confirmed at most once, by
    `app.services.people.confirm_session`, before the first database work done for it."""

    principal: MpPrincipal
    token_version: int
    confirmed: bool = False


@dataclass(frozen=True)
class StaffPrincipal:
    user_id: int
    username: str
    role: str
    clinic_ids: tuple[int, ...]
    actor_type: str = "staff"
    """`staff` (a signed-in user), or `cli` (someone at the command line, acting as an operator)."""

    @property
    def platform_wide(self) -> bool:
        """The platform's operator: no clinics of its own, sees what the platform does for every clinic."""
        return self.role == "operator"
