"""Reads through the Case API as access events: what one read RPC records, and how the access
history is shown back to a party.

The servicer marks each read RPC with a ``Read`` (the action, the caller's ``ReadContext``, the
cases it served) and records it when the call ends: one allowed event per case served, or one
refused event when the caller was turned away (not a partner, not party to the case). A read
that fails for another reason (a malformed call, Temporal down) read nothing and refused no one.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field

import grpc
from google.protobuf.timestamp_pb2 import Timestamp

from partnership.registry import Agency
from protos.sharing.v1 import case_service_pb2 as service_pb
from safeshare.access.events import AccessEvent, Action, Channel, Outcome, Purpose
from safeshare.gateway.fields import (
    FieldViolation,
)

USER_ID = re.compile(r"^[A-Za-z0-9._@-]{1,128}$")
PURPOSES = {
    service_pb.ACCESS_PURPOSE_UNSPECIFIED: Purpose.UNSPECIFIED,
    service_pb.ACCESS_PURPOSE_CASE_WORK: Purpose.CASE_WORK,
    service_pb.ACCESS_PURPOSE_AUDIT: Purpose.AUDIT,
    service_pb.ACCESS_PURPOSE_OPERATOR_SUPPORT: Purpose.OPERATOR_SUPPORT,
    service_pb.ACCESS_PURPOSE_SUPERVISION: Purpose.SUPERVISION,
    service_pb.ACCESS_PURPOSE_INVESTIGATION: Purpose.INVESTIGATION,
}
PROTO_PURPOSES = {purpose: code for code, purpose in PURPOSES.items()}
NOT_A_PARTY = "not_a_party"
NO_SUCH_CASE = "no_such_case"
NOT_A_PARTNER = "not_a_partner"
WRONG_ROLE = "wrong_role"


@dataclass
class Read:
    """One read RPC as the access history sees it."""

    action: Action
    context: service_pb.ReadContext
    case_refs: list[str] = field(default_factory=list)
    """The cases served (and not yet recorded)."""
    refusal: str = ""
    """Why the caller was turned away, when the servicer knows better than the status code."""
    served: bool = False
    """Whether any case was served (a refused event is recorded only if none was)."""


def validate_read(read: service_pb.ReadContext, agency: Agency | None) -> list[FieldViolation]:
    """Field violations of a read's context (``read.*``)."""
    violations = []
    if read.user_id and not USER_ID.fullmatch(read.user_id):
        violations.append(
            FieldViolation("read.user_id", "letters, digits, '.', '_', '-', '@'; at most 128")
        )
    if read.purpose not in PURPOSES:
        violations.append(FieldViolation("read.purpose", "not an AccessPurpose"))
    if read.delay_disclosure and (agency is None or agency.access_disclosure_delay_days <= 0):
        violations.append(
            FieldViolation(
                "read.delay_disclosure",
                "the partnership registry allows this agency no delayed disclosure",
            )
        )
    return violations


def events(
    read: Read,
    code: grpc.StatusCode,
    agency_id: str,
    agency: Agency | None,
    case_ref: str,
    now: dt.datetime,
) -> list[AccessEvent]:
    """What one read RPC records when it ends (or, for a watch, when it starts serving)."""
    context = read.context
    purpose = PURPOSES.get(context.purpose, Purpose.UNSPECIFIED)
    delay = None
    if context.delay_disclosure and agency is not None and agency.access_disclosure_delay_days:
        delay = now + dt.timedelta(days=agency.access_disclosure_delay_days)

    def event(ref: str, outcome: Outcome, reason: str = "") -> AccessEvent:
        return AccessEvent(
            time=now,
            case_ref=ref,
            channel=Channel.CASE_API,
            action=read.action,
            outcome=outcome,
            agency_id=agency_id,
            user_id=context.user_id,
            purpose=purpose,
            reason=reason,
            disclose_after=delay,
        )

    if read.case_refs:
        served = sorted(set(read.case_refs))
        read.case_refs.clear()
        read.served = True
        return [event(ref, Outcome.ALLOWED) for ref in served]
    if read.served or code == grpc.StatusCode.OK:
        return []
    if code == grpc.StatusCode.PERMISSION_DENIED:
        return [event(case_ref, Outcome.REFUSED, read.refusal or NOT_A_PARTNER)]
    if code == grpc.StatusCode.NOT_FOUND and case_ref:
        return [event(case_ref, Outcome.REFUSED, read.refusal or NO_SUCH_CASE)]
    return []


def to_proto(event: AccessEvent) -> service_pb.AccessEvent:
    """An event as ListAccessEvents returns it."""
    message = service_pb.AccessEvent(
        seq=event.seq,
        time=_timestamp(event.time),
        case_ref=event.case_ref,
        channel=event.channel.value,
        action=event.action.value,
        outcome=event.outcome.value,
        agency_id=event.agency_id,
        user_id=event.user_id,
        purpose=PROTO_PURPOSES[event.purpose],
        reason=event.reason,
    )
    if event.disclose_after is not None:
        message.disclose_after.CopyFrom(_timestamp(event.disclose_after))
    return message


def _timestamp(value: dt.datetime) -> Timestamp:
    stamp = Timestamp()
    stamp.FromDatetime(value)
    return stamp
