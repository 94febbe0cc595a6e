"""The pure disclosure model: each kind's deadline from recorded calendars, the partnership's
approval rule, and the state machine every decision on a disclosure goes through."""

from __future__ import annotations

import datetime as dt

import pytest

from protos.sharing.v1 import case_pb2 as pb
from workflows.domain.deadlines import WorkingCalendar, uk_utc_offset
from workflows.domain.disclosure import (
    Acknowledge,
    Decide,
    Delivered,
    Disclosure,
    GatePassed,
    Kind,
    State,
    acknowledge_by,
    approval_required,
    missing_dataset_fields,
)
from workflows.domain.refusal import Rule, Violation
from workflows.domain.vocabulary import Actor, Outcome, Urgency

UTC = dt.UTC
RECEIVED = pb.ACKNOWLEDGEMENT_STATUS_RECEIVED
SCHOOL = WorkingCalendar(
    utc_offset=uk_utc_offset,
    holidays=frozenset({dt.date(2027, 5, 31), dt.date(2027, 1, 1), dt.date(2027, 1, 4)}),
    school_terms=(
        (dt.date(2026, 9, 2), dt.date(2026, 12, 18)),
        (dt.date(2027, 1, 4), dt.date(2027, 3, 26)),
        (dt.date(2027, 4, 12), dt.date(2027, 7, 21)),
    ),
    school_day_starts=dt.time(8, 45),
)


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> dt.datetime:
    return dt.datetime(year, month, day, hour, minute, tzinfo=UTC)


@pytest.mark.parametrize(
    ("delivered", "due"),
    [
        # Friday 22:00 (GMT) → Monday 08:45.
        (utc(2026, 12, 4, 22), utc(2026, 12, 7, 8, 45)),
        # A school night → the next morning.
        (utc(2026, 12, 8, 19), utc(2026, 12, 9, 8, 45)),
        # Spring bank holiday, Monday 31 May 2027, in summer time: Tuesday 08:45 BST.
        (utc(2027, 5, 28, 21), utc(2027, 6, 1, 7, 45)),
        # New Year's Day, then an INSET day on Monday 4 January: Tuesday.
        (utc(2027, 1, 1, 21), utc(2027, 1, 5, 8, 45)),
        # The end of the autumn term: the first day of the spring term after INSET.
        (utc(2026, 12, 18, 16), utc(2027, 1, 5, 8, 45)),
    ],
)
def test_encompass_is_due_before_the_start_of_the_next_school_day(
    delivered: dt.datetime, due: dt.datetime
) -> None:
    deadline = acknowledge_by(Kind.OPERATION_ENCOMPASS, None, delivered, SCHOOL, to_a_school=True)
    assert (deadline.due, deadline.rule) == (due, "before_next_school_day")


def test_encompass_to_childrens_social_care_runs_24_7() -> None:
    delivered = utc(2026, 12, 4, 22)
    deadline = acknowledge_by(
        Kind.OPERATION_ENCOMPASS, None, delivered, WorkingCalendar(), to_a_school=False
    )
    assert deadline.due == delivered + dt.timedelta(hours=2)
    assert deadline.rule == "no_school_day:red_timescale"


def test_a_concern_is_due_by_its_urgency() -> None:
    friday = utc(2026, 12, 4, 16)
    red = acknowledge_by(Kind.CONCERN, Urgency.RED, friday, WorkingCalendar(), to_a_school=False)
    amber = acknowledge_by(
        Kind.CONCERN, Urgency.AMBER, friday, WorkingCalendar(), to_a_school=False
    )
    assert red.due == friday + dt.timedelta(hours=2)
    # One working day: the Friday's last hour, then Monday to 16:00.
    assert amber.due == utc(2026, 12, 7, 16) and amber.rule == "urgency_AMBER"


def test_a_child_protection_file_is_due_at_the_end_of_the_fifth_school_day() -> None:
    deadline = acknowledge_by(
        Kind.CHILD_PROTECTION_FILE_TRANSFER, None, utc(2026, 12, 14, 10), SCHOOL, to_a_school=True
    )
    assert (deadline.due, deadline.rule) == (utc(2027, 1, 5, 17), "five_school_days")


