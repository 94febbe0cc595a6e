"""Checks on Case API requests before anything reaches Temporal. Pure: no I/O, no gRPC.

Each check returns every field violation it finds, by field path (``request.subjects[0].
date_of_birth``), so a caller fixes its request in one round trip. Descriptions name what is
wrong, never the value sent: request values are personal data.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any, Protocol

from partnership.registry import Registry
from protos.sharing.v1 import case_pb2 as pb
from protos.sharing.v1 import case_service_pb2 as service_pb
from safeshare.gateway.commands import command_id_problem
from safeshare.gateway.fields import (
    FieldViolation,
    _actor,
    _code,
    _enum,
    _enums,
    _practitioner,
    _subject_violations,
    _text,
)
from workflows.domain import override
from workflows.ids import CASE_REF_PATTERN

MAX_REQUEST_ID_LENGTH = 128
MAX_HOLDERS = 10
MAX_REASONS = 20
NOT_A_PARTNER = "not a partner agency"


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
    found = _requester(req) + _holders(req) + _subjects(req, today)
    found.extend(_enum("request.purpose", pb.Purpose, req.purpose, required=True))
    _need(found, bool(req.lawful_basis.strip()), "lawful_basis")
    found.extend(_categories(req))
    found.extend(_enum("request.urgency", pb.Urgency, req.urgency, required=True))
    _need(
        found,
        req.family_aware or bool(req.family_not_aware_reason.strip()),
        "family_not_aware_reason",
        "required when family_aware is false",
    )
    return found


def _need(found: list[FieldViolation], ok: bool, field: str, description: str = "required") -> None:
    if not ok:
        found.append(FieldViolation(f"request.{field}", description))


def _requester(req: pb.SharingRequest) -> list[FieldViolation]:
    found: list[FieldViolation] = []
    _need(found, bool(req.request_id.strip()), "request_id")
    _need(
        found,
        len(req.request_id) <= MAX_REQUEST_ID_LENGTH and req.request_id.isprintable(),
        "request_id",
        f"must be at most {MAX_REQUEST_ID_LENGTH} printable characters",
    )
    _need(found, bool(req.requester.user_id.strip()), "requester.user_id")
    _need(found, bool(req.requester.role.strip()), "requester.role")
    _need(found, req.requester.HasField("training_valid_until"), "requester.training_valid_until")
    return found


def _holders(req: pb.SharingRequest) -> list[FieldViolation]:
    found: list[FieldViolation] = []
    holders = list(req.holding_agency_ids)
    _need(found, len(holders) > 0, "holding_agency_ids")
    _need(
        found,
        len(holders) <= MAX_HOLDERS,
        "holding_agency_ids",
        f"at most {MAX_HOLDERS} holding agencies",
    )
    _need(
        found,
        len(set(holders)) == len(holders),
        "holding_agency_ids",
        "each holding agency may be named once",
    )
    return found


def _subjects(req: pb.SharingRequest, today: dt.date) -> list[FieldViolation]:
    found: list[FieldViolation] = []
    _need(found, len(req.subjects) > 0, "subjects", "at least one subject is required")
    _need(
        found,
        not req.subjects or any(s.role == pb.SUBJECT_ROLE_CHILD for s in req.subjects),
        "subjects",
        "at least one subject must have role SUBJECT_ROLE_CHILD",
    )
    for i, subject in enumerate(req.subjects):
        found.extend(_subject_violations(f"request.subjects[{i}]", subject, today))
    return found


def _categories(req: pb.SharingRequest) -> list[FieldViolation]:
    found: list[FieldViolation] = []
    _need(found, len(req.categories) > 0, "categories", "at least one category is required")
    seen: set[int] = set()
    for i, category in enumerate(req.categories):
        found.extend(
            _enum(f"request.categories[{i}].category", pb.InformationCategory,
                  category.category, required=True)
        )  # fmt: skip
        _need(
            found, category.category not in seen, f"categories[{i}].category", "duplicate category"
        )
        seen.add(category.category)
        _need(found, bool(category.necessity.strip()), f"categories[{i}].necessity")
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


# -- the decision RPCs -----------------------------------------------------------------------
#
# Structure only: present, known enum values, bounded lengths. Whether a decision is complete
# and allowed (an override's justification, the minimum data set against what was asked,
# who may decide) is the workflow's rule; the servicer translates its answer.


def validate_record_consent(request: service_pb.RecordConsentRequest) -> list[FieldViolation]:
    """RecordConsent: the holder's consent decision, a consent record or why not sought."""
    return _command(request, "decision", _consent_decision)


