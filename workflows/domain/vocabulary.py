"""The words of a case: states, whose move it is, urgency, outcomes, steps, bases, actors.

The domain's enums hold the protobuf enum value's name without its prefix
(``CaseState.CASE_STATE_DELIVERING`` is ``State.DELIVERING``, value ``"DELIVERING"``), and so
do search attributes and the record's codes: ``code`` and ``proto`` are the one rule for that,
in both directions. Codes the domain only passes along (purposes, information categories)
keep the full protobuf name.
"""

from __future__ import annotations

import datetime as dt
import enum
from dataclasses import dataclass
from typing import Any, Protocol

from google.protobuf.timestamp_pb2 import Timestamp

from protos.sharing.v1 import case_pb2 as pb


class State(enum.Enum):
    """The step an exchange is at. Names match ``sharing.v1.CaseState`` without the prefix."""

    REQUESTED = "REQUESTED"
    CHECKING_CONSENT = "CHECKING_CONSENT"
    AWAITING_CONSENT_DECISION = "AWAITING_CONSENT_DECISION"
    AWAITING_OVERRIDE_DECISION = "AWAITING_OVERRIDE_DECISION"
    DELIVERING = "DELIVERING"
    AWAITING_ACKNOWLEDGEMENT = "AWAITING_ACKNOWLEDGEMENT"
    CLOSED = "CLOSED"


OPEN_STATES = frozenset(State) - {State.CLOSED}


class WaitingOn(enum.Enum):
    """Whose move it is. Names match ``sharing.v1.WaitingOn`` without the prefix."""

    SYSTEM = "SYSTEM"
    HOLDER = "HOLDER"
    RECIPIENT = "RECIPIENT"
    APPROVER = "APPROVER"
    OPERATOR = "OPERATOR"
    NOBODY = "UNSPECIFIED"


class Urgency(enum.Enum):
    """How urgent a request is. Names match ``sharing.v1.Urgency`` without the prefix."""

    RED = "RED"
    AMBER = "AMBER"
    GREEN = "GREEN"


class Outcome(enum.Enum):
    """How an exchange or a case ended. Names match ``sharing.v1.Outcome`` without the prefix."""

    OPEN = "UNSPECIFIED"
    SHARED_WITH_CONSENT = "SHARED_WITH_CONSENT"
    SHARED_UNDER_OVERRIDE = "SHARED_UNDER_OVERRIDE"
    NOT_SHARED = "NOT_SHARED"
    REJECTED_BY_PROTOCOL_GATE = "REJECTED_BY_PROTOCOL_GATE"
    WITHDRAWN = "WITHDRAWN"
    PARTLY_SHARED = "PARTLY_SHARED"


class Step(enum.Enum):
    """The steps that run against a deadline."""

    HOLDER_RESPONDS = "holder_responds"
    OVERRIDE_DECISION = "override_decision"
    RECIPIENT_ACKNOWLEDGES = "recipient_acknowledges"


class Basis(enum.Enum):
    """What authorised sharing one category. Names match ``sharing.v1.BasisKind``."""

    CONSENT = "CONSENT"
    OVERRIDE = "OVERRIDE"
    SHARE_FIRST = "SHARE_FIRST"


@dataclass(frozen=True)
class Actor:
    """Who issues a command: the agency (from its certificate) and the practitioner."""

    agency_id: str
    user_id: str
    role: str = ""


# -- protobuf names -------------------------------------------------------------------------


class _ProtoEnum(Protocol):
    DESCRIPTOR: Any

    def Name(self, number: Any) -> str: ...

    def Value(self, name: str) -> Any: ...


def _prefix(enum_type: _ProtoEnum) -> str:
    """``CASE_STATE_`` for ``CaseState``: buf STANDARD names every value of an enum with one
    prefix, and its zero value ``<prefix>UNSPECIFIED``."""
    return str(enum_type.DESCRIPTOR.values[0].name).removesuffix("UNSPECIFIED")


def code(enum_type: _ProtoEnum, number: int) -> str:
    """The code of a protobuf enum value: its name without the prefix (``DELIVERING``)."""
    return enum_type.Name(number).removeprefix(_prefix(enum_type))


def proto(enum_type: _ProtoEnum, value: enum.Enum) -> Any:
    """The protobuf enum number of a domain value (whose value is the code)."""
    return enum_type.Value(_prefix(enum_type) + value.value)


def urgency_of(value: pb.Urgency.ValueType) -> Urgency:
    """The urgency of a proto urgency (UNSPECIFIED is treated as GREEN)."""
    if value == pb.URGENCY_UNSPECIFIED:
        return Urgency.GREEN
    return Urgency(code(pb.Urgency, value))


def proto_state(value: State) -> pb.CaseState.ValueType:
    """The proto CaseState of a state."""
    number: pb.CaseState.ValueType = proto(pb.CaseState, value)
    return number


def proto_waiting_on(value: WaitingOn) -> pb.WaitingOn.ValueType:
    """The proto WaitingOn."""
    number: pb.WaitingOn.ValueType = proto(pb.WaitingOn, value)
    return number


def proto_outcome(value: Outcome) -> pb.Outcome.ValueType:
    """The proto Outcome."""
    number: pb.Outcome.ValueType = proto(pb.Outcome, value)
    return number


def outcome_of(value: pb.Outcome.ValueType) -> Outcome:
    """The outcome of a proto outcome."""
    return Outcome(code(pb.Outcome, value))


def actor_of(value: pb.Actor) -> Actor:
    """The actor of a proto actor."""
    return Actor(value.agency_id, value.practitioner.user_id, value.practitioner.role)


def timestamp(at: dt.datetime) -> Timestamp:
    """A protobuf Timestamp."""
    stamp = Timestamp()
    stamp.FromDatetime(at)
    return stamp
