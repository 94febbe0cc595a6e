"""The decision record's words: how an exchange ended and on what basis, and what it waits
for and until when (the Temporal UI's current details). Codes and agency ids only.
"""

from __future__ import annotations

import datetime as dt

from protos.sharing.v1 import case_pb2 as pb
from workflows.domain.exchange import Exchange
from workflows.domain.vocabulary import Outcome, State, WaitingOn


def shared_basis(holder: str, exchange: Exchange, record: pb.HolderRecord) -> str:
    """The basis of a share in plain words (codes and agency ids only)."""
    if exchange.outcome is Outcome.SHARED_WITH_CONSENT:
        consent = record.consent
        return (
            f"Shared by {holder} with consent "
            f"(given by {consent.given_by_relationship or 'unspecified'}, "
            f"verified by {consent.verification or 'unspecified'})."
        )
    if exchange.outcome is Outcome.SHARED_UNDER_OVERRIDE:
        if record.HasField("share_first"):
            decided = "approved" if exchange.override_approved else "rejected after sharing"
            return f"Shared by {holder} first under RED urgency; justification {decided}."
        proposal = record.override_proposal
        return (
            f"Shared by {holder} under an approved override "
            f"({pb.OverrideReason.Name(proposal.reason_code)}; {proposal.legal_basis})."
        )
    if exchange.outcome is Outcome.WITHDRAWN:
        return f"Withdrawn by the requester before {holder} closed."
    return f"Not shared by {holder}."


def holder_details(
    holder: str,
    recipient: str,
    state_: State,
    waiting: WaitingOn,
    deadline: dt.datetime | None,
    outcome_: Outcome,
) -> str:
    """What an exchange waits for and until when, in plain words, for the Temporal UI."""
    due = f" by {deadline:%Y-%m-%d %H:%M} UTC" if deadline else ""
    match state_:
        case State.CHECKING_CONSENT:
            return f"Checking the consent {holder} holds."
        case State.AWAITING_CONSENT_DECISION:
            return f"Waiting for {holder} to record consent, propose an override or decline{due}."
        case State.AWAITING_OVERRIDE_DECISION:
            return f"Waiting for an approver at {holder} to decide the override{due}."
        case State.DELIVERING if waiting is WaitingOn.OPERATOR:
            return f"Delivery to {recipient} is failing; operators have been alerted."
        case State.DELIVERING:
            return f"Extracting approved records at {holder} and delivering them to {recipient}."
        case State.AWAITING_ACKNOWLEDGEMENT if waiting is WaitingOn.APPROVER:
            return f"Shared first (RED); waiting for {holder} to justify the override{due}."
        case State.AWAITING_ACKNOWLEDGEMENT:
            return f"Waiting for {recipient} to acknowledge receipt{due}."
        case State.CLOSED:
            return f"Closed: {outcome_.value}."
    return "Starting."
