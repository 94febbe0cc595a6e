"""Checks on Case API requests before anything reaches Temporal. Pure: no I/O, no gRPC.

Each check returns every field violation it finds, by field path (``request.subjects[0].
date_of_birth``), so a caller fixes its request in one round trip. Descriptions name what is
wrong, never the value sent: request values are personal data.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from activities.registry import Registry
from protos.sharing.v1 import case_pb2 as pb
from protos.sharing.v1 import case_service_pb2 as service_pb
from workflows.ids import CASE_REF_PATTERN

MAX_REQUEST_ID_LENGTH = 128
ONE_HOLDER_ONLY = "one holding agency per request is supported"
NOT_A_PARTNER = "not a partner agency"

_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_NHS_NUMBER = re.compile(r"^\d{10}$")


@dataclass(frozen=True)
class FieldViolation:
    """One thing wrong with a request: the field path and what is wrong with it."""

    field: str
    description: str


def validate_submit(
    request: service_pb.SubmitRequestRequest, today: dt.date | None = None
) -> list[FieldViolation]:
    """Every structural violation in a SubmitRequest (registry checks come after).

    Args:
        request: the call as received.
        today: the date a date of birth may not be after; today in UTC by default.

    Returns:
        The violations, in field order; empty if the request is well formed.
    """
    if not request.HasField("request"):
        return [FieldViolation("request", "required")]
    today = today or dt.datetime.now(dt.UTC).date()
    req = request.request
    found: list[FieldViolation] = []

    def need(ok: bool, field: str, description: str = "required") -> None:
        if not ok:
            found.append(FieldViolation(f"request.{field}", description))

    need(bool(req.request_id.strip()), "request_id")
    need(
        len(req.request_id) <= MAX_REQUEST_ID_LENGTH and req.request_id.isprintable(),
        "request_id",
        f"must be at most {MAX_REQUEST_ID_LENGTH} printable characters",
    )
    need(bool(req.requester.user_id.strip()), "requester.user_id")
    need(bool(req.requester.role.strip()), "requester.role")
    need(req.requester.HasField("training_valid_until"), "requester.training_valid_until")
    need(len(req.holding_agency_ids) > 0, "holding_agency_ids")
    need(len(req.holding_agency_ids) <= 1, "holding_agency_ids", ONE_HOLDER_ONLY)
    need(len(req.subjects) > 0, "subjects", "at least one subject is required")
    need(
        not req.subjects or any(s.role == pb.SUBJECT_ROLE_CHILD for s in req.subjects),
        "subjects",
        "at least one subject must have role SUBJECT_ROLE_CHILD",
    )
    for i, subject in enumerate(req.subjects):
        found.extend(_subject_violations(f"request.subjects[{i}]", subject, today))
    need(_known(pb.Purpose, req.purpose), "purpose")
    need(bool(req.lawful_basis.strip()), "lawful_basis")
    need(len(req.categories) > 0, "categories", "at least one category is required")
    seen: set[int] = set()
    for i, category in enumerate(req.categories):
        need(_known(pb.InformationCategory, category.category), f"categories[{i}].category")
        need(category.category not in seen, f"categories[{i}].category", "duplicate category")
        seen.add(category.category)
        need(bool(category.necessity.strip()), f"categories[{i}].necessity")
    need(_known(pb.Urgency, req.urgency), "urgency")
    need(
        req.family_aware or bool(req.family_not_aware_reason.strip()),
        "family_not_aware_reason",
        "required when family_aware is false",
    )
    return found


def unknown_holders(
    request: service_pb.SubmitRequestRequest, registry: Registry
) -> list[FieldViolation]:
    """Holding agencies that are not in the partnership registry (NOT_FOUND)."""
    return [
        FieldViolation(f"request.holding_agency_ids[{i}]", NOT_A_PARTNER)
        for i, agency_id in enumerate(request.request.holding_agency_ids)
        if registry.get(agency_id) is None
    ]


def self_holders(request: service_pb.SubmitRequestRequest, caller: str) -> list[FieldViolation]:
    """Holding agencies equal to the requesting agency: an agency cannot ask itself."""
    return [
        FieldViolation(f"request.holding_agency_ids[{i}]", "must not be the requesting agency")
        for i, agency_id in enumerate(request.request.holding_agency_ids)
        if agency_id == caller
    ]


def validate_case_ref(case_ref: str) -> list[FieldViolation]:
    """A case reference must look like one (so a malformed one never reaches Temporal)."""
    if CASE_REF_PATTERN.fullmatch(case_ref):
        return []
    return [FieldViolation("case_ref", "must be a case reference (20 characters a-z, 2-7)")]


def validate_acknowledge(request: service_pb.AcknowledgeRequest) -> list[FieldViolation]:
    """The case reference and the presence of the acknowledgement.

    What the acknowledgement must hold is the workflow's rule (its update validator).
    """
    found = validate_case_ref(request.case_ref)
    if not request.HasField("acknowledgement"):
        found.append(FieldViolation("acknowledgement", "required"))
    return found


def _subject_violations(path: str, subject: pb.Subject, today: dt.date) -> list[FieldViolation]:
    found: list[FieldViolation] = []
    if not _known(pb.SubjectRole, subject.role):
        found.append(FieldViolation(f"{path}.role", "required"))
    if not subject.given_name.strip():
        found.append(FieldViolation(f"{path}.given_name", "required"))
    if not subject.family_name.strip():
        found.append(FieldViolation(f"{path}.family_name", "required"))
    dob_problem = _date_of_birth_problem(subject.date_of_birth, today)
    if dob_problem:
        found.append(FieldViolation(f"{path}.date_of_birth", dob_problem))
    if subject.nhs_number and not _NHS_NUMBER.fullmatch(subject.nhs_number):
        found.append(FieldViolation(f"{path}.nhs_number", "must be 10 digits"))
    return found


def _date_of_birth_problem(value: str, today: dt.date) -> str | None:
    if not value:
        return "required"
    # fromisoformat alone also accepts forms such as 20200101 and 2020-W01-1.
    if not _DATE.fullmatch(value):
        return "must be a date YYYY-MM-DD"
    try:
        born = dt.date.fromisoformat(value)
    except ValueError:
        return "must be a date YYYY-MM-DD"
    if born > today:
        return "must not be in the future"
    return None


class _ProtoEnum(Protocol):
    def values(self) -> Sequence[int]: ...


def _known(enum: _ProtoEnum, value: int) -> bool:
    """Set, and one of the enum's values: proto3 enums accept unknown numbers on the wire."""
    return value != 0 and value in enum.values()
