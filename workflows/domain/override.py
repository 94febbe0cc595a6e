"""Overrides: sharing without consent. What a proposal must hold before an approver may
decide it, what a RED share-first must hold, and who may approve.
"""

from __future__ import annotations

from collections.abc import Collection

from protos.sharing.v1 import case_pb2 as pb
from workflows.domain.consent import practitioner_missing
from workflows.domain.refusal import Violation

APPROVER_ROLES = frozenset({"designated_safeguarding_lead", "manager", "caldicott_guardian"})
"""Roles that may approve or reject an override (DESIGN.md)."""

JUSTIFICATION = (
    "harm_statement",
    "legal_basis",
    "necessity_and_proportionality",
    "alternatives_considered",
    "advice_sought",
)
"""The free-text fields every override proposal must fill."""

FREE_TEXT = (*JUSTIFICATION, "not_telling_reason")
"""Every free-text field of an override proposal (the gateway bounds their length)."""


def missing_proposal_fields(
    proposal: pb.OverrideProposal, asked: Collection[int]
) -> list[Violation]:
    """What an override proposal must hold and does not: the proposer, the consent state it
    overrides, the justification, the reason, a minimum data set within what was ``asked``
    (categories), and who tells the subject or why nobody does."""
    found = practitioner_missing("proposal.actor", proposal.actor.practitioner)
    if proposal.consent_state_overridden in (
        pb.CONSENT_STATUS_UNSPECIFIED,
        pb.CONSENT_STATUS_GIVEN,
    ):
        found.append(Violation("proposal.consent_state_overridden"))
    found.extend(
        Violation(f"proposal.{name}")
        for name in JUSTIFICATION
        if not getattr(proposal, name).strip()
    )
    if proposal.reason_code == pb.OVERRIDE_REASON_UNSPECIFIED:
        found.append(Violation("proposal.reason_code"))
    found.extend(_minimum_data_set("proposal", proposal.minimum_data_set, asked))
    if proposal.subject_will_be_told and not proposal.HasField("subject_told_by"):
        found.append(Violation("proposal.subject_told_by"))
    if not proposal.subject_will_be_told and not proposal.not_telling_reason.strip():
        found.append(Violation("proposal.not_telling_reason"))
    return found


def missing_share_first_fields(
    decision: pb.ShareFirstDecision, asked: Collection[int]
) -> list[Violation]:
    """What a RED share-first must hold and does not: who decided, the harm it prevents and
    a minimum data set within what was ``asked``."""
    found = practitioner_missing("decision.actor", decision.actor.practitioner)
    if not decision.harm_statement.strip():
        found.append(Violation("decision.harm_statement"))
    found.extend(_minimum_data_set("decision", decision.minimum_data_set, asked))
    return found


def _minimum_data_set(
    prefix: str, chosen: Collection[pb.InformationCategory.ValueType], asked: Collection[int]
) -> list[Violation]:
    if not chosen:
        return [Violation(f"{prefix}.minimum_data_set")]
    if not set(chosen) <= set(asked):
        return [Violation(f"{prefix}.minimum_data_set", "only categories the request asked for")]
    return []
