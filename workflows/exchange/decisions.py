"""Decisions from people on an exchange (Updates with validators): an override proposed and
decided, a RED share-first, a decline, the recipient's acknowledgement.

Every update goes through the same two frames: ``admit`` (the validator's: the gateway's
seal, the command id, the practitioner in canonical form, then the decision's own check) and
``apply`` (the handler's: the command id applied, a copy recorded, the update's answer). The
model (``workflows.domain.exchange.Exchange``) decides what is allowed: its ``check`` is every
validator's last word.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar

from temporalio import workflow
from temporalio.exceptions import ApplicationError

from workflows import approvers
from workflows.commands import refuse_if
from workflows.domain import practitioners
from workflows.domain.exchange_commands import (
    Acknowledge,
    DecideOverride,
    DeclineToShare,
    ProposeOverride,
    ShareFirst,
)
from workflows.domain.refusal import Rule
from workflows.domain.vocabulary import Actor, actor_of, timestamp
from workflows.exchange import patches, seals
from workflows.exchange.view import Answer, answer, copy

with workflow.unsafe.imports_passed_through():
    from protos.sharing.v1 import case_pb2 as pb

if TYPE_CHECKING:
    from workflows.exchange.state import ExchangeState

M = TypeVar("M")
J = TypeVar("J")


def _practitioner(message: Any, path: str) -> Any:
    """The practitioner at ``path`` in ``message`` (``"decision.actor.practitioner"``: the
    first name is the message's own)."""
    for name in path.split(".")[1:]:
        message = getattr(message, name)
    return message


def admit(
    x: ExchangeState,
    message: M,
    check: Callable[[ExchangeState, M], None],
    path: str = "decision.actor.practitioner",
) -> None:
    """A validator's frame: refuse ``message`` without the gateway's seal or under a command
    id used for another command, then as ``check`` does a copy whose practitioner (at
    ``path``) is canonical.

    Raises:
        ApplicationError: the seal, the command id, the practitioner's spelling or ``check``
            refused it.
    """
    seals.check(x, message)
    x.commands.check()
    copied = copy(message)
    bad = practitioners.canonicalize(_practitioner(copied, path))
    if bad:
        fields = ", ".join(f"{path}.{name}" for name in bad)
        raise ApplicationError(
            f"letters, digits and . _ @ - only: {fields}", type=Rule.INVALID.value
        )
    check(x, copied)


async def apply(
    x: ExchangeState,
    message: M,
    record: Callable[[ExchangeState, M], Awaitable[None] | None],
    path: str = "decision.actor.practitioner",
) -> Answer:
    """A handler's frame: note the update in hand as applied, ``record`` a copy of
    ``message`` whose practitioner (at ``path``) is canonical, and answer with what changed."""
    x.commands.applied()
    since = x.keeper.since()
    copied = copy(message)
    if x.patched(patches.CANONICAL_PRACTITIONERS):
        practitioners.canonicalize(_practitioner(copied, path))
    recorded = record(x, copied)
    if recorded is not None:
        await recorded
    return answer(x, since)


def _now() -> Any:
    return timestamp(workflow.now())


def _justified(x: ExchangeState, decision: Any, command: Callable[..., J]) -> J:
    """The model's ``command`` for a justified decision (an override proposal, a share-first):
    its decider, the decision as sent, and the categories the request asked for (the model
    decides what it is missing and what it shares)."""
    return command(actor_of(decision.actor), decision, frozenset(x.asked_categories()))


# -- an override proposed --------------------------------------------------------------


def propose_override(x: ExchangeState, proposed: pb.OverrideProposal) -> None:
    """Record the holder's proposal to share without consent."""
    proposed.proposed_at.CopyFrom(_now())
    x.record.override_proposal.CopyFrom(proposed)
    reason = pb.OverrideReason.Name(proposed.reason_code)
    overriding = pb.ConsentStatus.Name(proposed.consent_state_overridden)
    x.note("OverrideProposed", proposed.actor.agency_id, proposed.actor.practitioner.user_id,
           f"reason={reason} overriding={overriding}")  # fmt: skip
    x.model.apply(_justified(x, proposed, ProposeOverride))
    x.publish()
    workflow.metric_meter().create_counter("safeshare_overrides").add(1, {"event": "proposed"})


def validate_proposal(x: ExchangeState, proposal: pb.OverrideProposal) -> None:
    """Refuse an override proposal (canonical) that is incomplete or out of turn."""
    proposed = _justified(x, proposal, ProposeOverride)
    refuse_if(x.model.check(proposed))


# -- an override decided ---------------------------------------------------------------


async def decide_override(x: ExchangeState, decided: pb.OverrideDecision) -> None:
    """Record an approver's decision on the override (after the registry names them)."""
    if x.patched(patches.NAMED_APPROVERS):
        await _named_approver(x, decided)
    decided.decided_at.CopyFrom(_now())
    x.record.override_decision.CopyFrom(decided)
    event = "OverrideApproved" if decided.approve else "OverrideRejected"
    x.note(event, decided.actor.agency_id, decided.actor.practitioner.user_id,
           f"role={decided.actor.practitioner.role}")  # fmt: skip
    was_shared_first = x.model.shared_first
    x.model.apply(DecideOverride(actor_of(decided.actor), decided.approve, decided.reason))
    overrides = workflow.metric_meter().create_counter("safeshare_overrides")
    overrides.add(1, {"event": "approved" if decided.approve else "rejected"})
    if decided.approve:
        x.record.override_used = True
    elif not was_shared_first:
        x.record.basis = f"Not shared by {x.holder}: override_rejected"
    x.publish()
    if was_shared_first and not decided.approve:
        # Shared in a RED emergency and the justification was then rejected: operators review.
        escalation = x.operator_escalation("override_decision", x.holder)
        never_fails = x.patched(patches.LADDER_NEVER_FAILS)
        await x.ladder.alert_operator(escalation, never_fails=never_fails)


async def _named_approver(x: ExchangeState, decided: pb.OverrideDecision) -> None:
    """Refuse a decider the registry does not name as one of the holder's approvers (when
    it names any), and a decision the exchange moved past while the registry was read.

    Raises:
        ApplicationError: NotPermitted or OutOfTurn, with the reason.
    """
    user = decided.actor.practitioner.user_id
    if not await approvers.named(x.holder, user, deciding="overrides"):
        x.note("OverrideDecisionRefused", decided.actor.agency_id, user, "not_a_named_approver")
        raise approvers.not_named(x.holder)
    # The exchange may have moved on while the registry was read.
    refuse_if(x.model.check(DecideOverride(actor_of(decided.actor), True, decided.reason)))


def validate_decide_override(x: ExchangeState, decision: pb.OverrideDecision) -> None:
    """Refuse an override decision (canonical) without reasons or out of turn.

    Raises:
        ApplicationError: the rule it breaks.
    """
    actor = actor_of(decision.actor)
    refuse_if(x.model.check(DecideOverride(actor, decision.approve, decision.reason)))


# -- shared first in a RED emergency -----------------------------------------------------


def share_first(x: ExchangeState, decided: pb.ShareFirstDecision) -> None:
    """Record the holder's RED decision to share now and justify within the deadline."""
    decided.decided_at.CopyFrom(_now())
    x.record.share_first.CopyFrom(decided)
    x.record.override_used = True
    x.note("SharedFirst", decided.actor.agency_id, decided.actor.practitioner.user_id,
           f"categories={len(decided.minimum_data_set)} justification_due")  # fmt: skip
    x.model.apply(_justified(x, decided, ShareFirst))
    x.step = None
    x.publish()


def validate_share_first(x: ExchangeState, decision: pb.ShareFirstDecision) -> None:
    """Refuse a share-first decision (canonical) that is incomplete, out of turn or not RED."""
    shared_first = _justified(x, decision, ShareFirst)
    refuse_if(x.model.check(shared_first))


# -- declined ----------------------------------------------------------------------------


def decline(x: ExchangeState, decided: pb.DeclineDecision) -> None:
    """Record the holder's decision not to share, with its reasons."""
    decided.decided_at.CopyFrom(_now())
    x.record.decline.CopyFrom(decided)
    reasons = ",".join(decided.reasons)
    x.record.basis = f"Not shared by {x.holder}: declined:{reasons}"
    x.note("DeclinedToShare", decided.actor.agency_id, decided.actor.practitioner.user_id,
           f"reasons={reasons}")  # fmt: skip
    x.model.apply(DeclineToShare(actor_of(decided.actor)))
    x.publish()


def validate_decline(x: ExchangeState, decision: pb.DeclineDecision) -> None:
    """Refuse a decline (canonical) without reasons or out of turn.

    Raises:
        ApplicationError: the rule it breaks.
    """
    actor = actor_of(decision.actor)
    refuse_if(x.model.check(DeclineToShare(actor, has_reasons=bool(decision.reasons))))


# -- acknowledged by the recipient -------------------------------------------------------


def acknowledge(x: ExchangeState, ack: pb.Acknowledgement) -> None:
    """Record the recipient's acknowledgement of the delivery."""
    ack.acknowledged_at.CopyFrom(_now())
    ack.holding_agency_id = x.holder
    x.record.acknowledgement.CopyFrom(ack)
    x.note("Acknowledged", ack.agency_id, ack.practitioner.user_id,
           f"status={pb.AcknowledgementStatus.Name(ack.status)}")  # fmt: skip
    x.model.apply(Acknowledge(Actor(ack.agency_id, ack.practitioner.user_id), ack.status))
    x.publish()


def validate_acknowledge(x: ExchangeState, acknowledgement: pb.Acknowledgement) -> None:
    """Refuse an acknowledgement (canonical) out of turn or without status or user.

    Raises:
        ApplicationError: the rule it breaks.
    """
    actor = Actor(acknowledgement.agency_id, acknowledgement.practitioner.user_id)
    refuse_if(x.model.check(Acknowledge(actor, acknowledgement.status)))
