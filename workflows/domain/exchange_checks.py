"""Whether one command may move a holder's exchange now, one check per command.

``Exchange.check`` dispatches here and is the only caller: each check reads the exchange's
state and the command's own facts and returns the first refusal, or ``None``. The order of
the tests inside a check is the order callers see refusals in.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from workflows.domain import acknowledgement, consent, override
from workflows.domain import exchange_commands as cmd
from workflows.domain.refusal import Refusal, Rule, incomplete, missing, out_of_turn
from workflows.domain.vocabulary import OPEN_STATES, Actor, State, Urgency

if TYPE_CHECKING:
    from workflows.domain.exchange import Exchange


def consent_checked(exchange: Exchange, command: cmd.ConsentChecked) -> Refusal | None:
    """The holder's system answers once, while consent is being checked."""
    return out_of_turn(exchange.state in {State.CHECKING_CONSENT}, exchange.state)


def record_consent(exchange: Exchange, command: cmd.RecordConsent) -> Refusal | None:
    """A complete consent decision, by the holder, in its turn, unless the system refused."""
    if refusal := incomplete(consent.missing_decision_fields(command.decision)):
        return refusal
    if refusal := _holder(command.actor, exchange.holder) or out_of_turn(
        exchange.state is State.AWAITING_CONSENT_DECISION, exchange.state
    ):
        return refusal
    if exchange.system_refused:
        return Refusal(
            Rule.NOT_PERMITTED,
            "the holder's system records consent as refused or withdrawn: "
            "propose an override or decline",
        )
    return None


def propose_override(exchange: Exchange, command: cmd.ProposeOverride) -> Refusal | None:
    """A complete proposal by the holder, instead of consent or after a RED share-first."""
    if refusal := _holder(command.actor, exchange.holder):
        return refusal
    if exchange.shared_first and exchange.justification_pending:
        allowed = exchange.state in {State.DELIVERING, State.AWAITING_ACKNOWLEDGEMENT}
        if exchange.override_proposed_by is not None:
            return Refusal(Rule.OUT_OF_TURN, "an override is already proposed")
    else:
        allowed = exchange.state is State.AWAITING_CONSENT_DECISION
    return out_of_turn(allowed, exchange.state) or incomplete(
        override.missing_proposal_fields(command.proposal, command.asked)
    )


def decide_override(exchange: Exchange, command: cmd.DecideOverride) -> Refusal | None:
    """A reasoned decision by an approver of the holder who did not propose the override."""
    actor, state = command.actor, exchange.state
    if not command.reason:
        return missing("decision.reason")
    if refusal := _holder(actor, exchange.holder):
        return refusal
    if exchange.override_proposed_by is None or (
        state is not State.AWAITING_OVERRIDE_DECISION and not exchange.justification_pending
    ):
        return Refusal(Rule.OUT_OF_TURN, f"no override awaits a decision ({state.value})")
    if actor.role not in override.APPROVER_ROLES:
        return Refusal(Rule.NOT_PERMITTED, "only an approver role decides an override")
    if actor.user_id == exchange.override_proposed_by:
        return Refusal(Rule.NOT_PERMITTED, "the proposer cannot approve their own override")
    return None


def share_first(exchange: Exchange, command: cmd.ShareFirst) -> Refusal | None:
    """A complete share-first by the holder, in a RED case, instead of consent."""
    if refusal := _holder(command.actor, exchange.holder):
        return refusal
    if exchange.urgency is not Urgency.RED:
        return Refusal(Rule.OUT_OF_TURN, "share-first is for RED urgency only")
    return out_of_turn(
        exchange.state is State.AWAITING_CONSENT_DECISION, exchange.state
    ) or incomplete(override.missing_share_first_fields(command.decision, command.asked))


def decline_to_share(exchange: Exchange, command: cmd.DeclineToShare) -> Refusal | None:
    """A decline with reasons, by the holder, while consent or an override is undecided."""
    if refusal := _holder(command.actor, exchange.holder):
        return refusal
    allowed = exchange.state in {State.AWAITING_CONSENT_DECISION, State.AWAITING_OVERRIDE_DECISION}
    if refusal := out_of_turn(allowed, exchange.state):
        return refusal
    return None if command.has_reasons else Refusal(Rule.INVALID, "reasons are required")


def nothing_to_share(exchange: Exchange, command: cmd.NothingToShare) -> Refusal | None:
    """The holder's system finds nothing, while checking consent or delivering."""
    return out_of_turn(exchange.state in {State.CHECKING_CONSENT, State.DELIVERING}, exchange.state)


def delivered(exchange: Exchange, command: cmd.Delivered) -> Refusal | None:
    """A delivery while delivering, of what a basis covers (per-category: named, once each)."""
    if not exchange.per_category:
        return out_of_turn(
            exchange.state is State.DELIVERING and exchange.basis_for_delivery, exchange.state
        )
    if command.categories is None:
        return Refusal(Rule.INVALID, "a delivery names its categories")
    if refusal := out_of_turn(exchange.state is State.DELIVERING, exchange.state):
        return refusal
    categories = set(command.categories)
    if unauthorised := sorted(categories - set(exchange.authorised)):
        return Refusal(Rule.NOT_PERMITTED, "no basis covers: " + ", ".join(unauthorised))
    if categories & exchange.delivered_categories:
        return Refusal(Rule.OUT_OF_TURN, "already delivered")
    return None


def acknowledge(exchange: Exchange, command: cmd.Acknowledge) -> Refusal | None:
    """One complete acknowledgement by the requesting agency, once delivered."""
    if command.actor.agency_id != exchange.recipient:
        return Refusal(Rule.NOT_PERMITTED, "only the requesting agency acknowledges")
    if exchange.acknowledged:
        return Refusal(Rule.OUT_OF_TURN, "already acknowledged")
    return out_of_turn(
        exchange.state is State.AWAITING_ACKNOWLEDGEMENT, exchange.state
    ) or incomplete(acknowledgement.missing_fields(command.status, command.actor.user_id))


def withdraw_request(exchange: Exchange, command: cmd.WithdrawRequest) -> Refusal | None:
    """One withdrawal by the requesting agency, while the exchange is open."""
    if command.actor.agency_id != exchange.recipient:
        return Refusal(Rule.NOT_PERMITTED, "only the requesting agency withdraws")
    if exchange.withdrawn:
        return Refusal(Rule.OUT_OF_TURN, "already withdrawn")
    return out_of_turn(exchange.state in OPEN_STATES, exchange.state)


def stop_delivery(exchange: Exchange, command: cmd.StopDelivery) -> Refusal | None:
    """A delivery in flight is stopped only after the request was withdrawn."""
    return out_of_turn(exchange.state is State.DELIVERING and exchange.withdrawn, exchange.state)


def withdraw_consent(exchange: Exchange, command: cmd.WithdrawConsent) -> Refusal | None:
    """One withdrawal of consent by the holder, after a delivery, while still open."""
    if refusal := _holder(command.actor, exchange.holder):
        return refusal
    if exchange.consent_withdrawn:
        return Refusal(Rule.OUT_OF_TURN, "consent withdrawal already recorded")
    return out_of_turn(exchange.delivered and exchange.state in OPEN_STATES, exchange.state)


def _holder(actor: Actor, holder: str) -> Refusal | None:
    if actor.agency_id != holder:
        return Refusal(Rule.NOT_PERMITTED, "only the holding agency makes this decision")
    return None
