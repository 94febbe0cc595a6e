"""The SharingCase workflow: one sharing case from request to close.

request → protocol gate (hub activity) → one HolderExchange child workflow per holding agency
(each with its own consent, decision, delivery and acknowledgement) → close when all have
closed, returning the complete decision record (golden rule 7) whether or not anything was
shared. The requester may withdraw or re-rate the urgency at any open step (Updates with
validators, forwarded to the exchanges).
"""

import asyncio
from collections.abc import Iterator
from typing import Any

from temporalio import workflow
from temporalio.exceptions import ApplicationError, FailureError
from temporalio.workflow import ChildWorkflowHandle

from workflows import agency_calls, memo_view, names
from workflows.commands import AppliedCommands, check_sealed, refused
from workflows.domain.exchange import case_outcome
from workflows.domain.refusal import Rule, missing
from workflows.domain.vocabulary import Outcome, outcome_of, proto_outcome, timestamp
from workflows.ids import case_ref_from_workflow_id, holder_exchange_workflow_id
from workflows.record_keeper import RecordKeeper, Upserts
from workflows.sharing import view as shown

with workflow.unsafe.imports_passed_through():
    from activities.names import PROTOCOL_GATE
    from protos.sharing.v1 import case_pb2 as pb

WITHDRAWAL_MEETS_CLOSE = "withdrawal-meets-close"
"""A withdrawal that meets an exchange closing is answered and recorded consistently."""
SEALED_COMMANDS_PATCH = "gateway-sealed-commands"
"""Cases started before decisions were sealed take the old branch (no seal is checked)."""
COMPACT_HISTORIES = "compact-histories"
"""Updates answer with a ``CommandResult`` (what changed), not the whole case view; search
attributes are upserted only where they changed; the patches above are taken as applied
without markers of their own (each marker is two events: see ``workflows.holder_exchange``)."""


