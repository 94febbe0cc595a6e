"""Checks on disclosure calls before anything reaches Temporal. Pure: no I/O, no gRPC.

Every violation is named by its field path (``disclosure.operation_encompass.voice_of_the_child``)
so a caller fixes its call in one round trip; the fields a kind's fixed dataset must hold are
the model's (``workflows.domain.disclosure.DATASET_FIELDS``). Descriptions never quote a value.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from partnership.registry import Registry
from protos.sharing.v1 import case_pb2 as pb
from protos.sharing.v1 import case_service_pb2 as service_pb
from safeshare.gateway.fields import (
    _DATE,
    FieldViolation,
    _actor,
    _code,
    _enum,
    _enums,
    _known,
    _subject_violations,
    _text,
)
from safeshare.gateway.validation import (
    MAX_HOLDERS,
    MAX_REASONS,
    MAX_REQUEST_ID_LENGTH,
    NOT_A_PARTNER,
    _consent_record,
    validate_case_ref,
    validate_command_id,
)
from workflows.domain import disclosure as dm
from workflows.domain.vocabulary import code


def kind_of(value: int) -> dm.Kind | None:
    """The model's kind for a proto DisclosureKind, or None when unset or unknown."""
    if not _known(pb.DisclosureKind, value):
        return None
    return dm.Kind(code(pb.DisclosureKind, value))


def validate_submit_disclosure(
    request: service_pb.SubmitDisclosureRequest, today: dt.date | None = None
) -> list[FieldViolation]:
    """Every structural violation in a SubmitDisclosure (registry checks come after)."""
    if not request.HasField("disclosure"):
        return [FieldViolation("disclosure", "required")]
    today = today or dt.datetime.now(dt.UTC).date()
    d = request.disclosure
    path = "disclosure"
    found = _id(f"{path}.disclosure_id", d.disclosure_id)
    found += _code(f"{path}.discloser.user_id", d.discloser.user_id, required=True)
    found += _code(f"{path}.discloser.role", d.discloser.role, required=True)
    if not d.discloser.HasField("training_valid_until"):
        found.append(FieldViolation(f"{path}.discloser.training_valid_until", "required"))
    found += _enum(f"{path}.kind", pb.DisclosureKind, d.kind, required=True)
    kind = kind_of(d.kind)
    if not d.subjects:
        found.append(FieldViolation(f"{path}.subjects", "at least one subject is required"))
    elif not any(s.role == pb.SUBJECT_ROLE_CHILD for s in d.subjects):
        found.append(
            FieldViolation(
                f"{path}.subjects", "at least one subject must have role SUBJECT_ROLE_CHILD"
            )
        )
    for i, subject in enumerate(d.subjects):
        found += _subject_violations(f"{path}.subjects[{i}]", subject, today)
    found += _recipients(d, kind)
    found += _enums(f"{path}.categories", pb.InformationCategory, d.categories)
    found += _unique(f"{path}.categories", list(d.categories))
    found += _enums(f"{path}.caveats", pb.HandlingCaveat, d.caveats)
    found += _unique(f"{path}.caveats", list(d.caveats))
    found += _consent_position(f"{path}.consent", d)
    if kind is not None:
        found += dataset_violations(d, kind)
    found += _code(f"{path}.agency_reference", d.agency_reference)
    return found


def dataset_violations(disclosure: pb.Disclosure, kind: dm.Kind) -> list[FieldViolation]:
    """A violation for the kind's dataset when it is absent or another kind's, and one for
    every required field of it that is missing."""
    name, required = dm.DATASET_FIELDS[kind]
    path = f"disclosure.{name}"
    which = disclosure.WhichOneof("dataset")
    if which is None:
        return [FieldViolation(path, f"required for {kind.value}")]
    if which != name:
        return [FieldViolation(f"disclosure.{which}", f"not the dataset of {kind.value}")]
    dataset = getattr(disclosure, name)
    present = set()
    found: list[FieldViolation] = []
    for field in required:
        descriptor = dataset.DESCRIPTOR.fields_by_name[field]
        value = getattr(dataset, field)
        if descriptor.message_type is not None:
            if dataset.HasField(field):
                present.add(field)
        elif descriptor.enum_type is not None:
            if value != 0:
                present.add(field)
                if value not in descriptor.enum_type.values_by_number:
                    found.append(FieldViolation(f"{path}.{field}", "must be a known value"))
        elif str(value).strip():
            present.add(field)
            found += _text(f"{path}.{field}", str(value))
    found = [FieldViolation(f"{path}.{field}", "required")
             for field in dm.missing_dataset_fields(kind, present)] + found  # fmt: skip
    if kind is dm.Kind.CHILD_PROTECTION_FILE_TRANSFER:
        day = disclosure.child_protection_file.starts_at_new_school_on
        if day and not _DATE.fullmatch(day):
            found.append(
                FieldViolation(f"{path}.starts_at_new_school_on", "must be a date YYYY-MM-DD")
            )
    return found


