"""The gateway's request checks, as pure functions: every violation, by field path."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import pytest

from partnership.registry import Registry
from protos.sharing.v1 import case_pb2 as pb
from protos.sharing.v1 import case_service_pb2 as service_pb
from safeshare.gateway import validation
from safeshare.gateway.fields import (
    MAX_TEXT_LENGTH,
    FieldViolation,
)

TODAY = dt.date(2026, 11, 25)


def well_formed() -> service_pb.SubmitRequestRequest:
    """A request that passes every structural check."""
    call = service_pb.SubmitRequestRequest()
    req = call.request
    req.request_id = "req-0001"
    req.requester.user_id = "u-17"
    req.requester.role = "social_worker"
    req.requester.training_valid_until.FromDatetime(dt.datetime(2027, 1, 1, tzinfo=dt.UTC))
    req.holding_agency_ids.append("oakfield-primary")
    req.subjects.add(
        role=pb.SUBJECT_ROLE_CHILD,
        given_name="Alex",
        family_name="Example",
        date_of_birth="2016-03-04",
        nhs_number="9434765919",
    )
    req.purpose = pb.PURPOSE_SAFEGUARDING
    req.lawful_basis = "Children Act 1989 s47"
    req.categories.add(
        category=pb.INFORMATION_CATEGORY_EDUCATION_ATTENDANCE, necessity="attendance pattern"
    )
    req.urgency = pb.URGENCY_RED
    req.family_aware = True
    return call


def fields(violations: list[FieldViolation]) -> list[str]:
    return [v.field for v in violations]


def test_a_well_formed_request_has_no_violations() -> None:
    assert validation.validate_submit(well_formed(), TODAY) == []


def test_a_missing_request_is_one_violation() -> None:
    assert fields(validation.validate_submit(service_pb.SubmitRequestRequest(), TODAY)) == [
        "request"
    ]


def test_an_empty_request_lists_every_violation() -> None:
    call = service_pb.SubmitRequestRequest(request=pb.SharingRequest(family_aware=False))
    assert fields(validation.validate_submit(call, TODAY)) == [
        "request.request_id",
        "request.requester.user_id",
        "request.requester.role",
        "request.requester.training_valid_until",
        "request.holding_agency_ids",
        "request.subjects",
        "request.purpose",
        "request.lawful_basis",
        "request.categories",
        "request.urgency",
        "request.family_not_aware_reason",
    ]


def _set(attr: str, value: object) -> Callable[[pb.SharingRequest], None]:
    def change(req: pb.SharingRequest) -> None:
        setattr(req, attr, value)

    return change


def _subject(attr: str, value: object) -> Callable[[pb.SharingRequest], None]:
    def change(req: pb.SharingRequest) -> None:
        setattr(req.subjects[0], attr, value)

    return change


def _repeated_holder(req: pb.SharingRequest) -> None:
    req.holding_agency_ids.append(req.holding_agency_ids[0])


def _eleven_holders(req: pb.SharingRequest) -> None:
    req.holding_agency_ids[:] = [f"agency-{n}" for n in range(11)]


def _no_child(req: pb.SharingRequest) -> None:
    req.subjects[0].role = pb.SUBJECT_ROLE_PARENT_OR_CARER


def _duplicate_category(req: pb.SharingRequest) -> None:
    req.categories.add(category=req.categories[0].category, necessity="again")


def _unset_category(req: pb.SharingRequest) -> None:
    req.categories.add(necessity="")


def _second_subject_unnamed(req: pb.SharingRequest) -> None:
    req.subjects.add(role=pb.SUBJECT_ROLE_PARENT_OR_CARER, date_of_birth="1990-01-01")


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (_set("request_id", "x" * 129), [("request.request_id", "printable")]),
        (_set("request_id", "line\nbreak"), [("request.request_id", "printable")]),
        (_repeated_holder, [("request.holding_agency_ids", "once")]),
        (_eleven_holders, [("request.holding_agency_ids", "at most 10")]),
        (_no_child, [("request.subjects", "SUBJECT_ROLE_CHILD")]),
        (
            _subject("role", 0),
            [("request.subjects", "SUBJECT_ROLE_CHILD"), ("request.subjects[0].role", "required")],
        ),
        (_subject("given_name", " "), [("request.subjects[0].given_name", "required")]),
        (_subject("date_of_birth", ""), [("request.subjects[0].date_of_birth", "required")]),
        (_subject("date_of_birth", "2020-13-01"), [("request.subjects[0].date_of_birth", "date")]),
        (_subject("date_of_birth", "20200101"), [("request.subjects[0].date_of_birth", "date")]),
        (
            _subject("date_of_birth", "2026-11-26"),
            [("request.subjects[0].date_of_birth", "future")],
        ),
        (_subject("nhs_number", "94347659"), [("request.subjects[0].nhs_number", "10 digits")]),
        (_set("purpose", 99), [("request.purpose", "unknown value 99")]),
        (_duplicate_category, [("request.categories[1].category", "duplicate")]),
        (
            _unset_category,
            [
                ("request.categories[1].category", "required"),
                ("request.categories[1].necessity", "required"),
            ],
        ),
        (
            _second_subject_unnamed,
            [
                ("request.subjects[1].given_name", "required"),
                ("request.subjects[1].family_name", "required"),
            ],
        ),
        (_set("family_aware", False), [("request.family_not_aware_reason", "family_aware")]),
    ],
)
def test_each_rule_names_its_field(
    change: Callable[[pb.SharingRequest], None], expected: list[tuple[str, str]]
) -> None:
    call = well_formed()
    change(call.request)
    found = validation.validate_submit(call, TODAY)
    assert fields(found) == [field for field, _ in expected]
    for (_, words), violation in zip(expected, found, strict=True):
        assert words in violation.description


def test_a_date_of_birth_today_is_allowed() -> None:
    call = well_formed()
    call.request.subjects[0].date_of_birth = TODAY.isoformat()
    assert validation.validate_submit(call, TODAY) == []


def test_a_family_that_does_not_know_needs_a_reason_only() -> None:
    call = well_formed()
    call.request.family_aware = False
    call.request.family_not_aware_reason = "would increase risk"
    assert validation.validate_submit(call, TODAY) == []


def test_descriptions_never_quote_the_request() -> None:
    call = well_formed()
    call.request.subjects[0].date_of_birth = "2099-01-01"
    call.request.subjects[0].nhs_number = "Alex-Example"
    found = validation.validate_submit(call, TODAY)
    assert len(found) == 2
    assert not any("2099" in v.description or "Alex" in v.description for v in found)


def test_holders_outside_the_partnership_are_named(registry: Registry) -> None:
    call = well_formed()
    call.request.holding_agency_ids[:] = ["nowhere-agency"]
    assert validation.unknown_holders(call, registry) == [
        FieldViolation("request.holding_agency_ids[0]", validation.NOT_A_PARTNER)
    ]
    assert validation.unknown_holders(well_formed(), registry) == []


def test_an_agency_cannot_ask_itself() -> None:
    assert fields(validation.self_holders(well_formed(), "oakfield-primary")) == [
        "request.holding_agency_ids[0]"
    ]
    assert validation.self_holders(well_formed(), "northshire-csc") == []


@pytest.mark.parametrize("case_ref", ["", "abc", "A" * 20, "a" * 21, "aaaaaaaaaaaaaaaaaaa1"])
def test_malformed_case_refs_are_refused(case_ref: str) -> None:
    assert fields(validation.validate_case_ref(case_ref)) == ["case_ref"]


def test_a_case_ref_from_the_ids_helper_is_accepted() -> None:
    from workflows.ids import case_ref_for

    assert validation.validate_case_ref(case_ref_for("northshire-csc", "r1")) == []


def test_several_holders_are_allowed() -> None:
    call = well_formed()
    call.request.holding_agency_ids.extend(["riverside-gp", "northshire-police"])
    assert validation.validate_submit(call, TODAY) == []


# -- the decision RPCs ------------------------------------------------------------------------

REF = "abcdefghijklmnopqrst"
ATTENDANCE = pb.INFORMATION_CATEGORY_EDUCATION_ATTENDANCE


def _actor() -> pb.Actor:
    return pb.Actor(
        practitioner=pb.Practitioner(user_id="u-1", role="designated_safeguarding_lead")
    )


WELL_FORMED_COMMANDS: list[tuple[Callable[[Any], list[FieldViolation]], Any]] = [
    (
        validation.validate_record_consent,
        service_pb.RecordConsentRequest(
            case_ref=REF,
            decision=pb.ConsentDecision(
                actor=_actor(),
                consent=pb.ConsentRecord(
                    status=pb.CONSENT_STATUS_GIVEN, purposes=[pb.PURPOSE_SAFEGUARDING]
                ),
            ),
        ),
    ),
    (
        validation.validate_propose_override,
        # Completeness is the workflow's rule: an otherwise empty proposal is well formed.
        service_pb.ProposeOverrideRequest(
            case_ref=REF, proposal=pb.OverrideProposal(actor=_actor())
        ),
    ),
    (
        validation.validate_decide_override,
        service_pb.DecideOverrideRequest(
            case_ref=REF, decision=pb.OverrideDecision(actor=_actor(), reason="ok")
        ),
    ),
    (
        validation.validate_share_first,
        service_pb.ShareFirstRequest(
            case_ref=REF,
            decision=pb.ShareFirstDecision(actor=_actor(), minimum_data_set=[ATTENDANCE]),
        ),
    ),
    (
        validation.validate_decline_to_share,
        service_pb.DeclineToShareRequest(
            case_ref=REF, decision=pb.DeclineDecision(actor=_actor(), reasons=["not_held"])
        ),
    ),
    (
        validation.validate_withdraw_request,
        service_pb.WithdrawRequestRequest(
            case_ref=REF, withdrawal=pb.RequestWithdrawal(actor=_actor(), reason="resolved")
        ),
    ),
    (
        validation.validate_change_urgency,
        service_pb.ChangeUrgencyRequest(
            case_ref=REF,
            change=pb.UrgencyChange(actor=_actor(), urgency=pb.URGENCY_AMBER, reason="why"),
        ),
    ),
    (
        validation.validate_withdraw_consent,
        service_pb.WithdrawConsentRequest(
            case_ref=REF,
            withdrawal=pb.ConsentWithdrawal(actor=_actor(), withdrawn_by_relationship="mother"),
        ),
    ),
    (
        validation.validate_acknowledge,
        service_pb.AcknowledgeRequest(
            case_ref=REF,
            acknowledgement=pb.Acknowledgement(
                practitioner=_actor().practitioner, status=pb.ACKNOWLEDGEMENT_STATUS_RECEIVED
            ),
        ),
    ),
]
COMMAND_IDS = [check.__name__ for check, _ in WELL_FORMED_COMMANDS]


@pytest.mark.parametrize(("check", "call"), WELL_FORMED_COMMANDS, ids=COMMAND_IDS)
def test_a_well_formed_command_has_no_violations(
    check: Callable[[Any], list[FieldViolation]], call: Any
) -> None:
    assert check(call) == []


@pytest.mark.parametrize(("check", "call"), WELL_FORMED_COMMANDS, ids=COMMAND_IDS)
def test_a_command_needs_a_case_ref_and_its_message(
    check: Callable[[Any], list[FieldViolation]], call: Any
) -> None:
    (command,) = [f.name for f, _ in call.ListFields() if f.name != "case_ref"]
    assert fields(check(type(call)(case_ref="not a ref"))) == ["case_ref", command]


@pytest.mark.parametrize(("check", "call"), WELL_FORMED_COMMANDS, ids=COMMAND_IDS)
def test_a_command_names_its_practitioner(
    check: Callable[[Any], list[FieldViolation]], call: Any
) -> None:
    (command,) = [f.name for f, _ in call.ListFields() if f.name != "case_ref"]
    message = getattr(call, command)
    practitioner = (
        message.practitioner if command == "acknowledgement" else message.actor.practitioner
    )
    practitioner.Clear()
    path = (
        f"{command}.practitioner"
        if command == "acknowledgement"
        else f"{command}.actor.practitioner"
    )
    assert fields(check(call)) == [f"{path}.user_id", f"{path}.role"]


def test_a_consent_decision_needs_a_decision_and_known_values() -> None:
    call = service_pb.RecordConsentRequest(
        case_ref=REF, decision=pb.ConsentDecision(actor=_actor())
    )
    assert fields(validation.validate_record_consent(call)) == ["decision.decision"]
    call.decision.not_sought.explanation = "x" * (MAX_TEXT_LENGTH + 1)
    assert fields(validation.validate_record_consent(call)) == [
        "decision.not_sought.reason",
        "decision.not_sought.explanation",
    ]
    call.decision.consent.status = pb.ConsentStatus.ValueType(99)
    call.decision.consent.categories.append(pb.InformationCategory.ValueType(77))
    assert fields(validation.validate_record_consent(call)) == [
        "decision.consent.status",
        "decision.consent.categories[0]",
    ]


def test_free_text_is_bounded_and_enums_must_be_known() -> None:
    too_long = "x" * (MAX_TEXT_LENGTH + 1)
    call = service_pb.ProposeOverrideRequest(
        case_ref=REF,
        proposal=pb.OverrideProposal(
            actor=_actor(),
            harm_statement=too_long,
            reason_code=pb.OverrideReason.ValueType(42),
            minimum_data_set=[ATTENDANCE, pb.INFORMATION_CATEGORY_UNSPECIFIED],
        ),
    )
    found = validation.validate_propose_override(call)
    assert fields(found) == [
        "proposal.reason_code",
        "proposal.minimum_data_set[1]",
        "proposal.harm_statement",
    ]
    assert not any("xxx" in v.description for v in found)


def test_urgency_withdrawal_and_decline_need_their_essentials() -> None:
    change = service_pb.ChangeUrgencyRequest(case_ref=REF, change=pb.UrgencyChange(actor=_actor()))
    assert fields(validation.validate_change_urgency(change)) == ["change.urgency", "change.reason"]
    decline = service_pb.DeclineToShareRequest(
        case_ref=REF, decision=pb.DeclineDecision(actor=_actor(), reasons=["ok", " "])
    )
    assert fields(validation.validate_decline_to_share(decline)) == ["decision.reasons[1]"]
    del decline.decision.reasons[:]
    decline.decision.reasons.extend(["r"] * (validation.MAX_REASONS + 1))
    assert fields(validation.validate_decline_to_share(decline)) == ["decision.reasons"]
