"""An approver's decision on a disclosure without consent, where the kind's policy wants one.

The disclosure waits for it under its deadline (the escalation ladder after it); the approver
must hold an approver's role at the holder and, where the partnership registry names the
holder's approvers, be one of them. A rejection closes the disclosure as not made.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from temporalio import workflow

from workflows import approvers
from workflows.commands import refuse_if
from workflows.disclosure.state import DisclosureState
from workflows.domain import disclosure as dm
from workflows.domain import practitioners
from workflows.domain.vocabulary import Step, actor_of, timestamp
from workflows.ladder import Ladder, Record

with workflow.unsafe.imports_passed_through():
    from protos.sharing.v1 import case_pb2 as pb

APPROVAL_PERIOD = timedelta(hours=1)
"""An approver's decision on a disclosure without consent is chased after an hour."""


@dataclass(frozen=True)
class Approval:
    """The approver's decision on one disclosure."""

    state: DisclosureState
    keeper: Record
    ladder: Ladder

    async def approved(self) -> bool:
        """Wait for the approver's decision, climbing the ladder after its deadline; whether
        the disclosure was approved."""
        state = self.state
        due = workflow.now() + APPROVAL_PERIOD
        state.next_deadline = due
        self.keeper.publish()
        await self.ladder.wait(
            lambda: state.model.state is not dm.State.AWAITING_OVERRIDE_DECISION,
            Step.OVERRIDE_DECISION, state.holder, due, APPROVAL_PERIOD,
            state.record.disclosure.approval_escalations,
        )  # fmt: skip
        state.next_deadline = None
        return state.model.state is not dm.State.CLOSED

    def not_approved_basis(self) -> str:
        """The record's basis of a disclosure its approver rejected."""
        reason = self.state.record.disclosure.approval.reason and "approval_rejected"
        return f"Not disclosed by {self.state.holder}: {reason}"

    def check(self, decision: pb.DisclosureApproval) -> None:
        """Refuse a decision without a reason, out of turn or by someone who may not decide.

        Raises:
            ApplicationError: the rule it breaks, with the reason.
        """
        refuse_if(
            self.state.model.check(dm.Decide(actor_of(decision.actor), True, decision.reason))
        )

    async def check_named_approver(self, decision: pb.DisclosureApproval) -> None:
        """Refuse a decider the registry does not name as one of the holder's approvers (when
        it names any), and a decision the disclosure moved past while the registry was read.

        Raises:
            ApplicationError: NotPermitted or OutOfTurn, with the reason.
        """
        holder = self.state.holder
        user = practitioners.canonical_user_id(decision.actor.practitioner.user_id) or ""
        if not await approvers.named(holder, user, deciding="disclosures"):
            actor = decision.actor
            self.keeper.note("DisclosureDecisionRefused", actor.agency_id,
                             actor.practitioner.user_id, "not_a_named_approver")  # fmt: skip
            raise approvers.not_named(holder)
        # The disclosure may have moved on while the registry was read.
        refuse_if(
            self.state.model.check(dm.Decide(actor_of(decision.actor), True, decision.reason))
        )

    def decided(self, decision: pb.DisclosureApproval) -> None:
        """Record the approver's decision (its wait for it then ends)."""
        decided = pb.DisclosureApproval()
        decided.CopyFrom(decision)
        decided.decided_at.CopyFrom(timestamp(workflow.now()))
        self.state.record.disclosure.approval.CopyFrom(decided)
        actor = decided.actor
        self.keeper.note("DisclosureDecided", actor.agency_id, actor.practitioner.user_id,
                         f"approve={decided.approve} role={actor.practitioner.role}")  # fmt: skip
        self.state.model.apply(dm.Decide(actor_of(decided.actor), decided.approve, decided.reason))