def validate_propose_override(request: service_pb.ProposeOverrideRequest) -> list[FieldViolation]:
    """ProposeOverride: the proposal's shape; its completeness is the workflow's rule."""
    return _command(request, "proposal", _proposal)


def validate_decide_override(request: service_pb.DecideOverrideRequest) -> list[FieldViolation]:
    """DecideOverride: the approver and the reason for the decision."""
    return _command(request, "decision", _override_decision)


def validate_share_first(request: service_pb.ShareFirstRequest) -> list[FieldViolation]:
    """ShareFirst: the deciding practitioner, the statement and the categories' values."""
    return _command(request, "decision", _share_first)


def validate_decline_to_share(request: service_pb.DeclineToShareRequest) -> list[FieldViolation]:
    """DeclineToShare: the deciding practitioner and at least one reason code."""
    return _command(request, "decision", _decline)


def validate_withdraw_request(request: service_pb.WithdrawRequestRequest) -> list[FieldViolation]:
    """WithdrawRequest: the withdrawing practitioner and why."""
    return _command(request, "withdrawal", _request_withdrawal)


def validate_change_urgency(request: service_pb.ChangeUrgencyRequest) -> list[FieldViolation]:
    """ChangeUrgency: the practitioner, the new urgency and why."""
    return _command(request, "change", _urgency_change)


def validate_withdraw_consent(request: service_pb.WithdrawConsentRequest) -> list[FieldViolation]:
    """WithdrawConsent: the recording practitioner and who withdrew consent."""
    return _command(request, "withdrawal", _consent_withdrawal)


def validate_acknowledge(request: service_pb.AcknowledgeRequest) -> list[FieldViolation]:
    """Acknowledge: the acknowledging practitioner and the status; which holder's delivery
    is acknowledged is resolved against the case by the servicer."""
    return _command(request, "acknowledgement", _acknowledgement)


class _CommandRequest(Protocol):
    @property
    def case_ref(self) -> str: ...

    @property
    def command_id(self) -> str: ...

    def HasField(self, field_name: Any) -> bool: ...


def _command(
    request: _CommandRequest, name: str, check: Callable[[str, Any], list[FieldViolation]]
) -> list[FieldViolation]:
    found = validate_case_ref(request.case_ref) + validate_command_id(request.command_id)
    if not request.HasField(name):
        return [*found, FieldViolation(name, "required")]
    return found + check(name, getattr(request, name))


def validate_command_id(command_id: str) -> list[FieldViolation]:
    """A decision's idempotency key: empty (a fresh one is made) or ``commands``' charset."""
    problem = command_id_problem(command_id)
    return [FieldViolation("command_id", problem)] if problem else []


def _consent_decision(path: str, decision: pb.ConsentDecision) -> list[FieldViolation]:
    found = _actor(path, decision.actor)
    which = decision.WhichOneof("decision")
    if which is None:
        found.append(FieldViolation(f"{path}.decision", "one of consent or not_sought is required"))
    elif which == "consent":
        found.extend(_consent_record(f"{path}.consent", decision.consent))
    else:
        reason = decision.not_sought
        found.extend(_enum(f"{path}.not_sought.reason", pb.NotSoughtReason, reason.reason, True))
        found.extend(_text(f"{path}.not_sought.explanation", reason.explanation, required=True))
    return found


