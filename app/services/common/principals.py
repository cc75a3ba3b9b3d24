"""Who is calling a use case: a mini-program user or a staff user, as their token named them."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class MpPrincipal:
    user_id: int
    clinic_id: int
    channel: str


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