@workflow.defn
class SharingCase:
    """One sharing case. Its result is the complete decision record."""

    @workflow.init
    def __init__(self, request: pb.SharingRequest) -> None:
        self._request = request
        self._case_ref = case_ref_from_workflow_id(workflow.info().workflow_id)
        self._state = pb.CASE_STATE_REQUESTED
        self._record = pb.DecisionRecord(
            case_ref=self._case_ref, request=request, urgency=request.urgency
        )
        self._exchanges: dict[str, ChildWorkflowHandle[Any, pb.HolderRecord]] = {}
        self._closed_holders: dict[str, pb.HolderRecord] = {}
        self._starting_exchanges = False
        self._exchange_urgency: dict[str, pb.Urgency.ValueType] = {}
        """The urgency each exchange was last given (in its input or by signal)."""
        self._commands = AppliedCommands()
        """Which command ids this run has applied (``workflows.commands``)."""
        self._views = workflow.patched(memo_view.PATCH)
        """The case keeps its view in its memo (``workflows.memo_view``); a newer patch than
        compact histories, which it implies (one marker, not two)."""
        self._compact = self._views or workflow.patched(COMPACT_HISTORIES)
        self._sealed = self._compact or workflow.patched(SEALED_COMMANDS_PATCH)
        """Commands must carry the gateway's seal (every case started since sealing)."""
        memo = (
            memo_view.ViewInMemo(lambda: shown.published(self.case_view())) if self._views else None
        )
        self._keeper = RecordKeeper(
            self._record,
            attributes=lambda: shown.search_attributes(self._request, self._state, self._record),
            details=lambda: shown.current_details(self._request, self._state, self._record),
            upserts=Upserts.CHANGED if self._compact else Upserts.EVERY,
            memo=memo,  # the case's view, for readers that need no worker
        )

    @workflow.run
    async def run(self, request: pb.SharingRequest) -> pb.DecisionRecord:
        """Run the case to its close and return its decision record."""
        self._keeper.start()
        requester = request.requester.user_id
        self._keeper.note("RequestReceived", request.requesting_agency_id, requester,
                          f"purpose={pb.Purpose.Name(request.purpose)} "
                          f"urgency={pb.Urgency.Name(request.urgency)} "
                          f"holders={','.join(request.holding_agency_ids)}")  # fmt: skip
        self._keeper.publish()
        # Metrics are not commands: replay-safe (the SDK skips them while replaying).
        workflow.metric_meter().create_counter("safeshare_cases_opened").add(1)
        gate = await self._gate(request)
        if not gate.passed:
            self._record.basis = "Rejected by the protocol gate: " + ", ".join(gate.reasons)
            return self._close(Outcome.REJECTED_BY_PROTOCOL_GATE)
        if self._record.HasField("withdrawal"):
            self._record.basis = "Withdrawn by the requester before any exchange started."
            return self._close(Outcome.WITHDRAWN)

        await self._start_exchanges(gate)
        results = await asyncio.gather(*(self._await_exchange(h) for h in self._exchanges))
        self._record.holders.extend(results)
        self._record.basis = " ".join(holder.basis for holder in results)
        # 👉 Let in-flight update handlers finish before completing.
        await workflow.wait_condition(workflow.all_handlers_finished)
        return self._close(case_outcome([outcome_of(h.outcome) for h in results]))

    async def _gate(self, request: pb.SharingRequest) -> pb.GateResult:
        """Check the Information Sharing Protocol and record its answer."""
        gate = await agency_calls.hub(
            PROTOCOL_GATE,
            pb.GateCheck(request=request, at=timestamp(workflow.now())),
            pb.GateResult,
            summary="Check the Information Sharing Protocol",
            retry=agency_calls.GATE_RETRY,
        )
        self._record.gate.CopyFrom(gate)
        checked = "passed" if gate.passed else "failed:" + ",".join(gate.reasons)
        self._keeper.note("ProtocolGateChecked", "", "", checked)
        return gate

    async def _start_exchanges(self, gate: pb.GateResult) -> None:
        """Start one exchange per holding agency; a withdrawal that came while they were
        starting is forwarded to each."""
        self._state = pb.CASE_STATE_EXCHANGING
        self._keeper.publish()
        self._starting_exchanges = True
        for holder in self._request.holding_agency_ids:
            self._exchange_urgency[holder] = self._record.urgency
            self._exchanges[holder] = await workflow.start_child_workflow(
                names.HOLDER_EXCHANGE,
                self._exchange_input(holder, gate),
                id=holder_exchange_workflow_id(self._case_ref, holder),
                task_queue=workflow.info().task_queue,
                result_type=pb.HolderRecord,
                static_summary=f"Exchange with {holder} for case {self._case_ref}",
            )
        self._starting_exchanges = False
        if self._record.HasField("withdrawal"):  # withdrawn while the exchanges were starting
            for handle in self._exchanges.values():
                await handle.signal(names.WITHDRAW_EXCHANGE, self._record.withdrawal)

    def _exchange_input(self, holder: str, gate: pb.GateResult) -> pb.HolderExchangeInput:
        request = self._request
        exchange = pb.HolderExchangeInput(
            case_ref=self._case_ref,
            request=request,
            holding_agency_id=holder,
            urgency=self._record.urgency,
            gateway_public_key=gate.gateway_public_key,
            unsealed_commands_accepted=gate.unsealed_commands_accepted,
        )
        # The calendars and timescales the gate resolved (none in a gate result recorded
        # before the gate resolved them: the exchange then keeps its defaults).
        calendars = {calendar.agency_id: calendar for calendar in gate.calendars}
        if holder in calendars:
            exchange.holder_calendar.CopyFrom(calendars[holder])
        if request.requesting_agency_id in calendars:
            exchange.recipient_calendar.CopyFrom(calendars[request.requesting_agency_id])
        if gate.HasField("timescales"):
            exchange.timescales.CopyFrom(gate.timescales)
        return exchange

    async def _await_exchange(self, holder: str) -> pb.HolderRecord:
        result = await self._exchanges[holder]
        self._closed_holders[holder] = result
        return result

    def _open_exchanges(self) -> Iterator[tuple[str, ChildWorkflowHandle[Any, pb.HolderRecord]]]:
        """The exchanges started and not closed, each looked at as it is reached."""
        for holder, handle in self._exchanges.items():
            if holder not in self._closed_holders:
                yield holder, handle

    # -- the requester's commands ---------------------------------------------------------

    @workflow.update
    async def withdraw_request(
        self, withdrawal: pb.RequestWithdrawal
    ) -> pb.CaseView | pb.CommandResult:
        """The requester withdraws the request: every open exchange closes as withdrawn."""
        self._commands.applied()
        since = self._keeper.since()
        withdrawn = pb.RequestWithdrawal()
        withdrawn.CopyFrom(withdrawal)
        withdrawn.withdrawn_at.CopyFrom(timestamp(workflow.now()))
        self._record.withdrawal.CopyFrom(withdrawn)
        self._keeper.note("RequestWithdrawn", withdrawn.actor.agency_id,
                          withdrawn.actor.practitioner.user_id, "")  # fmt: skip
        await self._forward_withdrawal(withdrawn)
        return self._answer(since)

    async def _forward_withdrawal(self, withdrawn: pb.RequestWithdrawal) -> None:
        """Tell every open exchange that the request was withdrawn."""
        if not (self._compact or workflow.patched(WITHDRAWAL_MEETS_CLOSE)):
            for _, handle in self._open_exchanges():
                await handle.signal(names.WITHDRAW_EXCHANGE, withdrawn)
            return
        for holder, handle in self._open_exchanges():
            try:
                await handle.signal(names.WITHDRAW_EXCHANGE, withdrawn)
            except FailureError:
                # 👉 The exchange closed while the signal was on its way: its outcome stands
                # and the record says so; the withdrawal holds for the rest of the case.
                self._keeper.note("WithdrawalMissedExchange", holder, "", "exchange_already_closed")

    @withdraw_request.validator
    def _validate_withdraw(self, withdrawal: pb.RequestWithdrawal) -> None:
        self._check_seal(withdrawal)
        self._commands.check()
        self._requester_only(withdrawal.actor)
        if self._record.HasField("withdrawal"):
            raise ApplicationError("already withdrawn", type=Rule.OUT_OF_TURN.value)
        if (
            self._exchanges
            and not self._starting_exchanges
            and set(self._exchanges) <= set(self._closed_holders)
        ):
            # Every exchange has closed and the case is closing: nothing is left to withdraw.
            raise ApplicationError("every exchange has closed", type=Rule.OUT_OF_TURN.value)
        if not withdrawal.reason.strip():
            raise refused(missing("withdrawal.reason"))

    @workflow.update
    async def change_urgency(self, change: pb.UrgencyChange) -> pb.CaseView | pb.CommandResult:
        """The requester re-rates the urgency; every open exchange's deadlines move."""
        self._commands.applied()
        since = self._keeper.since()
        changed = pb.UrgencyChange()
        changed.CopyFrom(change)
        changed.changed_at.CopyFrom(timestamp(workflow.now()))
        self._record.urgency_changes.append(changed)
        self._record.urgency = changed.urgency
        actor = changed.actor
        self._keeper.note("UrgencyChanged", actor.agency_id, actor.practitioner.user_id,
                          f"urgency={pb.Urgency.Name(changed.urgency)}")  # fmt: skip
        # 👉 An exchange whose start is in flight was given the old urgency in its input and
        # has no handle yet: wait until every exchange has started, then tell each open one
        # that does not have this urgency already.
        await workflow.wait_condition(lambda: not self._starting_exchanges)
        for holder, handle in self._open_exchanges():
            if self._exchange_urgency[holder] == changed.urgency:
                continue
            self._exchange_urgency[holder] = changed.urgency
            await handle.signal(names.CHANGE_EXCHANGE_URGENCY, changed)
        self._keeper.publish()
        return self._answer(since)

    @change_urgency.validator
    def _validate_change_urgency(self, change: pb.UrgencyChange) -> None:
        self._check_seal(change)
        self._commands.check()
        self._requester_only(change.actor)
        if change.urgency == pb.URGENCY_UNSPECIFIED:
            raise refused(missing("change.urgency"))
        if change.urgency == self._record.urgency:
            raise ApplicationError("urgency unchanged", type=Rule.INVALID.value)
        if not change.reason.strip():
            raise refused(missing("change.reason"))

    def _requester_only(self, actor: pb.Actor) -> None:
        # 👉 Validators run before anything is written to history.
        if actor.agency_id != self._request.requesting_agency_id:
            raise ApplicationError(
                "only the requesting agency may do this", type=Rule.NOT_PERMITTED.value
            )
        if self._state == pb.CASE_STATE_CLOSED:
            raise ApplicationError("the case is closed", type=Rule.OUT_OF_TURN.value)

    def _check_seal(self, command: Any) -> None:
        """Refuse the update in hand unless the gateway sealed ``command`` (since sealing)."""
        # 👉 Validators run live only (never on replay), so a gate result recorded by a hub
        # that once ran without a key opens nothing now: every live decision is checked.
        if self._sealed:
            check_sealed(self._record, command, "case")

    @workflow.query
    def case_view(self) -> pb.CaseView:
        """The case as the workflow knows it; open exchanges are queried separately
        (``HolderExchange.holder_record``) and merged by ``workflows.domain.case_view``."""
        return shown.case_view(
            self._case_ref, self._state, self._record, self._closed_holders.values()
        )

    # -- the record and the operators' view -----------------------------------------------

    def _answer(self, since: int) -> pb.CaseView | pb.CommandResult:
        """An update's answer: what it changed (compact histories), else the case view.

        ``since`` is how many entries the record held when the update began."""
        if not self._compact:
            return self.case_view()
        return shown.answer(self.case_view(), self._record, since)

    def _close(self, outcome: Outcome) -> pb.DecisionRecord:
        self._state = pb.CASE_STATE_CLOSED
        self._record.outcome = proto_outcome(outcome)
        self._keeper.note("CaseClosed", "", "", f"outcome={outcome.value}")
        closed = workflow.metric_meter().create_counter("safeshare_cases_closed")
        closed.add(1, {"outcome": outcome.value})
        self._keeper.close()  # the last task: nothing runs after the workflow completes
        return self._record
