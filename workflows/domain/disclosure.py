"""The pure model of a disclosure: a holder tells partners without being asked.

Plain Python with no Temporal or gRPC import. The kinds and their rules (which fields the fixed
dataset must hold, when the partnership's policy wants an approver's decision before sharing
without consent, when the recipient must acknowledge), and the one state machine that every
decision on a disclosure goes through (``Disclosure.check`` is every Update's validator).

The steps, the escalation ladder and the outcomes are the sharing case's own
(``workflows.domain``): a disclosure is a case that starts at the holder.
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field

from protos.sharing.v1 import case_pb2 as pb
from workflows.domain import acknowledgement
from workflows.domain.deadlines import DEFAULT_TIMESCALES, Timescales, WorkingCalendar, deadline
from workflows.domain.override import APPROVER_ROLES
from workflows.domain.refusal import Refusal, Rule, incomplete, missing, out_of_turn
from workflows.domain.vocabulary import Actor, Outcome, Step, Urgency


class Kind(enum.Enum):
    """A kind of disclosure. Names match ``sharing.v1.DisclosureKind`` without the prefix."""

    OPERATION_ENCOMPASS = "OPERATION_ENCOMPASS"
    CONCERN = "CONCERN"
    CHILD_PROTECTION_FILE_TRANSFER = "CHILD_PROTECTION_FILE_TRANSFER"


DATASET_FIELDS: Mapping[Kind, tuple[str, tuple[str, ...]]] = {
    # The oneof field of the kind's dataset, and every field it must hold.
    Kind.OPERATION_ENCOMPASS: (
        "operation_encompass",
        (
            "police_reference",
            "incident_at",
            "incident_place",
            "child_present",
            "voice_of_the_child",
            "circumstances",
        ),
    ),
    Kind.CONCERN: ("concern", ("urgency", "concern", "action_taken")),
    Kind.CHILD_PROTECTION_FILE_TRANSFER: (
        "child_protection_file",
        ("file_reference", "starts_at_new_school_on", "contents_summary"),
    ),
}
"""Each kind's fixed dataset: the Case API names every one missing as a field violation."""


def approval_required(kind: Kind, urgency: Urgency | None, with_consent: bool) -> bool:
    """Whether the partnership's policy wants an approver's decision before this disclosure.

    With consent on record no approval is needed. Without it: Operation Encompass is a
    statutory duty with a next-school-day deadline, and a child protection file follows the
    child by statutory guidance, so neither waits for one; a concern raised without consent
    needs an approver's decision unless it is RED (the risk cannot wait).
    """
    if with_consent:
        return False
    return kind is Kind.CONCERN and urgency is not Urgency.RED


SCHOOL_DAYS_FOR_FILE = 5
LADDER_PERIOD: Mapping[Kind, dt.timedelta] = {
    # After a missed acknowledgement: reminder at once, the recipient's DSL half a period
    # later, the operator a full period later. A notification due before school starts
    # cannot wait a day for its escalation.
    Kind.OPERATION_ENCOMPASS: dt.timedelta(hours=1),
    Kind.CHILD_PROTECTION_FILE_TRANSFER: dt.timedelta(hours=8),
}


@dataclass(frozen=True)
class Deadline:
    """When a recipient must acknowledge, and the rule it came from (a code for the record)."""

    due: dt.datetime
    rule: str
    ladder_period: dt.timedelta


def acknowledge_by(
    kind: Kind,
    urgency: Urgency | None,
    delivered: dt.datetime,
    calendar: WorkingCalendar,
    *,
    to_a_school: bool,
    timescales: Timescales = DEFAULT_TIMESCALES,
) -> Deadline:
    """When the recipient of a disclosure delivered at ``delivered`` must acknowledge it.

    - Operation Encompass to a school: before the start of the school's next school day
      (weekends, bank holidays and INSET days skipped); to children's social care (no school
      place), or a school with no terms recorded: the RED acknowledgement timescale, 24/7.
    - A concern: the acknowledgement timescale of its urgency.
    - A child protection file: the end of the fifth school day after delivery; with no terms
      recorded, five working days.
    """
    step = Step.RECIPIENT_ACKNOWLEDGES
    if kind is Kind.CONCERN:
        level = urgency or Urgency.AMBER
        due = deadline(level, step, delivered, calendar, timescales)
        return Deadline(due, f"urgency_{level.value}", timescales[(level, step)].period)
    if kind is Kind.OPERATION_ENCOMPASS:
        period = LADDER_PERIOD[kind]
        if to_a_school and calendar.school_terms:
            try:
                return Deadline(
                    calendar.next_school_day_start(delivered), "before_next_school_day", period
                )
            except ValueError:
                pass
        red = timescales[(Urgency.RED, step)]
        return Deadline(delivered + red.period, "no_school_day:red_timescale", period)
    period = LADDER_PERIOD[kind]
    if calendar.school_terms:
        try:
            start = delivered
            for _ in range(SCHOOL_DAYS_FOR_FILE):
                start = calendar.next_school_day_start(start)
            day_length = dt.datetime.combine(dt.date.min, calendar.day_ends) - dt.datetime.combine(
                dt.date.min, calendar.school_day_starts
            )
            return Deadline(start + day_length, "five_school_days", period)
        except ValueError:
            pass
    due = calendar.add_working_hours(delivered, 8 * SCHOOL_DAYS_FOR_FILE)
    return Deadline(due, "no_school_terms:five_working_days", period)


