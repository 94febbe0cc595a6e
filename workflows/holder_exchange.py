"""HolderExchange: one holding agency's part of a sharing case (a child workflow of the case).

consent check (holder's adapter) → if consent does not cover: the holder practitioner records
a consent decision, proposes an override (an approver decides), shares first (RED), or
declines → delivery of the approved categories only (holder's adapter extracts, recipient's
adapter stores, idempotent on the delivery id) → acknowledgement → close with the holder's
record. Every step waiting on a person runs against its deadline: reminder, then the agency's
safeguarding lead, then the partnership operator. Nothing ever silently declines.

Decisions from people arrive as Updates whose validators ask the pure model
(``workflows.domain.exchange.Exchange.check``) so a refused decision never reaches history.

The workflow holds the handlers (Temporal finds them on the class) and the order of the
steps; each step is a function of the exchange's state in ``workflows.exchange``: the consent
check, the deadlines and their ladder, the delivery, the decisions, the withdrawals, the
view. Its changes are behind the patches in ``workflows.exchange.patches``.
"""

from temporalio import workflow

from workflows import names
from workflows.domain.vocabulary import State
from workflows.exchange import (
    consent_check,
    deadlines,
    decisions,
    delivery,
    patches,
    seals,
    view,
    withdrawals,
)
from workflows.exchange.decisions import admit, apply
from workflows.exchange.state import ExchangeState
from workflows.exchange.view import Answer

with workflow.unsafe.imports_passed_through():
    from protos.sharing.v1 import case_pb2 as pb

DELIVERY_RETRY_PAUSE = delivery.RETRY_PAUSE

# Where each command names its practitioner (a decision's is at decision.actor.practitioner).
PROPOSER = "proposal.actor.practitioner"
ACKNOWLEDGER = "acknowledgement.practitioner"
WITHDRAWER = "withdrawal.actor.practitioner"


@workflow.defn(name=names.HOLDER_EXCHANGE)
class HolderExchange:
    """One holder's exchange. Its result is the holder's part of the decision record."""

    @workflow.init
    def __init__(self, exchange: pb.HolderExchangeInput) -> None:
        self._x = ExchangeState(exchange)

    # -- the run ------------------------------------------------------------------------

    @workflow.run
    async def run(self, exchange: pb.HolderExchangeInput) -> pb.HolderRecord:
        """Run this holder's exchange to its close and return the holder's record."""
        x = self._x
        x.keeper.start()
        if x.sealed:
            seals.require_case_parent(x)
        if x.patched(patches.PER_CATEGORY_CONSENT):
            consent_check.by_category(x)
        x.publish()
        await consent_check.check(x)
        while x.model.state is not State.CLOSED:
            state, step = x.model.state, x.model.step
            if step is not None:
                await deadlines.wait_for_people(x, step, state)
            elif state is State.DELIVERING:
                await delivery.deliver(x)
        # 👉 Let a running update handler (e.g. a consent-withdrawal notice) finish before
        # the workflow completes, so its caller gets its result.
        await workflow.wait_condition(workflow.all_handlers_finished)
        # A refused consent-withdrawal notice is still being pushed: the exchange's record
        # is final only once the recipient has been told.
        await workflow.wait_condition(lambda: not x.notice_pending)
        return view.close(x)

    # -- decisions from people (Updates with validators) ----------------------------------
    # 👉 Validators run before anything is written to history: a refused decision leaves no
    # trace in the case and the caller hears why at once. They run live only, never on replay.

    @workflow.update
    async def record_consent(self, decision: pb.ConsentDecision) -> Answer:
        """The holder practitioner records consent, or why it is not being sought."""
        return await apply(self._x, decision, consent_check.record)

    @record_consent.validator
    def _validate_record_consent(self, decision: pb.ConsentDecision) -> None:
        admit(self._x, decision, consent_check.validate)

    @workflow.update
    async def propose_override(self, proposal: pb.OverrideProposal) -> Answer:
        """The holder proposes sharing without consent, with the full justification."""
        return await apply(self._x, proposal, decisions.propose_override, PROPOSER)

    @propose_override.validator
    def _validate_propose_override(self, proposal: pb.OverrideProposal) -> None:
        admit(self._x, proposal, decisions.validate_proposal, PROPOSER)

    @workflow.update
    async def decide_override(self, decision: pb.OverrideDecision) -> Answer:
        """An approver (a different user, in an approver role) approves or rejects."""
        return await apply(self._x, decision, decisions.decide_override)

    @decide_override.validator
    def _validate_decide_override(self, decision: pb.OverrideDecision) -> None:
        admit(self._x, decision, decisions.validate_decide_override)

    @workflow.update
    async def share_first(self, decision: pb.ShareFirstDecision) -> Answer:
        """RED only: the holder shares now and justifies within the override deadline."""
        return await apply(self._x, decision, decisions.share_first)

    @share_first.validator
    def _validate_share_first(self, decision: pb.ShareFirstDecision) -> None:
        admit(self._x, decision, decisions.validate_share_first)

    @workflow.update
    async def decline_to_share(self, decision: pb.DeclineDecision) -> Answer:
        """The holder decides not to share, with reasons."""
        return await apply(self._x, decision, decisions.decline)

    @decline_to_share.validator
    def _validate_decline(self, decision: pb.DeclineDecision) -> None:
        admit(self._x, decision, decisions.validate_decline)

    @workflow.update
    async def acknowledge(self, acknowledgement: pb.Acknowledgement) -> Answer:
        """The recipient acknowledges the delivery (who, received or actioned, use, feedback)."""
        return await apply(self._x, acknowledgement, decisions.acknowledge, ACKNOWLEDGER)

    @acknowledge.validator
    def _validate_acknowledge(self, acknowledgement: pb.Acknowledgement) -> None:
        admit(self._x, acknowledgement, decisions.validate_acknowledge, ACKNOWLEDGER)

    @workflow.update
    async def withdraw_consent(self, withdrawal: pb.ConsentWithdrawal) -> Answer:
        """Consent withdrawn after delivery: record it and push it to the recipient."""
        return await apply(self._x, withdrawal, withdrawals.withdraw_consent, WITHDRAWER)

    @withdraw_consent.validator
    def _validate_withdraw_consent(self, withdrawal: pb.ConsentWithdrawal) -> None:
        admit(self._x, withdrawal, withdrawals.validate_withdraw_consent, WITHDRAWER)

    # -- from the parent case (signals: the parent validated them) ----------------------

    @workflow.signal(name=names.WITHDRAW_EXCHANGE)
    def withdraw(self, withdrawal: pb.RequestWithdrawal) -> None:
        """The requester withdrew the request (forwarded by the case)."""
        withdrawals.withdraw_request(self._x, withdrawal)

    @workflow.signal(name=names.CHANGE_EXCHANGE_URGENCY)
    def change_urgency(self, change: pb.UrgencyChange) -> None:
        """The requester re-rated the urgency (forwarded by the case): deadlines move."""
        withdrawals.change_urgency(self._x, change)

    @workflow.query
    def holder_record(self) -> pb.HolderRecord:
        """This holder's record as it stands."""
        return self._x.view()
