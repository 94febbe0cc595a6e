"""The pure model of a sharing case: states, allowed transitions, deadlines and consent cover.

Plain Python with no Temporal or gRPC import, so it is tested directly. The SharingCase
workflow drives it; the gateway and adapters only translate.
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Collection
from dataclasses import dataclass, field


class State(enum.Enum):
    """The step a case is at. Names match ``sharing.v1.CaseState`` without the prefix."""

    REQUESTED = "REQUESTED"
    CHECKING_CONSENT = "CHECKING_CONSENT"
    DELIVERING = "DELIVERING"
    AWAITING_ACKNOWLEDGEMENT = "AWAITING_ACKNOWLEDGEMENT"
    CLOSED = "CLOSED"


class WaitingOn(enum.Enum):
    """Whose move it is. Names match ``sharing.v1.WaitingOn`` without the prefix."""

    SYSTEM = "SYSTEM"
    HOLDER = "HOLDER"
    RECIPIENT = "RECIPIENT"
    NOBODY = "UNSPECIFIED"


class Urgency(enum.Enum):
    """How urgent a request is. Names match ``sharing.v1.Urgency`` without the prefix."""

    RED = "RED"
    AMBER = "AMBER"
    GREEN = "GREEN"


class Step(enum.Enum):
    """The steps that run against a deadline."""

    HOLDER_RESPONDS = "holder_responds"
    OVERRIDE_DECISION = "override_decision"
    RECIPIENT_ACKNOWLEDGES = "recipient_acknowledges"


_TRANSITIONS: dict[State, frozenset[State]] = {
    State.REQUESTED: frozenset({State.CHECKING_CONSENT, State.CLOSED}),
    State.CHECKING_CONSENT: frozenset({State.DELIVERING, State.CLOSED}),
    State.DELIVERING: frozenset({State.AWAITING_ACKNOWLEDGEMENT, State.CLOSED}),
    State.AWAITING_ACKNOWLEDGEMENT: frozenset({State.CLOSED}),
    State.CLOSED: frozenset(),
}

_WAITING_ON: dict[State, WaitingOn] = {
    State.REQUESTED: WaitingOn.SYSTEM,
    State.CHECKING_CONSENT: WaitingOn.HOLDER,
    State.DELIVERING: WaitingOn.SYSTEM,
    State.AWAITING_ACKNOWLEDGEMENT: WaitingOn.RECIPIENT,
    State.CLOSED: WaitingOn.NOBODY,
}

# Published multi-agency safeguarding hub practice (DESIGN.md), as elapsed time. Working-hour
# calendars for AMBER and GREEN replace these elapsed-time figures when the full lifecycle lands.
DEADLINES: dict[Urgency, dict[Step, dt.timedelta]] = {
    Urgency.RED: {
        Step.HOLDER_RESPONDS: dt.timedelta(hours=2),
        Step.OVERRIDE_DECISION: dt.timedelta(hours=1),
        Step.RECIPIENT_ACKNOWLEDGES: dt.timedelta(hours=2),
    },
    Urgency.AMBER: {
        Step.HOLDER_RESPONDS: dt.timedelta(hours=6),
        Step.OVERRIDE_DECISION: dt.timedelta(hours=4),
        Step.RECIPIENT_ACKNOWLEDGES: dt.timedelta(days=1),
    },
    Urgency.GREEN: {
        Step.HOLDER_RESPONDS: dt.timedelta(days=3),
        Step.OVERRIDE_DECISION: dt.timedelta(days=1),
        Step.RECIPIENT_ACKNOWLEDGES: dt.timedelta(days=5),
    },
}


class InvalidTransition(Exception):
    """A command asked the case to move where its current state does not allow."""


@dataclass
class CaseProgress:
    """Where a case is, and the only way to move it."""

    state: State = State.REQUESTED
    history: list[State] = field(default_factory=lambda: [State.REQUESTED])

    @property
    def waiting_on(self) -> WaitingOn:
        """Whose move it is in the current state."""
        return _WAITING_ON[self.state]

    def can_move_to(self, target: State) -> bool:
        """Whether the current state allows moving to ``target``."""
        return target in _TRANSITIONS[self.state]

    def move_to(self, target: State) -> None:
        """Move to ``target``.

        Raises:
            InvalidTransition: the current state does not allow it.
        """
        if not self.can_move_to(target):
            raise InvalidTransition(f"{self.state.value} -> {target.value} is not allowed")
        self.state = target
        self.history.append(target)


def deadline(urgency: Urgency, step: Step, started: dt.datetime) -> dt.datetime:
    """When ``step`` of a case of this urgency, started at ``started``, falls due."""
    return started + DEADLINES[urgency][step]


@dataclass(frozen=True)
class Consent:
    """The facts of a consent record that decide whether it covers a request."""

    status: str
    purposes: Collection[str]
    recipients: Collection[str]
    categories: Collection[str]
    valid_from: dt.datetime | None
    valid_until: dt.datetime | None


@dataclass(frozen=True)
class Asked:
    """What a request asks of one holder: purpose, recipient and categories, and when."""

    purpose: str
    recipient: str
    categories: Collection[str]
    at: dt.datetime


@dataclass(frozen=True)
class Cover:
    """Whether consent covers a request and, if not, every reason why not (as codes)."""

    covers: bool
    reasons: tuple[str, ...]


def consent_cover(consent: Consent, asked: Asked) -> Cover:
    """Decide whether ``consent`` covers what is ``asked``.

    Consent covers a request only when it was given, is in its period, and names the purpose,
    the recipient (or any recipient) and every category asked for.
    """
    reasons: list[str] = []
    if consent.status != "GIVEN":
        reasons.append(f"consent_{consent.status.lower()}")
    else:
        if consent.valid_from is not None and asked.at < consent.valid_from:
            reasons.append("consent_not_yet_valid")
        if consent.valid_until is not None and asked.at >= consent.valid_until:
            reasons.append("consent_expired")
        if asked.purpose not in consent.purposes:
            reasons.append("purpose_not_covered")
        if consent.recipients and asked.recipient not in consent.recipients:
            reasons.append("recipient_not_covered")
        missing = sorted(set(asked.categories) - set(consent.categories))
        reasons.extend(f"category_not_covered:{category}" for category in missing)
    return Cover(covers=not reasons, reasons=tuple(reasons))