def test_approval_is_wanted_only_for_a_non_red_concern_without_consent() -> None:
    assert approval_required(Kind.CONCERN, Urgency.AMBER, with_consent=False)
    assert not approval_required(Kind.CONCERN, Urgency.RED, with_consent=False)
    assert not approval_required(Kind.CONCERN, Urgency.AMBER, with_consent=True)
    assert not approval_required(Kind.OPERATION_ENCOMPASS, None, with_consent=False)
    assert not approval_required(Kind.CHILD_PROTECTION_FILE_TRANSFER, None, with_consent=False)


def test_every_missing_field_of_the_fixed_dataset_is_named() -> None:
    assert missing_dataset_fields(Kind.OPERATION_ENCOMPASS, {"police_reference"}) == [
        "incident_at", "incident_place", "child_present", "voice_of_the_child", "circumstances"
    ]  # fmt: skip


def disclosure(needs_approval: bool = False) -> Disclosure:
    case = Disclosure(holder="gp", discloser="gp-1", kind=Kind.CONCERN,
                      with_consent=False, needs_approval=needs_approval)  # fmt: skip
    case.apply(GatePassed(("csc", "school")))
    return case


def test_only_another_approver_at_the_holder_decides() -> None:
    case = disclosure(needs_approval=True)
    assert case.state is State.AWAITING_OVERRIDE_DECISION
    refusals = [
        case.check(Decide(Actor("csc", "x", "manager"), True, "within policy")),
        case.check(Decide(Actor("gp", "gp-1", "manager"), True, "within policy")),
        case.check(Decide(Actor("gp", "gp-2", "gp"), True, "within policy")),
    ]
    assert [r.rule if r else None for r in refusals] == [Rule.NOT_PERMITTED] * 3
    case.apply(Decide(Actor("gp", "gp-2", "manager"), False, "within policy"))
    assert (case.state, case.outcome) == (State.CLOSED, Outcome.NOT_SHARED)


def test_it_closes_only_when_every_recipient_has_acknowledged() -> None:
    case = disclosure()
    refused = case.check(Acknowledge(Actor("csc", "sw"), RECEIVED))
    assert refused is not None and refused.rule is Rule.OUT_OF_TURN  # nothing delivered yet
    refused = case.check(Acknowledge(Actor("gp", "gp-1"), RECEIVED))
    assert refused is not None and refused.rule is Rule.NOT_PERMITTED  # the holder is no recipient
    case.apply(Delivered("csc"))
    case.apply(Delivered("school"))
    case.apply(Acknowledge(Actor("csc", "sw"), RECEIVED))
    assert case.state is State.AWAITING_ACKNOWLEDGEMENT
    assert case.check(Acknowledge(Actor("csc", "sw"), RECEIVED)) is not None  # once each
    case.apply(Acknowledge(Actor("school", "dsl"), RECEIVED))
    assert (case.state, case.outcome) == (State.CLOSED, Outcome.SHARED_UNDER_OVERRIDE)


def test_a_decision_needs_a_reason_and_an_acknowledgement_its_status() -> None:
    case = Disclosure("gp", "gp-1", Kind.CONCERN, with_consent=False, needs_approval=True)
    case.apply(GatePassed(("csc",)))
    unreasoned = case.check(Decide(Actor("gp", "gp-2", "manager"), True, " "))
    assert unreasoned is not None and unreasoned.rule is Rule.INVALID
    assert unreasoned.violations == (Violation("decision.reason"),)
    case.apply(Decide(Actor("gp", "gp-2", "manager"), True, "within policy"))
    case.apply(Delivered("csc"))
    unstated = case.check(Acknowledge(Actor("csc", "sw"), pb.ACKNOWLEDGEMENT_STATUS_UNSPECIFIED))
    assert unstated is not None and unstated.violations == (Violation("acknowledgement.status"),)
