"""Translation between the protobuf messages at the workflows' edges and the pure case model.

Deterministic and side-effect free, so the workflows can use it; no I/O.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError

from workflows import case_model as model
from workflows.calendar import WorkingCalendar, recorded_calendar

with workflow.unsafe.imports_passed_through():
    from google.protobuf.timestamp_pb2 import Timestamp

    from protos.sharing.v1 import case_pb2 as pb


def timestamp(at: dt.datetime) -> Timestamp:
    """A protobuf Timestamp."""
    stamp = Timestamp()
    stamp.FromDatetime(at)
    return stamp


def urgency(value: pb.Urgency.ValueType) -> model.Urgency:
    """The model's urgency for a proto urgency (UNSPECIFIED is treated as GREEN)."""
    if value == pb.URGENCY_UNSPECIFIED:
        return model.Urgency.GREEN
    return model.Urgency(pb.Urgency.Name(value).removeprefix("URGENCY_"))


def state(value: model.State) -> pb.CaseState.ValueType:
    """The proto CaseState for a model state."""
    return pb.CaseState.Value(f"CASE_STATE_{value.value}")


def waiting_on(value: model.WaitingOn) -> pb.WaitingOn.ValueType:
    """The proto WaitingOn for the model's."""
    return pb.WaitingOn.Value(f"WAITING_ON_{value.value}")


def outcome(value: model.Outcome) -> pb.Outcome.ValueType:
    """The proto Outcome for the model's."""
    return pb.Outcome.Value(f"OUTCOME_{value.value}")


def outcome_name(value: model.Outcome) -> str:
    """The outcome's code, e.g. ``SHARED_WITH_CONSENT``."""
    return value.value


def model_outcome(value: pb.Outcome.ValueType) -> model.Outcome:
    """The model's outcome for a proto outcome."""
    return model.Outcome(pb.Outcome.Name(value).removeprefix("OUTCOME_"))


def actor(value: pb.Actor) -> model.Actor:
    """The model's actor."""
    return model.Actor(value.agency_id, value.practitioner.user_id, value.practitioner.role)


def consent_facts(consent: pb.ConsentRecord) -> model.Consent:
    """The facts of a consent record that decide cover."""
    return model.Consent(
        status=pb.ConsentStatus.Name(consent.status).removeprefix("CONSENT_STATUS_"),
        purposes={pb.Purpose.Name(p) for p in consent.purposes},
        recipients=set(consent.recipient_agency_ids),
        categories={pb.InformationCategory.Name(c) for c in consent.categories},
        valid_from=consent.valid_from.ToDatetime(dt.UTC)
        if consent.HasField("valid_from")
        else None,
        valid_until=(
            consent.valid_until.ToDatetime(dt.UTC) if consent.HasField("valid_until") else None
        ),
    )


def error_code(err: ActivityError) -> str:
    """A code for why an agency activity failed (never the agency's own message)."""
    cause = err.cause
    if isinstance(cause, ApplicationError) and cause.details:
        return str(cause.details[0])
    if isinstance(cause, ApplicationError) and cause.type:
        return cause.type
    return type(cause).__name__ if cause else "unknown"


def _practitioner_missing(prefix: str, practitioner: pb.Practitioner) -> list[str]:
    missing = []
    if not practitioner.user_id:
        missing.append(f"{prefix}.practitioner.user_id")
    if not practitioner.role:
        missing.append(f"{prefix}.practitioner.role")
    return missing


def missing_consent_decision_fields(decision: pb.ConsentDecision) -> list[str]:
    """Required fields of a consent decision that are empty."""
    missing = _practitioner_missing("decision.actor", decision.actor.practitioner)
    which = decision.WhichOneof("decision")
    if which is None:
        missing.append("decision.consent|decision.not_sought")
    elif which == "consent" and decision.consent.status == pb.CONSENT_STATUS_UNSPECIFIED:
        missing.append("decision.consent.status")
    elif which == "not_sought":
        if decision.not_sought.reason == pb.NOT_SOUGHT_REASON_UNSPECIFIED:
            missing.append("decision.not_sought.reason")
        if not decision.not_sought.explanation:
            missing.append("decision.not_sought.explanation")
    return missing


def _minimum_data_set(
    prefix: str, chosen: Collection[pb.InformationCategory.ValueType], asked: Collection[int]
) -> list[str]:
    if not chosen:
        return [f"{prefix}.minimum_data_set"]
    if not set(chosen) <= set(asked):
        return [f"{prefix}.minimum_data_set (only categories the request asked for)"]
    return []


