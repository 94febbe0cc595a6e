"""DisclosureCase: a holder tells partners without being asked.

disclosure → protocol gate (hub activity: holder and recipients current signatories, providers
bound, the discloser trained; the routing and every party's calendar, recorded in history) →
the holder's consent position (consent on record, or the lawful basis and reason for sharing
without it; an approver's decision where the partnership's policy for the kind wants one) →
extraction of the approved categories from the holder's system (its adapter) → delivery to
each recipient's adapter, every item carrying the disclosure's handling caveats →
acknowledgement by each recipient under the kind's deadline (before the next school day, by
urgency, five school days), a missed one climbing the ladder (reminder, the recipient's
safeguarding lead, the partnership operator) and never closing the case by itself → close with
the decision record. A disclosure considered and not made is recorded and closed at once.

The model is ``workflows.domain.disclosure`` (every Update's validator asks it); steps,
outcomes and the ladder's rungs are the sharing case's (``workflows.domain``). Each step
is a module of ``workflows.disclosure``; this class holds the run and the handlers.
"""

import asyncio
from typing import Any

from temporalio import workflow

from workflows import agency_calls, memo_view, names
from workflows.commands import AppliedCommands, check_sealed
from workflows.disclosure.approval import Approval
from workflows.disclosure.delivery import Delivery
from workflows.disclosure.state import DisclosureState, caveat_codes
from workflows.domain import disclosure as dm
from workflows.domain.vocabulary import Outcome, timestamp
from workflows.ids import case_ref_from_workflow_id
from workflows.ladder import Ladder
from workflows.record_keeper import RecordKeeper

with workflow.unsafe.imports_passed_through():
    from activities.names import DISCLOSURE_GATE
    from protos.sharing.v1 import case_pb2 as pb

DISCLOSURE_NAMED_APPROVERS = "disclosure-named-approvers"
"""A disclosure's approval is decided only by an approver the registry names for the holder
(when it names any), as an exchange's override is; checked where an approval is decided."""
SEALED_DISCLOSURES_PATCH = "gateway-sealed-disclosures"
"""The gate checks the gateway's seal on the input (a record of a disclosure not made too) and
every decision and acknowledgement must carry one; disclosures started before take the old
branch (nothing checked)."""


