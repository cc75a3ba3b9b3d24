"""One small machine for every record whose status matters: which moves are legal, and nothing else.

A machine knows its states (a StrEnum) and, for each state, the states it may move to. `check` refuses
an illegal move with `InvalidTransition`; the service that applies a legal one does it as a conditional
update and records an event (app.services.common.status). A state absent from the table is final.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from enum import StrEnum
from typing import Generic, TypeVar

from app.domain.errors import InvalidTransition

S = TypeVar("S", bound=StrEnum)


class StateMachine(Generic[S]):
    def __init__(self, name: str, states: type[S], moves: Mapping[S, Iterable[S]]) -> None:
        self.name = name
        self.states: tuple[S, ...] = tuple(states)
        self._state_type = states
        self._moves: dict[S, frozenset[S]] = {states(origin): frozenset(states(to) for to in targets)
                                             for origin, targets in moves.items()}

    def __repr__(self) -> str:
        return f"StateMachine({self.name!r})"

    def state(self, value: str) -> S:
        """The state named `value`; InvalidTransition for a status this machine does not know."""
        try:
            return self._state_type(value)
        except ValueError:
            raise InvalidTransition(f"{value!r} is not a status of a {self.name}",
                                    details={"status": value}) from None

    def allows(self, from_status: str, to_status: str) -> bool:
        try:
            origin, target = self._state_type(from_status), self._state_type(to_status)
        except ValueError:
            return False
        return target in self._moves.get(origin, frozenset())

    def check(self, from_status: str, to_status: str) -> tuple[S, S]:
        """(from, to) as states when the move is legal; InvalidTransition otherwise."""
        origin, target = self.state(from_status), self.state(to_status)
        if target not in self._moves.get(origin, frozenset()):
            raise InvalidTransition(f"a {self.name} cannot go from {origin} to {target}",
                                    details={"from": str(origin), "to": str(target)})
        return origin, target

    def targets(self, from_status: str) -> frozenset[S]:
        return self._moves.get(self.state(from_status), frozenset())

    def final(self, status: str) -> bool:
        return not self.targets(status)

    def legal_moves(self) -> set[tuple[S, S]]:
        return {(origin, target) for origin, targets in self._moves.items() for target in targets}