def _consent_record(path: str, consent: pb.ConsentRecord) -> list[FieldViolation]:
    found = _enum(f"{path}.status", pb.ConsentStatus, consent.status, required=True)
    found.extend(_code(f"{path}.given_by_relationship", consent.given_by_relationship))
    found.extend(_enums(f"{path}.purposes", pb.Purpose, consent.purposes))
    found.extend(_enums(f"{path}.categories", pb.InformationCategory, consent.categories))
    for i, agency_id in enumerate(consent.recipient_agency_ids):
        found.extend(_code(f"{path}.recipient_agency_ids[{i}]", agency_id, required=True))
    found.extend(_text(f"{path}.verification", consent.verification))
    found.extend(_text(f"{path}.views_expressed", consent.views_expressed))
    return found


def _proposal(path: str, proposal: pb.OverrideProposal) -> list[FieldViolation]:
    found = _actor(path, proposal.actor)
    found.extend(
        _enum(f"{path}.consent_state_overridden", pb.ConsentStatus,
              proposal.consent_state_overridden, required=False)
    )  # fmt: skip
    found.extend(_enum(f"{path}.reason_code", pb.OverrideReason, proposal.reason_code, False))
    found.extend(_enums(f"{path}.minimum_data_set", pb.InformationCategory,
                        proposal.minimum_data_set))  # fmt: skip
    for name in override.FREE_TEXT:
        found.extend(_text(f"{path}.{name}", getattr(proposal, name)))
    return found


def _override_decision(path: str, decision: pb.OverrideDecision) -> list[FieldViolation]:
    return _actor(path, decision.actor) + _text(f"{path}.reason", decision.reason, required=True)


def _share_first(path: str, decision: pb.ShareFirstDecision) -> list[FieldViolation]:
    found = _actor(path, decision.actor)
    found.extend(_text(f"{path}.harm_statement", decision.harm_statement))
    found.extend(_enums(f"{path}.minimum_data_set", pb.InformationCategory,
                        decision.minimum_data_set))  # fmt: skip
    return found


def _decline(path: str, decision: pb.DeclineDecision) -> list[FieldViolation]:
    found = _actor(path, decision.actor)
    if not decision.reasons:
        found.append(FieldViolation(f"{path}.reasons", "at least one reason is required"))
    elif len(decision.reasons) > MAX_REASONS:
        found.append(FieldViolation(f"{path}.reasons", f"at most {MAX_REASONS} reasons"))
    for i, reason in enumerate(decision.reasons[:MAX_REASONS]):
        found.extend(_code(f"{path}.reasons[{i}]", reason, required=True))
    found.extend(_text(f"{path}.explanation", decision.explanation))
    return found


def _request_withdrawal(path: str, withdrawal: pb.RequestWithdrawal) -> list[FieldViolation]:
    return _actor(path, withdrawal.actor) + _text(
        f"{path}.reason", withdrawal.reason, required=True
    )


def _urgency_change(path: str, change: pb.UrgencyChange) -> list[FieldViolation]:
    found = _actor(path, change.actor)
    found.extend(_enum(f"{path}.urgency", pb.Urgency, change.urgency, required=True))
    found.extend(_text(f"{path}.reason", change.reason, required=True))
    return found


def _consent_withdrawal(path: str, withdrawal: pb.ConsentWithdrawal) -> list[FieldViolation]:
    found = _actor(path, withdrawal.actor)
    found.extend(
        _code(f"{path}.withdrawn_by_relationship", withdrawal.withdrawn_by_relationship, True)
    )
    found.extend(_text(f"{path}.reason", withdrawal.reason))
    return found


def _acknowledgement(path: str, ack: pb.Acknowledgement) -> list[FieldViolation]:
    found = _practitioner(f"{path}.practitioner", ack.practitioner)
    found.extend(_enum(f"{path}.status", pb.AcknowledgementStatus, ack.status, required=True))
    found.extend(_text(f"{path}.use", ack.use))
    found.extend(_text(f"{path}.feedback", ack.feedback))
    found.extend(_code(f"{path}.holding_agency_id", ack.holding_agency_id))
    return found