def missing_override_fields(proposal: pb.OverrideProposal, asked: Collection[int]) -> list[str]:
    """Required fields of an override proposal that are empty or invalid."""
    missing = _practitioner_missing("proposal.actor", proposal.actor.practitioner)
    if proposal.consent_state_overridden in (
        pb.CONSENT_STATUS_UNSPECIFIED,
        pb.CONSENT_STATUS_GIVEN,
    ):
        missing.append("proposal.consent_state_overridden")
    for name in (
        "harm_statement",
        "legal_basis",
        "necessity_and_proportionality",
        "alternatives_considered",
        "advice_sought",
    ):
        if not getattr(proposal, name).strip():
            missing.append(f"proposal.{name}")
    if proposal.reason_code == pb.OVERRIDE_REASON_UNSPECIFIED:
        missing.append("proposal.reason_code")
    missing.extend(_minimum_data_set("proposal", proposal.minimum_data_set, asked))
    if proposal.subject_will_be_told and not proposal.HasField("subject_told_by"):
        missing.append("proposal.subject_told_by")
    if not proposal.subject_will_be_told and not proposal.not_telling_reason.strip():
        missing.append("proposal.not_telling_reason")
    return missing


def missing_share_first_fields(
    decision: pb.ShareFirstDecision, asked: Collection[int]
) -> list[str]:
    """Required fields of a RED share-first decision that are empty or invalid."""
    missing = _practitioner_missing("decision.actor", decision.actor.practitioner)
    if not decision.harm_statement.strip():
        missing.append("decision.harm_statement")
    missing.extend(_minimum_data_set("decision", decision.minimum_data_set, asked))
    return missing


def shared_basis(holder: str, exchange: model.Exchange, record: pb.HolderRecord) -> str:
    """The basis of a share in plain words (codes and agency ids only)."""
    if exchange.outcome is model.Outcome.SHARED_WITH_CONSENT:
        consent = record.consent
        return (
            f"Shared by {holder} with consent "
            f"(given by {consent.given_by_relationship or 'unspecified'}, "
            f"verified by {consent.verification or 'unspecified'})."
        )
    if exchange.outcome is model.Outcome.SHARED_UNDER_OVERRIDE:
        if record.HasField("share_first"):
            decided = "approved" if exchange.override_approved else "rejected after sharing"
            return f"Shared by {holder} first under RED urgency; justification {decided}."
        proposal = record.override_proposal
        return (
            f"Shared by {holder} under an approved override "
            f"({pb.OverrideReason.Name(proposal.reason_code)}; {proposal.legal_basis})."
        )
    if exchange.outcome is model.Outcome.WITHDRAWN:
        return f"Withdrawn by the requester before {holder} closed."
    return f"Not shared by {holder}."


def holder_details(
    holder: str,
    recipient: str,
    state_: model.State,
    waiting: model.WaitingOn,
    deadline: dt.datetime | None,
    outcome_: model.Outcome,
) -> str:
    """What an exchange waits for and until when, in plain words, for the Temporal UI."""
    due = f" by {deadline:%Y-%m-%d %H:%M} UTC" if deadline else ""
    match state_:
        case model.State.CHECKING_CONSENT:
            return f"Checking the consent {holder} holds."
        case model.State.AWAITING_CONSENT_DECISION:
            return f"Waiting for {holder} to record consent, propose an override or decline{due}."
        case model.State.AWAITING_OVERRIDE_DECISION:
            return f"Waiting for an approver at {holder} to decide the override{due}."
        case model.State.DELIVERING if waiting is model.WaitingOn.OPERATOR:
            return f"Delivery to {recipient} is failing; operators have been alerted."
        case model.State.DELIVERING:
            return f"Extracting approved records at {holder} and delivering them to {recipient}."
        case model.State.AWAITING_ACKNOWLEDGEMENT if waiting is model.WaitingOn.APPROVER:
            return f"Shared first (RED); waiting for {holder} to justify the override{due}."
        case model.State.AWAITING_ACKNOWLEDGEMENT:
            return f"Waiting for {recipient} to acknowledge receipt{due}."
        case model.State.CLOSED:
            return f"Closed: {outcome_.value}."
    return "Starting."


def _minute(value: int) -> dt.time:
    return dt.time(value // 60, value % 60)


def calendar(resolved: pb.ResolvedCalendar) -> WorkingCalendar:
    """The working calendar a case recorded for one agency."""
    return recorded_calendar(
        non_working_dates=[dt.date.fromisoformat(d) for d in resolved.non_working_dates],
        offsets=[
            (
                getattr(change, "from").ToDatetime(dt.UTC),
                dt.timedelta(seconds=change.offset_seconds),
            )
            for change in resolved.offsets
        ],
        day_starts=_minute(resolved.day_starts_minute),
        day_ends=_minute(resolved.day_ends_minute),
        school_terms=[
            (dt.date.fromisoformat(t.first), dt.date.fromisoformat(t.last))
            for t in resolved.school_terms
        ],
        school_day_starts=_minute(resolved.school_day_starts_minute),
    )


def timescales(policy: pb.TimescalePolicy) -> model.Timescales:
    """The timescales a case recorded (any step it does not name keeps the default)."""
    found = dict(model.DEFAULT_TIMESCALES)
    for timescale in policy.timescales:
        found[(model.Urgency(timescale.urgency), model.Step(timescale.step))] = model.Timescale(
            period=(
                dt.timedelta(seconds=timescale.seconds)
                if timescale.seconds
                else dt.timedelta(minutes=timescale.minutes)
            ),
            working_hours=timescale.working_hours,
            lead_after_period=timescale.lead_after_period,
            operator_after_period=timescale.operator_after_period,
        )
    return found