def _recipients(d: pb.Disclosure, kind: dm.Kind | None) -> list[FieldViolation]:
    path = "disclosure.recipient_agency_ids"
    recipients = list(d.recipient_agency_ids)
    found: list[FieldViolation] = []
    if d.no_school_place:
        if kind is not dm.Kind.OPERATION_ENCOMPASS:
            found.append(
                FieldViolation("disclosure.no_school_place", "only for OPERATION_ENCOMPASS")
            )
        if recipients:
            found.append(FieldViolation(path, "must be empty when no_school_place is set"))
        return found
    if not recipients:
        found.append(FieldViolation(path, "at least one recipient is required"))
    if len(recipients) > MAX_HOLDERS:
        found.append(FieldViolation(path, f"at most {MAX_HOLDERS} recipients"))
    if kind is dm.Kind.OPERATION_ENCOMPASS and len(recipients) > 1:
        found.append(FieldViolation(path, "an Operation Encompass notification goes to one school"))
    for i, agency_id in enumerate(recipients):
        found += _code(f"{path}[{i}]", agency_id, required=True)
    return found + _unique(path, recipients)


def _consent_position(path: str, d: pb.Disclosure) -> list[FieldViolation]:
    which = d.consent.WhichOneof("position")
    if which is None:
        return [FieldViolation(path, "one of consent or without_consent is required")]
    if which == "consent":
        found = _consent_record(f"{path}.consent", d.consent.consent)
        if d.consent.consent.status not in (0, pb.CONSENT_STATUS_GIVEN):
            found.append(
                FieldViolation(
                    f"{path}.consent.status",
                    "consent on record must be GIVEN; otherwise give without_consent",
                )
            )
        return found
    without = d.consent.without_consent
    found = _enum(f"{path}.without_consent.consent_state", pb.ConsentStatus,
                  without.consent_state, required=True)  # fmt: skip
    found += _text(f"{path}.without_consent.lawful_basis", without.lawful_basis, required=True)
    found += _enum(f"{path}.without_consent.reason_code", pb.OverrideReason,
                   without.reason_code, required=True)  # fmt: skip
    found += _text(f"{path}.without_consent.reason", without.reason, required=True)
    return found


def validate_not_made(request: service_pb.RecordDisclosureNotMadeRequest) -> list[FieldViolation]:
    """RecordDisclosureNotMade: who decided, the kind, and at least one reason."""
    if not request.HasField("not_made"):
        return [FieldViolation("not_made", "required")]
    n = request.not_made
    found = _id("not_made.disclosure_id", n.disclosure_id)
    found += _code("not_made.decided_by.user_id", n.decided_by.user_id, required=True)
    found += _code("not_made.decided_by.role", n.decided_by.role, required=True)
    found += _enum("not_made.kind", pb.DisclosureKind, n.kind, required=True)
    if not n.reasons:
        found.append(FieldViolation("not_made.reasons", "at least one reason is required"))
    if len(n.reasons) > MAX_REASONS:
        found.append(FieldViolation("not_made.reasons", f"at most {MAX_REASONS} reasons"))
    for i, reason in enumerate(n.reasons):
        found += _code(f"not_made.reasons[{i}]", reason, required=True)
    found += _text("not_made.explanation", n.explanation, required=True)
    for i, agency_id in enumerate(n.recipient_agency_ids):
        found += _code(f"not_made.recipient_agency_ids[{i}]", agency_id, required=True)
    return found


def validate_decide_disclosure(request: service_pb.DecideDisclosureRequest) -> list[FieldViolation]:
    """DecideDisclosure: the approver and the reason for the decision."""
    found = validate_case_ref(request.case_ref) + validate_command_id(request.command_id)
    if not request.HasField("decision"):
        return [*found, FieldViolation("decision", "required")]
    found += _actor("decision", request.decision.actor)
    return found + _text("decision.reason", request.decision.reason, required=True)


def unknown_recipients(
    recipients: list[str], path: str, registry: Registry
) -> list[FieldViolation]:
    """Recipients that are not in the partnership registry (NOT_FOUND)."""
    return [
        FieldViolation(f"{path}[{i}]", NOT_A_PARTNER)
        for i, agency_id in enumerate(recipients)
        if registry.get(agency_id) is None
    ]


def self_recipients(recipients: list[str], path: str, caller: str) -> list[FieldViolation]:
    """A holder cannot disclose to itself."""
    return [
        FieldViolation(f"{path}[{i}]", "must not be the disclosing agency")
        for i, agency_id in enumerate(recipients)
        if agency_id == caller
    ]


def _id(path: str, value: str) -> list[FieldViolation]:
    if not value.strip():
        return [FieldViolation(path, "required")]
    if len(value) > MAX_REQUEST_ID_LENGTH or not value.isprintable():
        return [
            FieldViolation(path, f"must be at most {MAX_REQUEST_ID_LENGTH} printable characters")
        ]
    return []


def _unique(path: str, values: Sequence[object]) -> list[FieldViolation]:
    seen: set[object] = set()
    found = []
    for i, value in enumerate(values):
        if value in seen:
            found.append(FieldViolation(f"{path}[{i}]", "duplicate"))
        seen.add(value)
    return found
