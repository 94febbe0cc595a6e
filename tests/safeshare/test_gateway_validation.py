"""The gateway's request checks, as pure functions: every violation, by field path."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import pytest

from activities.registry import Registry
from protos.sharing.v1 import case_pb2 as pb
from protos.sharing.v1 import case_service_pb2 as service_pb
from safeshare.gateway import validation
from safeshare.gateway.validation import FieldViolation

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


def _two_holders(req: pb.SharingRequest) -> None:
    req.holding_agency_ids.append("riverside-gp")


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
        (_two_holders, [("request.holding_agency_ids", validation.ONE_HOLDER_ONLY)]),
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
        (_set("purpose", 99), [("request.purpose", "required")]),
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


def test_an_acknowledge_call_needs_its_acknowledgement() -> None:
    call = service_pb.AcknowledgeRequest(case_ref="not a ref")
    assert fields(validation.validate_acknowledge(call)) == ["case_ref", "acknowledgement"]
