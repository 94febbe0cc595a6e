"""What an exchange shows: the holder's record as it stands, an update's answer, the search
attributes and current details operators see, and the per-category decisions of the record.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from temporalio import workflow
from temporalio.common import SearchAttributeUpdate

from workflows import search_attributes as sa
from workflows.domain.decision_record import holder_details, shared_basis
from workflows.domain.vocabulary import (
    Basis,
    Outcome,
    State,
    code,
    proto_outcome,
    proto_state,
    proto_waiting_on,
    timestamp,
)

with workflow.unsafe.imports_passed_through():
    from protos.sharing.v1 import case_pb2 as pb

if TYPE_CHECKING:
    from workflows.exchange.state import ExchangeState

Answer = pb.HolderRecord | pb.CommandResult
"""An update's answer: what it changed (compact histories), else the whole record."""


def holder_record(x: ExchangeState) -> pb.HolderRecord:
    """The holder's record with its state, whose move it is, its outcome and next deadline."""
    record = copy(x.record)
    record.state = proto_state(x.model.state)
    record.waiting_on = proto_waiting_on(x.waiting_on())
    record.outcome = proto_outcome(x.model.outcome)
    if x.next_deadline is not None and x.model.state is not State.CLOSED:
        record.next_deadline.CopyFrom(timestamp(x.next_deadline))
    return record


def answer(x: ExchangeState, since: int) -> Answer:
    """An update's answer: what it changed (compact histories), else the whole record.

    ``since`` is how many entries the record held when the update began."""
    if not x.compact:
        return holder_record(x)
    result = pb.CommandResult(
        case_ref=x.case_ref,
        holding_agency_id=x.holder,
        state=proto_state(x.model.state),
        waiting_on=proto_waiting_on(x.waiting_on()),
        outcome=proto_outcome(x.model.outcome),
        entries=x.record.entries[since:],
        entry_number=len(x.record.entries),
    )
    if x.next_deadline is not None and x.model.state is not State.CLOSED:
        result.next_deadline.CopyFrom(timestamp(x.next_deadline))
    return result


def search_attributes(x: ExchangeState) -> list[SearchAttributeUpdate[Any]]:
    """The exchange's search attributes as they stand (codes only, never personal data)."""
    state = x.model.state
    updates: list[SearchAttributeUpdate[Any]] = [
        sa.CASE_STATE.value_set(state.value),
        sa.URGENCY.value_set(x.model.urgency.value),
        sa.PURPOSE.value_set(code(pb.Purpose, x.request.purpose)),
        sa.REQUESTING_AGENCY.value_set(x.recipient),
        sa.HOLDING_AGENCY.value_set([x.holder]),
        sa.WAITING_ON.value_set(x.waiting_on().value),
        sa.OVERRIDE_USED.value_set(x.record.override_used),
        sa.ESCALATED.value_set(bool(x.record.escalations)),
        sa.NEXT_DEADLINE.value_set(x.next_deadline)
        if x.next_deadline and state is not State.CLOSED
        else sa.NEXT_DEADLINE.value_unset(),
    ]
    if x.record.HasField("consent"):
        status = code(pb.ConsentStatus, x.record.consent.status)
        updates.append(sa.CONSENT_STATUS.value_set(status))
    if x.model.outcome is not Outcome.OPEN:
        updates.append(sa.OUTCOME.value_set(x.model.outcome.value))
    return updates


def details(x: ExchangeState) -> str:
    """What the exchange waits for and until when, in plain words (the UI's current details)."""
    return holder_details(
        x.holder, x.recipient, x.model.state, x.waiting_on(), x.next_deadline, x.model.outcome
    )


def sync_categories(x: ExchangeState) -> None:
    """Per category asked: the basis that authorised it (fixed when it was authorised) or why
    it is not shared."""
    for category, kind in x.model.authorised.items():
        if category not in x.bases:
            x.bases[category] = _basis(x, kind)
    for decision in x.record.categories:
        name = pb.InformationCategory.Name(decision.category)
        if name in x.bases:
            decision.basis.CopyFrom(x.bases[name])
        decision.shared = name in x.model.delivered_categories
        decision.not_shared_reason = x.model.not_shared.get(name, "")


def _basis(x: ExchangeState, kind: Basis) -> pb.SharingBasis:
    now = timestamp(workflow.now())
    if kind is Basis.CONSENT:
        consent = x.record.consent
        return pb.SharingBasis(kind=pb.BASIS_KIND_CONSENT, consent_record_id=consent.record_id,
                               consent_version=consent.version, decided_at=now)  # fmt: skip
    if kind is Basis.OVERRIDE:
        reason = x.record.override_proposal.reason_code
        return pb.SharingBasis(kind=pb.BASIS_KIND_OVERRIDE, override_reason=reason, decided_at=now)
    return pb.SharingBasis(kind=pb.BASIS_KIND_SHARE_FIRST, decided_at=now)


def close(x: ExchangeState) -> pb.HolderRecord:
    """Close the record (its basis, the closing entry, the final view) and return it."""
    if not x.record.basis:
        x.record.basis = shared_basis(x.holder, x.model, x.record)
        if x.model.withdrawn:
            x.record.basis += f" Withdrawn by {x.recipient} after sharing."
    x.note("ExchangeClosed", x.holder, "", f"outcome={x.model.outcome.value}")
    x.keeper.close()  # the last task: nothing runs after the workflow completes
    return holder_record(x)


def copy(message: Any) -> Any:
    """A copy of a protobuf message."""
    copied = type(message)()
    copied.CopyFrom(message)
    return copied