@workflow.defn(name=names.DISCLOSURE_CASE)
class DisclosureCase:
    """One disclosure. Its result is the decision record, with ``disclosure`` set."""

    @workflow.init
    def __init__(self, case: pb.DisclosureCaseInput) -> None:
        self._state = DisclosureState.opened(
            case_ref_from_workflow_id(workflow.info().workflow_id), case
        )
        self._record = self._state.record
        self._model = self._state.model
        self._holder = self._state.holder
        self._commands = AppliedCommands()
        """Which command ids this run has applied (``workflows.commands``)."""
        memo = memo_view.ViewInMemo(self.case_view) if workflow.patched(memo_view.PATCH) else None
        self._keeper = RecordKeeper(
            self._record,
            attributes=self._state.search_attributes,
            details=self._state.current_details,
            memo=memo,  # the disclosure's view, for readers that need no worker
        )
        self._sealed = workflow.patched(SEALED_DISCLOSURES_PATCH)
        """Commands must carry the gateway's seal (every disclosure started since sealing)."""
        ladder = Ladder(self._keeper, self._state.case_ref, noun="disclosure")
        self._approval = Approval(self._state, self._keeper, ladder)
        self._delivery = Delivery(self._state, self._keeper, ladder)

    # -- the run ------------------------------------------------------------------------

    @workflow.run
    async def run(self, case: pb.DisclosureCaseInput) -> pb.DecisionRecord:
        """Run the disclosure to its close and return its decision record."""
        self._keeper.start()
        workflow.metric_meter().create_counter("safeshare_disclosures_opened").add(
            1, {"kind": self._state.kind.value}
        )
        if case.HasField("not_made"):
            return await self._not_made(case)
        disclosure = case.disclosure
        self._keeper.note("DisclosureReceived", self._holder, disclosure.discloser.user_id,
                          f"kind={self._state.kind.value} "
                          f"recipients={','.join(disclosure.recipient_agency_ids)} "
                          f"caveats={caveat_codes(disclosure.caveats)}")  # fmt: skip
        self._keeper.publish()
        check = pb.DisclosureGateCheck(disclosure=disclosure)
        if self._sealed:
            check.start_seal.CopyFrom(case.gateway_seal)
        routed = await self._gate(check)
        if not routed.gate.passed:
            return self._refused(routed.gate)
        self._routed(routed)

        awaiting_approval = self._model.state is dm.State.AWAITING_OVERRIDE_DECISION
        if awaiting_approval and not await self._approval.approved():
            self._record.basis = self._approval.not_approved_basis()
            await workflow.wait_condition(workflow.all_handlers_finished)
            return self._close(Outcome.NOT_SHARED)

        items = await self._delivery.items()
        await asyncio.gather(
            *(self._delivery.deliver_and_wait(r, items) for r in self._state.recipients)
        )
        # 👉 Let in-flight update handlers finish before completing.
        await workflow.wait_condition(workflow.all_handlers_finished)
        self._record.basis = self._state.basis()
        return self._close(self._model.outcome)

    async def _not_made(self, case: pb.DisclosureCaseInput) -> pb.DecisionRecord:
        """Record a disclosure considered and not made (its seal checked first) and close."""
        not_made = case.not_made
        if self._sealed:
            routed = await self._gate(
                pb.DisclosureGateCheck(not_made=not_made, start_seal=case.gateway_seal)
            )
            if not routed.gate.passed:
                return self._refused(routed.gate)
        self._keeper.note("DisclosureNotMade", self._holder, not_made.decided_by.user_id,
                          f"kind={self._state.kind.value} "
                          f"reasons={','.join(not_made.reasons)}")  # fmt: skip
        self._record.basis = (
            f"Not disclosed by {self._holder}: considered and not made: "
            + ",".join(not_made.reasons)
        )
        return self._close(Outcome.NOT_SHARED)

    async def _gate(self, check: pb.DisclosureGateCheck) -> pb.DisclosureGateResult:
        """Check the Information Sharing Protocol and record its answer."""
        check.at.CopyFrom(timestamp(workflow.now()))
        routed = await agency_calls.hub(
            DISCLOSURE_GATE,
            check,
            pb.DisclosureGateResult,
            summary="Check the Information Sharing Protocol for a disclosure",
            retry=agency_calls.GATE_RETRY,
        )
        gate = routed.gate
        self._record.gate.CopyFrom(gate)
        if check.HasField("disclosure"):
            self._record.disclosure.routed_because = routed.routed_because
        # Only the seal is checked for a record of a disclosure not made: the record names the
        # check only when it refused.
        if gate.passed and check.HasField("not_made"):
            return routed
        checked = "passed" if gate.passed else "failed:" + ",".join(gate.reasons)
        self._keeper.note("ProtocolGateChecked", "", "", checked)
        return routed

    def _refused(self, gate: pb.GateResult) -> pb.DecisionRecord:
        self._model.apply(dm.GateRefused())
        self._record.basis = "Rejected by the protocol gate: " + ", ".join(gate.reasons)
        return self._close(Outcome.REJECTED_BY_PROTOCOL_GATE)

    def _routed(self, routed: pb.DisclosureGateResult) -> None:
        """Take the gate's routing to the recipients and record the consent position."""
        if routed.routed_because:
            self._keeper.note("DisclosureRouted", "", "",
                              f"to={','.join(routed.recipient_agency_ids)} "
                              f"because={routed.routed_because}")  # fmt: skip
        self._state.route(routed)
        discloser = self._state.disclosure.discloser.user_id
        self._keeper.note("ConsentPositionRecorded", self._holder, discloser,
                          self._state.consent_position())  # fmt: skip
        self._keeper.publish()

    # -- the approver's decision ---------------------------------------------------------

    @workflow.update
    async def decide_disclosure(self, decision: pb.DisclosureApproval) -> pb.CaseView:
        """An approver at the holder approves or rejects a disclosure without consent."""
        self._commands.applied()
        if workflow.patched(DISCLOSURE_NAMED_APPROVERS):
            await self._approval.check_named_approver(decision)
        self._approval.decided(decision)
        self._keeper.publish()
        return self.case_view()

    @decide_disclosure.validator
    def _validate_decide(self, decision: pb.DisclosureApproval) -> None:
        self._check_seal(decision)
        self._commands.check()
        self._approval.check(decision)

    # -- the recipients' acknowledgements -------------------------------------------------

    @workflow.update
    async def acknowledge(self, acknowledgement: pb.Acknowledgement) -> pb.CaseView:
        """A recipient acknowledges its delivery (who, received or actioned, use, feedback)."""
        self._commands.applied()
        self._delivery.acknowledged(acknowledgement)
        self._keeper.publish()
        return self.case_view()

    @acknowledge.validator
    def _validate_acknowledge(self, acknowledgement: pb.Acknowledgement) -> None:
        self._check_seal(acknowledgement)
        self._commands.check()
        self._delivery.check_acknowledgement(acknowledgement)

    def _check_seal(self, command: Any) -> None:
        """Refuse the update in hand unless the gateway sealed ``command`` (since sealing)."""
        if self._sealed:
            check_sealed(self._record, command, "disclosure")

    # -- the record and the operators' view -----------------------------------------------

    @workflow.query
    def case_view(self) -> pb.CaseView:
        """The case as the workflow knows it (the same query name as a request's case)."""
        return self._state.view()

    def _close(self, outcome: Outcome) -> pb.DecisionRecord:
        self._state.close(outcome)
        self._keeper.note("CaseClosed", "", "", f"outcome={outcome.value}")
        workflow.metric_meter().create_counter("safeshare_cases_closed").add(
            1, {"outcome": outcome.value}
        )
        self._keeper.close()  # the last task: nothing runs after the workflow completes
        return self._record