# -- the state machine ---------------------------------------------------------------------


class State(enum.Enum):
    """Where a disclosure is. Names match ``sharing.v1.CaseState`` without the prefix."""

    REQUESTED = "REQUESTED"
    AWAITING_OVERRIDE_DECISION = "AWAITING_OVERRIDE_DECISION"
    DELIVERING = "DELIVERING"
    AWAITING_ACKNOWLEDGEMENT = "AWAITING_ACKNOWLEDGEMENT"
    CLOSED = "CLOSED"


@dataclass(frozen=True)
class GatePassed:
    """The protocol gate passed; ``recipients`` after routing."""

    recipients: tuple[str, ...]


@dataclass(frozen=True)
class GateRefused:
    """The protocol gate refused the disclosure."""


@dataclass(frozen=True)
class Decide:
    """An approver at the holder approves or rejects a disclosure without consent, for a
    ``reason``."""

    actor: Actor
    approve: bool
    reason: str


@dataclass(frozen=True)
class Delivered:
    """One recipient's system stored the delivery."""

    recipient: str


@dataclass(frozen=True)
class Acknowledge:
    """A recipient acknowledges its delivery, as received or actioned (``status``)."""

    actor: Actor
    status: pb.AcknowledgementStatus.ValueType


Command = GatePassed | GateRefused | Decide | Delivered | Acknowledge


@dataclass
class Disclosure:
    """One disclosure, and the only way to move it."""

    holder: str
    discloser: str
    """The user id of the practitioner who made it (who may not approve it)."""
    kind: Kind
    with_consent: bool
    needs_approval: bool
    state: State = State.REQUESTED
    recipients: tuple[str, ...] = ()
    delivered: set[str] = field(default_factory=set)
    acknowledged: set[str] = field(default_factory=set)
    approved: bool = False
    outcome: Outcome = Outcome.OPEN

    def check(self, command: Command) -> Refusal | None:
        """Whether ``command`` may be applied now; the refusal says why not."""
        match command:
            case GatePassed() | GateRefused():
                return out_of_turn(self.state is State.REQUESTED, self.state)
            case Decide(actor=actor, reason=reason):
                if not reason.strip():
                    return missing("decision.reason")
                if actor.agency_id != self.holder:
                    return Refusal(Rule.NOT_PERMITTED, "only the disclosing agency decides")
                if self.state is not State.AWAITING_OVERRIDE_DECISION:
                    return Refusal(Rule.OUT_OF_TURN, f"no decision awaited ({self.state.value})")
                if actor.role not in APPROVER_ROLES:
                    return Refusal(Rule.NOT_PERMITTED, "only an approver role decides")
                if actor.user_id == self.discloser:
                    return Refusal(Rule.NOT_PERMITTED, "the discloser cannot approve it")
                return None
            case Delivered(recipient=recipient):
                if recipient not in self.recipients or recipient in self.delivered:
                    return Refusal(Rule.OUT_OF_TURN, "not a pending recipient")
                return out_of_turn(self.state is State.DELIVERING, self.state)
            case Acknowledge(actor=actor, status=status):
                if actor.agency_id not in self.recipients:
                    return Refusal(Rule.NOT_PERMITTED, "only a recipient acknowledges")
                if actor.agency_id in self.acknowledged:
                    return Refusal(Rule.OUT_OF_TURN, "already acknowledged")
                if actor.agency_id not in self.delivered:
                    return Refusal(Rule.OUT_OF_TURN, "nothing delivered to this recipient yet")
                return incomplete(acknowledgement.missing_fields(status, actor.user_id))
        raise TypeError(f"unknown command {command!r}")

    def apply(self, command: Command) -> None:
        """Apply ``command``.

        Raises:
            ValueError: ``check`` refuses it.
        """
        if refusal := self.check(command):
            raise ValueError(refusal.message)
        match command:
            case GatePassed(recipients=recipients):
                self.recipients = recipients
                self.state = (
                    State.AWAITING_OVERRIDE_DECISION if self.needs_approval else State.DELIVERING
                )
            case GateRefused():
                self._close(Outcome.REJECTED_BY_PROTOCOL_GATE)
            case Decide(approve=approve):
                self.approved = approve
                if approve:
                    self.state = State.DELIVERING
                else:
                    self._close(Outcome.NOT_SHARED)
            case Delivered(recipient=recipient):
                self.delivered.add(recipient)
                if self.delivered == set(self.recipients):
                    self.state = State.AWAITING_ACKNOWLEDGEMENT
            case Acknowledge(actor=actor):
                self.acknowledged.add(actor.agency_id)
                # 👉 Only every recipient's acknowledgement closes it: a missed one climbs
                # the ladder and waits for the operator, never closing by itself.
                if self.acknowledged == set(self.recipients):
                    self._close(
                        Outcome.SHARED_WITH_CONSENT
                        if self.with_consent
                        else Outcome.SHARED_UNDER_OVERRIDE
                    )

    def _close(self, outcome: Outcome) -> None:
        self.outcome = outcome
        self.state = State.CLOSED


def missing_dataset_fields(kind: Kind, present: Collection[str]) -> list[str]:
    """The dataset fields of ``kind`` not in ``present`` (the fields that are set)."""
    _, required = DATASET_FIELDS[kind]
    return [name for name in required if name not in present]
