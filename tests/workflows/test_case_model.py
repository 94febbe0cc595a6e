"""The pure case model: transitions, deadlines and consent cover, without Temporal."""

from __future__ import annotations

import datetime as dt
import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from workflows.case_model import (
    Asked,
    CaseProgress,
    Consent,
    InvalidTransition,
    State,
    Step,
    Urgency,
    WaitingOn,
    consent_cover,
    deadline,
)

NOW = dt.datetime(2026, 11, 24, 12, 0, tzinfo=dt.UTC)
GIVEN = Consent(
    status="GIVEN",
    purposes={"PURPOSE_SAFEGUARDING"},
    recipients=set(),
    categories={"INFORMATION_CATEGORY_HEALTH_SUMMARY", "INFORMATION_CATEGORY_WELFARE_CONCERNS"},
    valid_from=dt.datetime(2025, 1, 1, tzinfo=dt.UTC),
    valid_until=dt.datetime(2028, 1, 1, tzinfo=dt.UTC),
)
ASKED = Asked(
    purpose="PURPOSE_SAFEGUARDING",
    recipient="oakfield-primary",
    categories={"INFORMATION_CATEGORY_HEALTH_SUMMARY"},
    at=NOW,
)


def test_common_path_moves_through_every_state_and_whose_move_follows() -> None:
    progress = CaseProgress()
    seen = [progress.waiting_on]
    for state in (
        State.CHECKING_CONSENT,
        State.DELIVERING,
        State.AWAITING_ACKNOWLEDGEMENT,
        State.CLOSED,
    ):
        progress.move_to(state)
        seen.append(progress.waiting_on)
    assert progress.history[-1] is State.CLOSED
    assert seen == [
        WaitingOn.SYSTEM,
        WaitingOn.HOLDER,
        WaitingOn.SYSTEM,
        WaitingOn.RECIPIENT,
        WaitingOn.NOBODY,
    ]


def test_delivery_cannot_be_reached_without_a_consent_check() -> None:
    with pytest.raises(InvalidTransition):
        CaseProgress().move_to(State.DELIVERING)


@given(st.lists(st.sampled_from(list(State)), max_size=12))
def test_no_sequence_of_moves_escapes_the_transition_table(targets: list[State]) -> None:
    progress = CaseProgress()
    for target in targets:
        before = progress.state
        allowed = progress.can_move_to(target)
        try:
            progress.move_to(target)
        except InvalidTransition:
            assert not allowed
            assert progress.state is before
        else:
            assert allowed
    # Whatever happened, delivery only ever follows a consent check, and nothing follows close.
    history = progress.history
    for earlier, later in itertools.pairwise(history):
        if later is State.DELIVERING:
            assert earlier is State.CHECKING_CONSENT
        assert earlier is not State.CLOSED


@pytest.mark.parametrize(
    ("urgency", "step", "hours"),
    [
        (Urgency.RED, Step.HOLDER_RESPONDS, 2),
        (Urgency.RED, Step.OVERRIDE_DECISION, 1),
        (Urgency.AMBER, Step.HOLDER_RESPONDS, 6),
        (Urgency.AMBER, Step.OVERRIDE_DECISION, 4),
        (Urgency.GREEN, Step.RECIPIENT_ACKNOWLEDGES, 120),
    ],
)
def test_deadlines_follow_the_published_table(urgency: Urgency, step: Step, hours: int) -> None:
    assert deadline(urgency, step, NOW) == NOW + dt.timedelta(hours=hours)


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


@given(
    status=st.sampled_from(["GIVEN", "REFUSED", "WITHDRAWN", "EXPIRED", "NOT_RECORDED"]),
    purposes=st.sets(st.sampled_from(["PURPOSE_SAFEGUARDING", "PURPOSE_EDUCATION"])),
    categories=st.sets(
        st.sampled_from(
            ["INFORMATION_CATEGORY_HEALTH_SUMMARY", "INFORMATION_CATEGORY_WELFARE_CONCERNS"]
        )
    ),
    asked_categories=st.sets(
        st.sampled_from(
            ["INFORMATION_CATEGORY_HEALTH_SUMMARY", "INFORMATION_CATEGORY_WELFARE_CONCERNS"]
        ),
        min_size=1,
    ),
)
def test_cover_never_admits_an_uncovered_category_or_purpose(
    status: str, purposes: set[str], categories: set[str], asked_categories: set[str]
) -> None:
    consent = Consent(status, purposes, set(), categories, None, None)
    asked = Asked("PURPOSE_SAFEGUARDING", "oakfield-primary", asked_categories, NOW)
    cover = consent_cover(consent, asked)
    assert cover.covers == (
        status == "GIVEN" and "PURPOSE_SAFEGUARDING" in purposes and asked_categories <= categories
    )
    assert cover.covers == (not cover.reasons)
