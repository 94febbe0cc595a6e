"""The pure case model, without Temporal: who may do what when, deadlines, consent cover,
and properties over random command sequences."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protos.sharing.v1 import case_pb2 as pb
from tests.workflows.domain.test_deadlines import calendar_of
from workflows.domain.consent import Asked, Consent, consent_cover
from workflows.domain.deadlines import Escalation, WorkingCalendar, deadline, escalation_times
from workflows.domain.exchange import Exchange, InvalidCommand, case_outcome
from workflows.domain.exchange_commands import (
    Acknowledge,
    Command,
    ConsentChecked,
    DecideOverride,
    DeclineToShare,
    Delivered,
    NothingToShare,
    ProposeOverride,
    RecordConsent,
    ShareFirst,
    WithdrawConsent,
    WithdrawRequest,
)
from workflows.domain.override import JUSTIFICATION
from workflows.domain.refusal import Refusal, Rule, Violation
from workflows.domain.vocabulary import Actor, Basis, Outcome, State, Step, Urgency, WaitingOn

HOLDER, RECIPIENT = "oakfield-primary", "northshire-csc"
PRACTITIONER = Actor(HOLDER, "teacher-1", "teacher")
APPROVER = Actor(HOLDER, "dsl-1", "designated_safeguarding_lead")
RECIPIENT_USER = Actor(RECIPIENT, "sw-1", "social_worker")
CALENDAR = WorkingCalendar()
NOW = dt.datetime(2026, 11, 24, 12, 0, tzinfo=dt.UTC)  # a Tuesday


def exchange(urgency: Urgency = Urgency.AMBER) -> Exchange:
    return Exchange(holder=HOLDER, recipient=RECIPIENT, urgency=urgency)


def run(commands: list[Command], urgency: Urgency = Urgency.AMBER) -> Exchange:
    ex = exchange(urgency)
    for command in commands:
        ex.apply(command)
    return ex


ATT, WEL, IDC = (
    "INFORMATION_CATEGORY_EDUCATION_ATTENDANCE",
    "INFORMATION_CATEGORY_WELFARE_CONCERNS",
    "INFORMATION_CATEGORY_IDENTITY_AND_CONTACT",
)
REQUESTED = frozenset(pb.InformationCategory.Value(c) for c in (ATT, WEL, IDC))
"""The categories the request asks for, as numbers."""
REASON = "the risk outweighs the interference"
RECEIVED = pb.ACKNOWLEDGEMENT_STATUS_RECEIVED


def _by(actor: Actor) -> pb.Actor:
    return pb.Actor(
        agency_id=actor.agency_id,
        practitioner=pb.Practitioner(user_id=actor.user_id, role=actor.role),
    )


def consent_given(actor: Actor, covers: bool = True) -> RecordConsent:
    decision = pb.ConsentDecision(
        actor=_by(actor), consent=pb.ConsentRecord(status=pb.CONSENT_STATUS_GIVEN)
    )
    return RecordConsent(actor, decision, covers)


def not_sought(actor: Actor) -> RecordConsent:
    reason = pb.NotSought(reason=pb.NOT_SOUGHT_REASON_RISK_TO_CHILD, explanation="e")
    return RecordConsent(actor, pb.ConsentDecision(actor=_by(actor), not_sought=reason), False)


def propose(
    actor: Actor, categories: tuple[str, ...] = (IDC,), *, blank: tuple[str, ...] = ()
) -> ProposeOverride:
    """A complete override proposal for ``categories``, but for the ``blank`` text fields."""
    proposal = pb.OverrideProposal(
        actor=_by(actor),
        consent_state_overridden=pb.CONSENT_STATUS_REFUSED,
        reason_code=pb.OVERRIDE_REASON_SIGNIFICANT_HARM,
        minimum_data_set=[pb.InformationCategory.Value(c) for c in categories],
        not_telling_reason="telling would put the child at risk",
    )
    for name in JUSTIFICATION:
        setattr(proposal, name, "" if name in blank else "stated")
    return ProposeOverride(actor, proposal, REQUESTED)


def share_first(actor: Actor, categories: tuple[str, ...] = (IDC,), harm: str = "h") -> ShareFirst:
    decision = pb.ShareFirstDecision(
        actor=_by(actor),
        harm_statement=harm,
        minimum_data_set=[pb.InformationCategory.Value(c) for c in categories],
    )
    return ShareFirst(actor, decision, REQUESTED)


# -- paths ------------------------------------------------------------------------------


def test_covering_consent_delivers_and_closes_on_acknowledgement() -> None:
    ex = run([ConsentChecked(covers=True), Delivered(), Acknowledge(RECIPIENT_USER, RECEIVED)])
    assert ex.outcome is Outcome.SHARED_WITH_CONSENT
    assert ex.history == [
        State.CHECKING_CONSENT,
        State.DELIVERING,
        State.AWAITING_ACKNOWLEDGEMENT,
        State.CLOSED,
    ]


def test_refused_consent_overridden_and_approved_is_shared_under_override() -> None:
    ex = run(
        [
            ConsentChecked(covers=False),
            not_sought(PRACTITIONER),
            propose(PRACTITIONER),
            DecideOverride(APPROVER, True, REASON),
            Delivered(),
            Acknowledge(RECIPIENT_USER, RECEIVED),
        ]
    )
    assert ex.outcome is Outcome.SHARED_UNDER_OVERRIDE


def test_rejected_override_closes_not_shared() -> None:
    ex = run(
        [
            ConsentChecked(covers=False),
            propose(PRACTITIONER),
            DecideOverride(APPROVER, False, REASON),
        ]
    )
    assert ex.outcome is Outcome.NOT_SHARED
    assert not ex.delivered


def test_recorded_consent_that_covers_moves_to_delivery() -> None:
    ex = run([ConsentChecked(covers=False), consent_given(PRACTITIONER)])
    assert ex.state is State.DELIVERING


def test_red_share_first_waits_for_justification_after_acknowledgement() -> None:
    ex = run(
        [
            ConsentChecked(covers=False),
            share_first(PRACTITIONER),
            Delivered(),
            Acknowledge(RECIPIENT_USER, RECEIVED),
        ],
        urgency=Urgency.RED,
    )
    assert ex.state is State.AWAITING_ACKNOWLEDGEMENT
    assert ex.waiting_on is WaitingOn.APPROVER
    ex.apply(propose(PRACTITIONER))
    ex.apply(DecideOverride(APPROVER, True, REASON))
    assert ex.outcome is Outcome.SHARED_UNDER_OVERRIDE


@pytest.mark.parametrize(
    ("commands", "command", "rule"),
    [
        ([], consent_given(PRACTITIONER), Rule.OUT_OF_TURN),
        ([ConsentChecked(False)], consent_given(RECIPIENT_USER), Rule.NOT_PERMITTED),
        ([ConsentChecked(False)], propose(PRACTITIONER, blank=("harm_statement",)), Rule.INVALID),
        ([ConsentChecked(False), propose(PRACTITIONER)], DecideOverride(PRACTITIONER, True, REASON), Rule.NOT_PERMITTED),
        (
            [ConsentChecked(False), propose(APPROVER)],
            DecideOverride(APPROVER, True, REASON),
            Rule.NOT_PERMITTED,
        ),
        ([ConsentChecked(False)], DecideOverride(APPROVER, True, REASON), Rule.OUT_OF_TURN),
        ([ConsentChecked(False)], share_first(PRACTITIONER), Rule.OUT_OF_TURN),  # AMBER
        ([ConsentChecked(False)], DeclineToShare(PRACTITIONER, has_reasons=False), Rule.INVALID),
        ([ConsentChecked(True)], Acknowledge(RECIPIENT_USER, RECEIVED), Rule.OUT_OF_TURN),
        ([ConsentChecked(True), Delivered()], Acknowledge(APPROVER, RECEIVED), Rule.NOT_PERMITTED),
        ([ConsentChecked(True)], WithdrawConsent(PRACTITIONER), Rule.OUT_OF_TURN),
        ([ConsentChecked(False)], WithdrawRequest(PRACTITIONER), Rule.NOT_PERMITTED),
    ],
)  # fmt: skip
def test_refusals_name_the_rule_and_change_nothing(
    commands: list[Command], command: Command, rule: Rule
) -> None:
    ex = run(commands)
    before = (ex.state, list(ex.history), ex.override_proposed_by)
    refusal = ex.check(command)
    assert refusal is not None and refusal.rule is rule
    with pytest.raises(InvalidCommand):
        ex.apply(command)
    assert (ex.state, ex.history, ex.override_proposed_by) == before


def test_an_incomplete_proposal_is_refused_naming_each_missing_field() -> None:
    ex = run([ConsentChecked(False)])
    refusal = ex.check(propose(PRACTITIONER, blank=("harm_statement", "advice_sought")))
    assert refusal == Refusal(
        Rule.INVALID,
        "required: proposal.harm_statement, proposal.advice_sought",
        (Violation("proposal.harm_statement"), Violation("proposal.advice_sought")),
    )
    outside = ex.check(propose(PRACTITIONER, ("INFORMATION_CATEGORY_HEALTH_SUMMARY",)))
    assert outside is not None and outside.violations == (
        Violation("proposal.minimum_data_set", "only categories the request asked for"),
    )
    assert ex.check(propose(PRACTITIONER)) is None


def test_every_decision_is_checked_for_what_it_must_hold() -> None:
    blank_decision = pb.ConsentDecision(actor=_by(PRACTITIONER))
    assert run([ConsentChecked(False)]).check(
        RecordConsent(PRACTITIONER, blank_decision, False)
    ) == Refusal(
        Rule.INVALID,
        "required: decision.consent|decision.not_sought",
        (Violation("decision.consent|decision.not_sought"),),
    )
    proposed = run([ConsentChecked(False), propose(PRACTITIONER)])
    no_reason = proposed.check(DecideOverride(APPROVER, True, ""))
    assert no_reason is not None and no_reason.violations == (Violation("decision.reason"),)
    red = run([ConsentChecked(False)], Urgency.RED)
    no_harm = red.check(share_first(PRACTITIONER, harm=""))
    assert no_harm is not None and no_harm.violations == (Violation("decision.harm_statement"),)
    delivered = run([ConsentChecked(True), Delivered()])
    unstated = delivered.check(Acknowledge(RECIPIENT_USER, pb.ACKNOWLEDGEMENT_STATUS_UNSPECIFIED))
    assert unstated is not None and unstated.violations == (Violation("acknowledgement.status"),)


def test_the_step_against_a_deadline_follows_the_state() -> None:
    ex = exchange(Urgency.RED)
    assert ex.step is None
    ex.apply(ConsentChecked(False))
    assert ex.step is Step.HOLDER_RESPONDS
    ex.apply(share_first(PRACTITIONER))
    assert ex.step is None  # delivering
    ex.apply(Delivered())
    assert ex.step is Step.OVERRIDE_DECISION  # the owed justification
    ex.apply(propose(PRACTITIONER))
    ex.apply(DecideOverride(APPROVER, True, REASON))
    assert ex.step is Step.RECIPIENT_ACKNOWLEDGES
    ex.apply(Acknowledge(RECIPIENT_USER, RECEIVED))
    assert ex.step is None


def test_withdrawal_closes_any_open_step() -> None:
    for prefix in (
        [],
        [ConsentChecked(False)],
        [ConsentChecked(False), propose(PRACTITIONER)],
    ):
        ex = run([*prefix, WithdrawRequest(RECIPIENT_USER)])
        assert ex.outcome is Outcome.WITHDRAWN


def test_holder_with_nothing_to_share_closes_not_shared() -> None:
    assert run([NothingToShare()]).outcome is Outcome.NOT_SHARED


# -- properties -------------------------------------------------------------------------

ACTORS = st.sampled_from([PRACTITIONER, APPROVER, RECIPIENT_USER, Actor("riverside-gp", "x", "gp")])
COMMANDS: st.SearchStrategy[Command] = st.one_of(
    st.builds(ConsentChecked, st.booleans()),
    st.builds(consent_given, ACTORS, st.booleans()),
    st.builds(not_sought, ACTORS),
    st.builds(propose, ACTORS, blank=st.sampled_from([(), ("legal_basis",)])),
    st.builds(DecideOverride, ACTORS, st.booleans(), st.sampled_from([REASON, ""])),
    st.builds(share_first, ACTORS, harm=st.sampled_from(["h", ""])),
    st.builds(DeclineToShare, ACTORS, st.booleans()),
    st.just(NothingToShare()),
    st.just(Delivered()),
    st.builds(
        Acknowledge, ACTORS, st.sampled_from([RECEIVED, pb.ACKNOWLEDGEMENT_STATUS_UNSPECIFIED])
    ),
    st.builds(WithdrawRequest, ACTORS),
    st.builds(WithdrawConsent, ACTORS),
)


@settings(max_examples=400, deadline=None)
@given(urgency=st.sampled_from(list(Urgency)), commands=st.lists(COMMANDS, max_size=14))
def test_no_command_sequence_reaches_an_invalid_state_or_shares_without_a_basis(
    urgency: Urgency, commands: list[Command]
) -> None:
    ex = exchange(urgency)
    proposer: str | None = None
    for command in commands:
        refusal = ex.check(command)
        state_before = ex.state
        if refusal is not None:
            with pytest.raises(InvalidCommand):
                ex.apply(command)
            assert ex.state is state_before
            continue
        if isinstance(command, Delivered):
            # No path delivers without covering consent, an approved override, or a RED
            # share-first.
            assert (
                ex.consent_covers
                or ex.override_approved
                or (ex.shared_first and ex.urgency is Urgency.RED)
            )
        if isinstance(command, ProposeOverride):
            proposer = command.actor.user_id
        if isinstance(command, DecideOverride):
            # Never self-approved, always by an approver role at the holder.
            assert command.actor.user_id != proposer
            assert command.actor.agency_id == HOLDER
            assert command.actor.role in {
                "designated_safeguarding_lead",
                "manager",
                "caldicott_guardian",
            }
        ex.apply(command)
        assert ex.state is not state_before or ex.state in {
            State.AWAITING_CONSENT_DECISION,
            State.AWAITING_ACKNOWLEDGEMENT,
            State.DELIVERING,
        }
    # Nothing moves once closed, and a closed exchange always has an outcome.
    if ex.state is State.CLOSED:
        assert ex.outcome is not Outcome.OPEN
        after_close: list[Command] = [Delivered(), Acknowledge(RECIPIENT_USER, RECEIVED)]
        assert all(ex.check(c) is not None for c in after_close)
    else:
        assert ex.outcome is Outcome.OPEN
    if ex.outcome in {Outcome.SHARED_WITH_CONSENT, Outcome.SHARED_UNDER_OVERRIDE}:
        assert ex.delivered and ex.acknowledged
    if ex.outcome is Outcome.SHARED_WITH_CONSENT:
        assert ex.consent_covers and not ex.shared_first


# -- deadlines, escalation, outcomes --------------------------------------------------------


@pytest.mark.parametrize(
    ("urgency", "step", "start", "due"),
    [
        # RED: 24/7, elapsed hours, even on a Saturday night.
        (Urgency.RED, Step.HOLDER_RESPONDS, dt.datetime(2026, 11, 28, 23, 0), dt.datetime(2026, 11, 29, 1, 0)),
        (Urgency.RED, Step.OVERRIDE_DECISION, NOW, NOW + dt.timedelta(hours=1)),
        # AMBER: 6 working hours from Friday 15:00 (UTC = London in November) → Monday 13:00.
        (Urgency.AMBER, Step.HOLDER_RESPONDS, dt.datetime(2026, 11, 27, 15, 0), dt.datetime(2026, 11, 30, 13, 0)),
        # GREEN: 5 working days to acknowledge from Tuesday 12:00 → next Tuesday 12:00.
        (Urgency.GREEN, Step.RECIPIENT_ACKNOWLEDGES, NOW, NOW + dt.timedelta(days=7)),
    ],
)  # fmt: skip
def test_deadlines_follow_the_published_table_and_calendar(
    urgency: Urgency, step: Step, start: dt.datetime, due: dt.datetime
) -> None:
    start, due = start.replace(tzinfo=dt.UTC), due.replace(tzinfo=dt.UTC)
    assert deadline(urgency, step, start, CALENDAR) == due


def test_working_hours_honour_summer_time_and_holidays() -> None:
    calendar = calendar_of("GB-ENG")  # as the protocol gate resolves and a case records it
    # 24 Dec 16:00 UTC + 2 working hours: 1 hour on the 24th; Christmas Day, then Boxing Day
    # is a Saturday, so Monday 28th is its substitute bank holiday: Tuesday 29th 10:00.
    start = dt.datetime(2026, 12, 24, 16, 0, tzinfo=dt.UTC)
    assert calendar.add_working_hours(start, 2) == dt.datetime(2026, 12, 29, 10, 0, tzinfo=dt.UTC)
    # In British Summer Time 09:00 London is 08:00 UTC.
    july = dt.datetime(2026, 7, 1, 7, 0, tzinfo=dt.UTC)
    assert calendar.add_working_hours(july, 1) == dt.datetime(2026, 7, 1, 9, 0, tzinfo=dt.UTC)


def test_escalation_ladder_reminds_then_lead_then_operator() -> None:
    due = NOW + dt.timedelta(hours=2)
    ladder = escalation_times(due, dt.timedelta(hours=2))
    assert [rung for _, rung in ladder] == [
        Escalation.REMINDER,
        Escalation.SAFEGUARDING_LEAD,
        Escalation.PARTNERSHIP_OPERATOR,
    ]
    assert [at - due for at, _ in ladder] == [
        dt.timedelta(0),
        dt.timedelta(hours=1),
        dt.timedelta(hours=2),
    ]


@pytest.mark.parametrize(
    ("outcomes", "expected"),
    [
        ([Outcome.SHARED_WITH_CONSENT], Outcome.SHARED_WITH_CONSENT),
        (
            [Outcome.SHARED_WITH_CONSENT, Outcome.SHARED_UNDER_OVERRIDE],
            Outcome.SHARED_UNDER_OVERRIDE,
        ),
        ([Outcome.SHARED_WITH_CONSENT, Outcome.NOT_SHARED], Outcome.PARTLY_SHARED),
        ([Outcome.NOT_SHARED, Outcome.NOT_SHARED], Outcome.NOT_SHARED),
        ([Outcome.WITHDRAWN, Outcome.WITHDRAWN], Outcome.WITHDRAWN),
    ],
)
def test_case_outcome_from_its_exchanges(outcomes: list[Outcome], expected: Outcome) -> None:
    assert case_outcome(outcomes) is expected


# -- consent cover --------------------------------------------------------------------------

GIVEN = Consent(
    status="GIVEN",
    purposes={"PURPOSE_SAFEGUARDING"},
    recipients=set(),
    categories={"INFORMATION_CATEGORY_HEALTH_SUMMARY", "INFORMATION_CATEGORY_WELFARE_CONCERNS"},
    valid_from=dt.datetime(2025, 1, 1, tzinfo=dt.UTC),
    valid_until=dt.datetime(2028, 1, 1, tzinfo=dt.UTC),
)
ASKED = Asked("PURPOSE_SAFEGUARDING", RECIPIENT, {"INFORMATION_CATEGORY_HEALTH_SUMMARY"}, NOW)


def test_given_consent_in_period_for_purpose_and_category_covers() -> None:
    assert consent_cover(GIVEN, ASKED).covers


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"status": "REFUSED"}, "consent_refused"),
        ({"status": "WITHDRAWN"}, "consent_withdrawn"),
        ({"status": "NOT_RECORDED"}, "consent_not_recorded"),
        ({"valid_until": dt.datetime(2025, 6, 30, tzinfo=dt.UTC)}, "consent_expired"),
        ({"valid_from": dt.datetime(2027, 1, 1, tzinfo=dt.UTC)}, "consent_not_yet_valid"),
        ({"purposes": {"PURPOSE_EDUCATION"}}, "purpose_not_covered"),
        ({"recipients": {"riverside-gp"}}, "recipient_not_covered"),
        (
            {"categories": {"INFORMATION_CATEGORY_WELFARE_CONCERNS"}},
            "category_not_covered:INFORMATION_CATEGORY_HEALTH_SUMMARY",
        ),
    ],
)
def test_consent_that_does_not_cover_says_why(change: dict[str, object], reason: str) -> None:
    consent = Consent(**{**GIVEN.__dict__, **change})
    cover = consent_cover(consent, ASKED)
    assert not cover.covers
    assert reason in cover.reasons


CATEGORY = st.sampled_from(
    ["INFORMATION_CATEGORY_HEALTH_SUMMARY", "INFORMATION_CATEGORY_WELFARE_CONCERNS"]
)


@given(
    status=st.sampled_from(["GIVEN", "REFUSED", "WITHDRAWN", "EXPIRED", "NOT_RECORDED"]),
    purposes=st.sets(st.sampled_from(["PURPOSE_SAFEGUARDING", "PURPOSE_EDUCATION"])),
    categories=st.sets(CATEGORY),
    asked_categories=st.sets(CATEGORY, min_size=1),
)
def test_cover_never_admits_an_uncovered_category_or_purpose(
    status: str, purposes: set[str], categories: set[str], asked_categories: set[str]
) -> None:
    consent = Consent(status, purposes, set(), categories, None, None)
    cover = consent_cover(consent, Asked("PURPOSE_SAFEGUARDING", RECIPIENT, asked_categories, NOW))
    assert cover.covers == (
        status == "GIVEN" and "PURPOSE_SAFEGUARDING" in purposes and asked_categories <= categories
    )
    assert cover.covers == (not cover.reasons)


# -- consent per category ---------------------------------------------------------------------

PC_ASKED = frozenset({ATT, WEL, IDC})


def per_category(urgency: Urgency = Urgency.AMBER, asked: frozenset[str] = PC_ASKED) -> Exchange:
    return Exchange(
        holder=HOLDER, recipient=RECIPIENT, urgency=urgency, per_category=True, asked=asked
    )


def test_what_consent_covers_is_delivered_at_once_and_the_rest_waits_on_the_holder() -> None:
    ex = per_category()
    ex.apply(ConsentChecked(covers=False, covered=frozenset({ATT, WEL})))
    assert ex.state is State.DELIVERING and ex.undecided == {IDC}
    # Only what consent covers may be delivered now.
    refused = ex.check(Delivered(frozenset({ATT, WEL, IDC})))
    assert refused is not None and refused.rule is Rule.NOT_PERMITTED and IDC in refused.message
    ex.apply(Delivered(frozenset({ATT, WEL})))
    assert ex.state is State.AWAITING_CONSENT_DECISION and ex.waiting_on is WaitingOn.HOLDER
    ex.apply(propose(PRACTITIONER, (IDC,)))
    ex.apply(DecideOverride(APPROVER, True, REASON))
    assert ex.state is State.DELIVERING
    ex.apply(Delivered(frozenset({IDC})))
    ex.apply(Acknowledge(RECIPIENT_USER, RECEIVED))
    assert ex.outcome is Outcome.SHARED_UNDER_OVERRIDE
    assert ex.authorised == {ATT: Basis.CONSENT, WEL: Basis.CONSENT, IDC: Basis.OVERRIDE}


def test_declining_the_rest_after_a_consent_delivery_still_closes_on_acknowledgement() -> None:
    ex = per_category()
    ex.apply(ConsentChecked(covers=False, covered=frozenset({ATT})))
    ex.apply(Delivered(frozenset({ATT})))
    ex.apply(DeclineToShare(PRACTITIONER))
    assert ex.state is State.AWAITING_ACKNOWLEDGEMENT
    assert ex.not_shared == {WEL: "declined", IDC: "declined"}
    ex.apply(Acknowledge(RECIPIENT_USER, RECEIVED))
    assert ex.outcome is Outcome.SHARED_WITH_CONSENT


def test_an_override_shares_only_its_minimum_data_set() -> None:
    ex = per_category()
    ex.apply(ConsentChecked(covers=False, covered=frozenset()))
    assert ex.state is State.AWAITING_CONSENT_DECISION
    ex.apply(propose(PRACTITIONER, (WEL,)))
    ex.apply(DecideOverride(APPROVER, True, REASON))
    assert ex.not_shared == {ATT: "not_in_minimum_data_set", IDC: "not_in_minimum_data_set"}
    assert ex.check(Delivered(frozenset({ATT}))) is not None
    ex.apply(Delivered(frozenset({WEL})))
    assert ex.state is State.AWAITING_ACKNOWLEDGEMENT


PC_ACTORS = st.sampled_from([PRACTITIONER, APPROVER, RECIPIENT_USER])
SOME = st.frozensets(st.sampled_from(sorted(PC_ASKED)))
PC_COMMANDS: st.SearchStrategy[Command] = st.one_of(
    st.builds(ConsentChecked, st.booleans(), covered=SOME),
    st.builds(consent_given, PC_ACTORS, st.booleans()),
    st.builds(not_sought, PC_ACTORS),
    st.builds(propose, PC_ACTORS, SOME.map(sorted).map(tuple)),
    st.builds(DecideOverride, PC_ACTORS, st.booleans(), st.just(REASON)),
    st.builds(share_first, PC_ACTORS, SOME.map(sorted).map(tuple)),
    st.builds(DeclineToShare, PC_ACTORS),
    st.just(NothingToShare()),
    st.builds(Delivered, SOME),
    st.builds(Acknowledge, PC_ACTORS, st.just(RECEIVED)),
    st.builds(WithdrawRequest, PC_ACTORS, st.booleans()),
)


@settings(max_examples=250, deadline=None)
@given(urgency=st.sampled_from(list(Urgency)), commands=st.lists(PC_COMMANDS, max_size=16))
def test_no_item_is_ever_delivered_without_a_basis_that_covers_its_category(
    urgency: Urgency, commands: list[Command]
) -> None:
    ex = per_category(urgency)
    consent_covered: frozenset[str] = frozenset()
    recorded_consent = False
    proposed: frozenset[str] = frozenset()
    approved: set[str] = set()
    shared_first: frozenset[str] = frozenset()
    delivered: set[str] = set()
    for command in commands:
        if ex.check(command) is not None:
            state = ex.state
            with pytest.raises(InvalidCommand):
                ex.apply(command)
            assert ex.state is state
            continue
        match command:
            case ConsentChecked(covers=covers, covered=covered):
                consent_covered = PC_ASKED if covers else covered
            case RecordConsent(covers=True):
                recorded_consent = True
            case ProposeOverride(categories=categories):
                proposed = categories
            case DecideOverride(approve=True):
                approved |= proposed
            case ShareFirst(categories=categories):
                shared_first = categories
            case Delivered(categories=categories):
                assert categories is not None
                for category in categories:
                    # Each category delivered was authorised by a basis that names it.
                    basis = ex.authorised[category]
                    if basis is Basis.CONSENT:
                        assert category in consent_covered or recorded_consent
                    elif basis is Basis.OVERRIDE:
                        assert category in approved
                    else:
                        assert basis is Basis.SHARE_FIRST and category in shared_first
                        assert urgency is Urgency.RED
                assert not delivered & set(categories)  # never twice
                delivered |= set(categories)
        ex.apply(command)
        # Nothing is both shared and refused, and nothing outside the request.
        assert not set(ex.authorised) & set(ex.not_shared)
        assert set(ex.authorised) | set(ex.not_shared) <= PC_ASKED
    assert ex.delivered_categories == delivered
    if ex.outcome is Outcome.SHARED_WITH_CONSENT:
        assert delivered and all(ex.authorised[c] is Basis.CONSENT for c in delivered)
    if ex.outcome in {Outcome.SHARED_WITH_CONSENT, Outcome.SHARED_UNDER_OVERRIDE}:
        assert delivered
